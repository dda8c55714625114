package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/audit"
	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
)

type kickOptions struct {
	IO           *IO
	Select       selectFlags
	Signal       string
	Kill9        bool
	Wait         time.Duration
	NoEscalate   bool
	AllProcesses bool
	DryRun       bool
	Yes          bool
	JSON         bool
	Force        bool
	AuditLog     string
	Warn         warnFlags

	Discover func(context.Context, session.Options) (*session.Result, error)
	Geteuid  func() int
}

func newKickCmd(ios *IO) *cobra.Command {
	o := &kickOptions{IO: ios, Discover: session.Discover, Geteuid: os.Geteuid}
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
can log the user out. Processes that kept the session's id (nohup jobs)
are swept. Every process is signalled through a pidfd after checking it is
the process discovery saw. Stale utmp records, PID 1, kernel threads, sshd
listeners and your own session are refused.

--all-processes also ends every other process of the named users, as
'killall -u' would, but atomically: kill(-1) as the user, repeated until
none is left. Never for root.`,
		Example: `  sshkick kick pts/3
  sshkick kick alice --dry-run
  sshkick kick --idle 2h --yes
  sshkick kick 4242 --signal KILL
  sshkick kick alice --all-processes
  sshkick kick pts/3 --message "maintenance: save your work" --delay 5m`,
		RunE: func(cmd *cobra.Command, args []string) error { return runKick(cmd.Context(), o, args) },
	}
	f := cmd.Flags()
	o.Select.register(f)
	f.StringVarP(&o.Signal, "signal", "s", "HUP", "first `SIGNAL` to send (HUP, TERM, KILL, …)")
	f.BoolVarP(&o.Kill9, "kill", "9", false, "kill at once: same as --signal KILL")
	f.DurationVar(&o.Wait, "wait", 5*time.Second, "how long a session has to end after the first signal before SIGKILL")
	f.BoolVar(&o.NoEscalate, "no-escalate", false, "send the first signal only and report what survived")
	f.BoolVar(&o.AllProcesses, "all-processes", false, "with a user target: also end every other process of that user")
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "print what would be signalled, per process, and signal nothing")
	f.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVar(&o.JSON, "json", false, "print the outcome as JSON")
	f.BoolVar(&o.Force, "force", false, "also end your own session or system accounts' processes")
	f.StringVar(&o.AuditLog, "audit-log", os.Getenv("SSHKICK_AUDIT_LOG"), "append audit records to `FILE` instead of syslog or "+audit.DefaultFile)
	o.Warn.register(f)
	return cmd
}

// kickReport is the JSON output of kick.
type kickReport struct {
	DryRun    bool                `json:"dry_run"`
	Sessions  []kickSession       `json:"sessions"`
	Refused   []kick.Refusal      `json:"refused"`
	Skipped   []kick.Refusal      `json:"skipped"`
	Unmatched []string            `json:"unmatched"`
	Users     []*kick.UserOutcome `json:"users,omitempty"`
	Warnings  []warnResult        `json:"warnings,omitempty"`
}

type kickSession struct {
	ID   string `json:"id"`
	User string `json:"user"`
	UID  int    `json:"uid"`
	TTY  string `json:"tty"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	Kind string `json:"kind"`
	kick.Outcome
}

func runKick(ctx context.Context, o *kickOptions, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	flt, err := o.Select.filter()
	if err != nil {
		return err
	}
	sig, ok := kick.ParseSignal(o.Signal)
	if !ok {
		return usagef("--signal: unknown signal \"%s\": use a name like HUP, TERM or KILL, or a number", o.Signal)
	}
	if o.Kill9 {
		sig = unix.SIGKILL
	}
	if o.Wait < 0 {
		return usagef("--wait must not be negative")
	}
	if len(args) == 0 && flt.Empty() {
		return usagef("nothing to kick: name a session, terminal, PID or user, or select with --user, --idle, --from or --kind")
	}
	for _, a := range args {
		if strings.TrimSpace(a) == "" {
			return usagef("an empty target: name a session, terminal, PID or user")
		}
	}
	if o.AllProcesses && !hasUserTarget(args, flt) {
		return usagef("--all-processes needs a user: 'sshkick kick alice --all-processes' or --user alice")
	}
	if err := o.Warn.validate(); err != nil {
		return err
	}
	if !o.DryRun && o.Geteuid() != 0 {
		return exitErr{ExitError, errors.New("kicking needs root: run it with sudo (or try --dry-run)")}
	}
	if !o.DryRun {
		if err := kick.CheckPidfd(); err != nil {
			return exitErr{ExitError, err}
		}
	}

	res, err := o.Discover(ctx, session.Options{UtmpPath: o.Select.utmp})
	if err != nil {
		return err
	}
	var lg kick.Logind
	if res.Logind != nil {
		defer res.Logind.Close()
		lg = res.Logind
	}
	for _, n := range res.Notes {
		o.IO.notef("note: %s", sanitize.Field(n))
	}
	me := kick.SelfFrom(res.Proc, os.Getpid())
	sel := kick.Resolve(args, flt, res.Sessions, me, o.Force, lookupUID)
	cleanSelection(&sel)
	var users []kick.UserTarget
	if o.AllProcesses {
		users = userTargets(sel, flt)
		var keep []kick.UserTarget
		for _, u := range users {
			if why := kick.UserRefusal(u.UID, o.Force); why != "" {
				sel.Refused = append(sel.Refused, kick.Refusal{Target: u.Name, Reason: why})
				continue
			}
			keep = append(keep, u)
		}
		users = keep
	}

	trail, err := openTrail(o.IO, o.AuditLog, o.DryRun)
	if err != nil {
		return err
	}
	defer trail.Close()
	auditRefusals(trail, sel.Refused, o.DryRun)
	auditRefusals(trail, sel.Skipped, o.DryRun)

	if len(sel.Sessions) == 0 && len(users) == 0 {
		report := kickReport{DryRun: o.DryRun, Sessions: []kickSession{}, Refused: nonNilRefusals(sel.Refused), Skipped: nonNilRefusals(sel.Skipped), Unmatched: nonNilStrings(sel.Unmatched)}
		if o.JSON {
			writeKickJSON(o.IO, report)
		} else {
			printRefusals(o.IO, sel)
		}
		if len(sel.Refused) > 0 {
			return exitErr{ExitError, nil}
		}
		return exitErr{ExitNoMatch, errors.New("no session matched: see 'sshkick list'")}
	}

	if !o.DryRun && !o.Yes && o.IO.InTTY && len(sel.Sessions)+len(users) > 1 {
		if !confirm(o.IO, sel.Sessions, users) {
			return exitErr{ExitError, errors.New("cancelled: nothing was done")}
		}
	}

	opts := kick.Options{Signal: sig, Wait: o.Wait, NoEscalate: o.NoEscalate, DryRun: o.DryRun, Logind: lg}
	report := kickReport{DryRun: o.DryRun, Refused: nonNilRefusals(sel.Refused), Skipped: nonNilRefusals(sel.Skipped), Unmatched: nonNilStrings(sel.Unmatched)}
	sessions := sel.Sessions
	if o.Warn.message != "" || o.Warn.delay > 0 {
		var cancelled bool
		sessions, report.Warnings, cancelled = warnAndWait(ctx, o, sessions, trail)
		if cancelled {
			if o.JSON {
				report.Sessions = []kickSession{}
				writeKickJSON(o.IO, report)
			}
			return exitErr{ExitError, errors.New("cancelled during the delay: no session was kicked")}
		}
	}
	outcomes, err := kick.Kick(ctx, sessions, opts)
	if err != nil {
		return exitErr{ExitError, err}
	}
	failed := len(sel.Refused) > 0
	for i := range outcomes {
		oc := &outcomes[i]
		s := &sessions[i]
		ks := kickSession{ID: sanitize.Field(s.ID), User: sanitize.Field(s.User), UID: s.UID, TTY: sanitize.Field(s.TTY),
			Host: sanitize.Field(s.Host), PID: s.PID, Kind: string(s.Kind), Outcome: *oc}
		for j := range ks.Signals {
			ks.Signals[j].Comm = sanitize.Field(ks.Signals[j].Comm)
		}
		for j := range ks.Gone {
			ks.Gone[j].Comm = sanitize.Field(ks.Gone[j].Comm)
		}
		ks.Reason = sanitize.Field(ks.Reason)
		ks.Refused = cleanRefusals(ks.Refused)
		report.Sessions = append(report.Sessions, ks)
		event := "kick"
		if o.DryRun {
			event = "dry-run"
		}
		trail.Log(event, auditSession(ks, sig, o))
		if oc.Result != kick.Ended && oc.Result != kick.DryRun {
			failed = true
		}
	}
	for _, u := range users {
		gid := primaryGID(u.UID)
		uo := kick.KillUser(ctx, u.Name, u.UID, gid, opts)
		uo.User, uo.Reason = sanitize.Field(uo.User), sanitize.Field(uo.Reason)
		report.Users = append(report.Users, &uo)
		event := "kick-user"
		if o.DryRun {
			event = "dry-run-user"
		}
		trail.Log(event, uo)
		if uo.Result != kick.Ended && uo.Result != kick.DryRun {
			failed = true
		}
	}
	if report.Sessions == nil {
		report.Sessions = []kickSession{}
	}
	if o.JSON {
		if err := writeKickJSON(o.IO, report); err != nil {
			return err
		}
	} else {
		printKick(o.IO, report, sel)
	}
	if failed {
		return exitErr{ExitError, nil}
	}
	return nil
}

// openTrail opens the audit trail. Without one nothing is done: every
// action must leave a record. A dry run goes on, with a note.
func openTrail(ios *IO, path string, dryRun bool) (*audit.Logger, error) {
	trail, err := audit.Open(path)
	if err != nil {
		if !dryRun {
			return nil, exitErr{ExitError, fmt.Errorf("cannot write the audit trail (%v): nothing was done; fix it or use --audit-log FILE", err)}
		}
		ios.notef("note: dry run not audited: %s", sanitize.Field(err.Error()))
	}
	return trail, nil
}

func auditRefusals(trail *audit.Logger, refused []kick.Refusal, dryRun bool) {
	for _, r := range refused {
		trail.Log("refuse", map[string]any{"target": r.Target, "pid": r.PID, "reason": r.Reason, "dry_run": dryRun})
	}
}

func hasUserTarget(args []string, flt session.Filter) bool {
	if len(flt.Users) > 0 {
		return true
	}
	for _, a := range args {
		if _, err := strconv.Atoi(a); err != nil && !strings.ContainsAny(a, "/:") {
			return true
		}
	}
	return false
}

// userTargets: users named as targets or with --user.
func userTargets(sel kick.Selection, flt session.Filter) []kick.UserTarget {
	seen := map[int]bool{}
	var out []kick.UserTarget
	add := func(u kick.UserTarget) {
		if !seen[u.UID] {
			seen[u.UID] = true
			out = append(out, u)
		}
	}
	for _, u := range sel.Users {
		add(u)
	}
	for _, name := range flt.Users {
		if uid, ok := lookupUID(name); ok {
			add(kick.UserTarget{Name: name, UID: uid})
		}
	}
	return out
}

// lookupUID finds a user's uid by name (through NSS, so LDAP users too).
func lookupUID(name string) (int, bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, false
	}
	uid, err := strconv.Atoi(u.Uid)
	return uid, err == nil
}

func primaryGID(uid int) int {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return uid
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return uid
	}
	return gid
}

func confirm(ios *IO, sessions []session.Session, users []kick.UserTarget) bool {
	fmt.Fprintf(ios.Err, "sshkick: about to end %d session(s):\n", len(sessions))
	for i := range sessions {
		s := &sessions[i]
		fmt.Fprintf(ios.Err, "  %s  %s  %s\n", sanitize.Field(s.ID), sanitize.Field(s.User), orDash(sanitize.Field(s.Host)))
	}
	for _, u := range users {
		fmt.Fprintf(ios.Err, "  and every process of %s (uid %d)\n", sanitize.Field(u.Name), u.UID)
	}
	fmt.Fprint(ios.Err, "sshkick: continue? [y/N] ")
	line, _ := bufio.NewReader(ios.In).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes"
}

func auditSession(ks kickSession, sig unix.Signal, o *kickOptions) map[string]any {
	return map[string]any{
		"dry_run": o.DryRun,
		"target": map[string]any{"session": ks.ID, "user": ks.User, "uid": ks.UID, "tty": ks.TTY, "host": ks.Host,
			"pid": ks.PID, "kind": ks.Kind},
		"signal":      kick.SignalName(sig),
		"wait_ms":     o.Wait.Milliseconds(),
		"no_escalate": o.NoEscalate,
		"outcome":     ks.Result,
		"reason":      ks.Reason,
		"signals":     ks.Signals,
		"gone":        ks.Gone,
		"survivors":   ks.Survivors,
		"refused":     ks.Refused,
	}
}

func nonNilRefusals(r []kick.Refusal) []kick.Refusal {
	if r == nil {
		return []kick.Refusal{}
	}
	return r
}

// cleanRefusals sanitizes refusals in place: their targets come from the
// command line and their reasons quote utmp, /proc and the password file.
func cleanRefusals(r []kick.Refusal) []kick.Refusal {
	for i := range r {
		r[i].Target, r[i].Reason = sanitize.Field(r[i].Target), sanitize.Field(r[i].Reason)
	}
	return r
}

func cleanSelection(sel *kick.Selection) {
	cleanRefusals(sel.Refused)
	cleanRefusals(sel.Skipped)
	for i := range sel.Users {
		sel.Users[i].Name = sanitize.Field(sel.Users[i].Name)
	}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	out := make([]string, len(s))
	for i := range s {
		out[i] = sanitize.Field(s[i])
	}
	return out
}

func writeKickJSON(ios *IO, r kickReport) error {
	enc := json.NewEncoder(ios.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func printRefusals(ios *IO, sel kick.Selection) {
	for _, r := range sel.Refused {
		ios.notef("refused %s: %s", r.Target, r.Reason)
	}
	for _, r := range sel.Skipped {
		ios.notef("note: %s: %s", r.Target, r.Reason)
	}
	for _, u := range sel.Unmatched {
		ios.notef("no session matches \"%s\"", sanitize.Field(u))
	}
}

func printKick(ios *IO, r kickReport, sel kick.Selection) {
	printRefusals(ios, sel)
	for _, w := range r.Warnings {
		fmt.Fprintf(ios.Out, "%s: warning %s\n", w.ID, w.Status)
	}
	for _, s := range r.Sessions {
		who := fmt.Sprintf("%s (%s", s.ID, orDash(s.User))
		if s.Host != "" {
			who += " from " + s.Host
		}
		who += ")"
		switch s.Result {
		case kick.DryRun:
			fmt.Fprintf(ios.Out, "would end %s:\n", who)
			for _, sg := range s.Signals {
				fmt.Fprintf(ios.Out, "  SIG%-5s %7d  %-15s %-8s %s\n", sg.Signal, sg.PID, sg.Comm, sg.Role, sg.Result)
			}
		case kick.Ended:
			fmt.Fprintf(ios.Out, "ended %s in %.2fs\n", who, s.Took.Seconds())
		default:
			fmt.Fprintf(ios.Out, "%s %s: %s\n", s.Result, who, s.Reason)
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
		case kick.DryRun:
			fmt.Fprintf(ios.Out, "would end every process of %s (uid %d): %d now: %v\n", sanitize.Field(u.User), u.UID, len(u.Found), u.Found)
		case kick.Ended:
			fmt.Fprintf(ios.Out, "ended every process of %s (uid %d): %d found, %d round(s), %.2fs\n", sanitize.Field(u.User), u.UID, len(u.Found), u.Rounds, u.Took.Seconds())
		default:
			fmt.Fprintf(ios.Out, "%s: processes of %s (uid %d): %s\n", u.Result, sanitize.Field(u.User), u.UID, u.Reason)
		}
	}
}
