package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshkick/sshkick/internal/engine"
)

type kickOptions struct {
	IO           *IO
	Engine       func(engine.SystemOptions) (*engine.Engine, error)
	Select       selectFlags
	Signal       string
	Kill9        bool
	Wait         time.Duration
	NoEscalate   bool
	EndMux       bool
	AllProcesses bool
	DryRun       bool
	Yes          bool
	JSON         bool
	Force        bool
	AuditLog     string
	Message      string
	Delay        time.Duration
	MsgTimeout   time.Duration
	Args         []string
}

func newKickCmd(f *Factory, runF func(context.Context, *kickOptions) error) *cobra.Command {
	o := &kickOptions{IO: f.IO, Engine: f.Engine}
	if runF == nil {
		runF = runKick
	}
	cmd := &cobra.Command{
		Use:   "kick [TARGET...] [flags]",
		Short: "End login sessions: gently (SIGHUP, wait, SIGKILL) or by force",
		Long: `End the sessions named by TARGETs and selectors.

A TARGET is a session id or terminal as 'sshkick list' shows it (pts/3,
ssh:1234), a PID that list shows, or a user name (all of that user's
sessions). The selectors --user, --idle, --from and --kind narrow the
targets, or select on their own: 'sshkick kick --idle 2h' ends every
session idle for more than two hours.

By default each session gets SIGHUP (then SIGCONT), has --wait to end, and
what is left gets SIGKILL; for SSH, sshd's [priv] monitor comes last so it
can log the user out. A login still being set up (nothing but its monitor
yet) gets SIGTERM, which ends it or logs it out. Processes that kept the
session's id (nohup jobs) and what the session forked during the kick are
swept. Every process is signalled through a pidfd after checking it is
the process discovery saw. Stale utmp records, PID 1, kernel threads, sshd
listeners and your own session (including the logins attached to the
tmux or screen server you work in) are refused.

--all-processes also ends every other process of the named users, as
'killall -u' would, but atomically: kill(-1) as the user, repeated until
none is left. Never for root.`,
		Example: `  sshkick kick pts/3
  sshkick kick alice --dry-run
  sshkick kick --idle 2h --yes
  sshkick kick 4242 --signal KILL
  sshkick kick alice --all-processes
  sshkick kick pts/3 --message "maintenance: save your work" --delay 5m`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Args = args
			return runF(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	o.Select.register(fs)
	fs.StringVarP(&o.Signal, "signal", "s", "HUP", "first `SIGNAL` to send (HUP, TERM, KILL, …)")
	fs.BoolVarP(&o.Kill9, "kill", "9", false, "kill at once: same as --signal KILL")
	durationVar(fs, &o.Wait, "wait", 5*time.Second, "how long a session has to end after the first signal before SIGKILL (e.g. 5s, 1m)")
	fs.BoolVar(&o.NoEscalate, "no-escalate", false, "send the first signal only and report what survived")
	fs.BoolVar(&o.EndMux, "end-multiplexers", false, "also end tmux/screen servers started from the session, and their panes (kept by default, as a logout keeps them)")
	fs.BoolVar(&o.AllProcesses, "all-processes", false, "with a user target: also end every other process of that user")
	fs.BoolVarP(&o.DryRun, "dry-run", "n", false, "print what would be signalled, per process, and signal nothing")
	fs.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	fs.BoolVar(&o.JSON, "json", false, "print the outcome as JSON")
	fs.BoolVar(&o.Force, "force", false, "also end your own session or system accounts' processes")
	fs.StringVar(&o.AuditLog, "audit-log", os.Getenv("SSHKICK_AUDIT_LOG"), "append audit records to `FILE` instead of syslog or /var/log/sshkick/audit.jsonl")
	fs.StringVarP(&o.Message, "message", "m", "", "warn the sessions with `TEXT` before kicking them")
	durationVar(fs, &o.Delay, "delay", 0, "warn, then wait `DURATION` before kicking (reminders at 1m and 10s left; Ctrl-C cancels)")
	durationVar(fs, &o.MsgTimeout, "msg-timeout", 2*time.Second, "how long each terminal has to take a warning")
	return cmd
}

// request turns the flags into an engine request; errors are usage errors.
func (o *kickOptions) request() (engine.KickRequest, error) {
	flt, err := o.Select.filter()
	if err != nil {
		return engine.KickRequest{}, err
	}
	sig, ok := engine.ParseSignal(o.Signal)
	if !ok {
		return engine.KickRequest{}, usagef("--signal: unknown signal \"%s\": use a name like HUP, TERM or KILL, or a number", o.Signal)
	}
	if o.Kill9 {
		sig = syscall.SIGKILL
	}
	if o.MsgTimeout <= 0 {
		return engine.KickRequest{}, usagef("--msg-timeout must be positive")
	}
	return engine.KickRequest{Targets: o.Args, Filter: flt, Signal: sig, Wait: o.Wait, NoEscalate: o.NoEscalate, EndMultiplexers: o.EndMux,
		AllProcesses: o.AllProcesses, DryRun: o.DryRun, Force: o.Force, Message: o.Message, Delay: o.Delay,
		MsgTimeout: o.MsgTimeout, AuditLog: o.AuditLog}, nil
}

func runKick(ctx context.Context, o *kickOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := o.request()
	if err != nil {
		return err
	}
	e, err := o.Engine(o.Select.system())
	if err != nil {
		return err
	}
	defer e.Close()
	// Ctrl-C (or SIGTERM) cancels the kick up to its first signal,
	// including a confirmation prompt and a --delay; after that the kick
	// runs to its end.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	req.Notify = func(n string) { o.IO.notef("%s", n) }
	if !o.DryRun && !o.Yes && o.IO.InTTY {
		req.Confirm = func(ctx context.Context, c engine.Confirmation) bool {
			if len(c.Sessions)+len(c.Users) <= 1 {
				return true
			}
			return confirm(ctx, o.IO, c)
		}
	}
	rep, err := e.Kick(ctx, req)
	if rep != nil {
		o.IO.notes(rep.Notes)
		if o.JSON {
			if jerr := writeJSON(o.IO, rep); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			printKick(o.IO, rep)
		}
	}
	switch {
	case errors.Is(err, engine.ErrCancelled):
		return exitErr{ExitError, errors.New("cancelled during the delay: no session was kicked")}
	case err != nil:
		return err
	case rep.Failed:
		return exitErr{ExitError, nil}
	}
	return nil
}

// confirm asks on the terminal; Ctrl-C while it waits says no.
func confirm(ctx context.Context, ios *IO, c engine.Confirmation) bool {
	fmt.Fprintf(ios.Err, "sshkick: about to end %d session(s):\n", len(c.Sessions))
	t := &table{indent: "  "}
	for _, s := range c.Sessions {
		t.add(s.ID, orDash(s.User), orDash(s.TTY), orDash(s.Host))
	}
	for _, u := range c.Users {
		t.add("every process of "+u.Name, "(uid "+strconv.Itoa(u.UID)+")")
	}
	t.write(ios.Err)
	fmt.Fprint(ios.Err, "sshkick: continue? [y/N] ")
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(ios.In).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		line = strings.ToLower(strings.TrimSpace(line))
		return line == "y" || line == "yes"
	case <-ctx.Done():
		fmt.Fprintln(ios.Err)
		return false
	}
}

func printRefusals(ios *IO, refused, skipped []engine.Refusal, unmatched []string) {
	for _, r := range refused {
		ios.notef("refused %s: %s", r.Target, r.Reason)
	}
	for _, r := range skipped {
		ios.notef("note: %s: %s", r.Target, r.Reason)
	}
	for _, u := range unmatched {
		ios.notef("no session matches \"%s\"", u)
	}
}

func printKick(ios *IO, r *engine.KickReport) {
	printRefusals(ios, r.Refused, r.Skipped, r.Unmatched)
	for _, w := range r.Warnings {
		fmt.Fprintf(ios.Out, "%s: %s %s\n", w.ID, w.Stage, w.Status)
	}
	for _, s := range r.Sessions {
		who := fmt.Sprintf("%s (%s", s.ID, orDash(s.User))
		if s.Host != "" {
			who += " from " + s.Host
		}
		who += ")"
		switch s.Result {
		case engine.DryRun:
			fmt.Fprintf(ios.Out, "would end %s:\n", who)
			t := &table{indent: "  "}
			for _, sg := range s.Signals {
				t.add("SIG"+sg.Signal, strconv.Itoa(sg.PID), sg.Comm, string(sg.Role), sg.Result)
			}
			t.write(ios.Out)
		case engine.Ended:
			fmt.Fprintf(ios.Out, "ended %s in %.2fs\n", who, s.Took.Seconds())
		default:
			fmt.Fprintf(ios.Out, "%s %s: %s\n", s.Result, who, s.Reason)
		}
		for _, a := range s.Actions {
			fmt.Fprintf(ios.Out, "  %s: SIG%s to %s: %s\n", a.Via, a.Signal, a.Target, a.Result)
		}
		for _, k := range s.Kept {
			fmt.Fprintf(ios.Out, "  kept pid %d (%s): %s\n", k.PID, k.Comm, k.Reason)
		}
		for _, rf := range s.Refused {
			fmt.Fprintf(ios.Out, "  refused pid %d: %s\n", rf.PID, rf.Reason)
		}
		if len(s.Survivors) > 0 {
			fmt.Fprintf(ios.Out, "  still running: %v\n", s.Survivors)
		}
	}
	for _, u := range r.Users {
		switch u.Result {
		case engine.DryRun:
			fmt.Fprintf(ios.Out, "would end every process of %s (uid %d): %d now: %v\n", u.User, u.UID, len(u.Found), u.Found)
		case engine.Ended:
			fmt.Fprintf(ios.Out, "ended every process of %s (uid %d): %d found, %d round(s), %.2fs\n", u.User, u.UID, len(u.Found), u.Rounds, u.Took.Seconds())
		default:
			fmt.Fprintf(ios.Out, "%s: processes of %s (uid %d): %s\n", u.Result, u.User, u.UID, u.Reason)
		}
		for _, a := range u.Actions {
			fmt.Fprintf(ios.Out, "  %s: SIG%s to %s: %s\n", a.Via, a.Signal, a.Target, a.Result)
		}
	}
	if len(r.Leftovers) > 0 {
		t := &table{indent: "  "}
		for _, l := range r.Leftovers {
			t.add(strconv.Itoa(l.PID), l.User, l.Command)
		}
		fmt.Fprintf(ios.Out, "still running outside any session:\n")
		t.write(ios.Out)
	}
}
