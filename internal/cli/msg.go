package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sshkick/sshkick/internal/audit"
	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// Bounds of what reaches a user's terminal: wall's 79 columns, and a
// total that fits a screen or two.
const (
	msgWidth    = 79
	msgMaxBytes = 4096
	maxInput    = 1 << 20
)

// warnResult is the delivery of one message to one session.
type warnResult struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	TTY    string `json:"tty"`
	Stage  string `json:"stage,omitempty"` // warning, reminder, cancel (kick --message)
	Status string `json:"status"`          // delivered, refused, no-terminal, timed-out, failed, would-send
	Error  string `json:"error,omitempty"`
}

// compose builds the sanitized bytes written to a terminal: a blank line,
// the banner, the body. Everything interpolated passes sanitize.Message.
func compose(body string) []byte {
	sender := os.Getenv("SUDO_USER")
	if sender == "" {
		sender = "root"
		if u, err := user.Current(); err == nil {
			sender = u.Username
		}
	}
	host, _ := os.Hostname()
	text := "\n" + termmsg.Banner(sender, host, time.Now()) + "\n" + body
	return sanitize.Message([]byte(text), msgWidth, msgMaxBytes)
}

func targetsOf(sessions []session.Session) []termmsg.Target {
	t := make([]termmsg.Target, len(sessions))
	for i := range sessions {
		s := &sessions[i]
		t[i] = termmsg.Target{TTY: s.TTY, Rdev: s.TTYDev, UID: s.UID}
		if s.TTY == "" || s.Stale {
			t[i].TTY = ""
		}
	}
	return t
}

// deliver sends msg to the sessions, audits each delivery and returns the
// results.
func deliver(ctx context.Context, sessions []session.Session, msg []byte, opt termmsg.Options, stage string, trail *audit.Logger) []warnResult {
	res := termmsg.Send(ctx, targetsOf(sessions), msg, opt)
	out := make([]warnResult, len(res))
	for i, r := range res {
		s := &sessions[i]
		w := warnResult{ID: sanitize.Field(s.ID), User: sanitize.Field(s.User), TTY: sanitize.Field(s.TTY), Stage: stage, Status: string(r.Status)}
		if r.Err != nil {
			w.Error = sanitize.Field(r.Err.Error())
		}
		out[i] = w
		trail.Log("msg", map[string]any{
			"stage":  stage,
			"target": map[string]any{"session": w.ID, "user": w.User, "uid": s.UID, "tty": w.TTY, "pid": s.PID},
			"status": w.Status, "error": w.Error, "forced": opt.Force, "bytes": r.Bytes,
			"message": string(msg),
		})
	}
	return out
}

type msgOptions struct {
	IO       *IO
	Select   selectFlags
	Message  string
	All      bool
	Force    bool
	Timeout  time.Duration
	JSON     bool
	DryRun   bool
	AuditLog string
	Discover func(context.Context, session.Options) (*session.Result, error)

	messageSet bool
}

func newMsgCmd(ios *IO) *cobra.Command {
	o := &msgOptions{IO: ios, Discover: session.Discover}
	cmd := &cobra.Command{
		Use:   "msg [TARGET...] [flags]",
		Short: "Write a message to sessions' terminals, safely",
		Long: `Write a message to the terminals of the sessions named by TARGETs and
selectors (as for kick: session id, terminal, PID, user), or with --all to
every session that has a terminal, like wall.

The text comes from --message or standard input. It is shown under a banner
saying it is from the administrator; control characters and escape
sequences are shown escaped, never sent (CVE-2024-28085). Users who said
'mesg n' are skipped unless --force. Each terminal gets --timeout to take
the message, so a stopped terminal (Ctrl-S) delays nobody.`,
		Example: `  sshkick msg alice --message "disk maintenance at 18:00"
  echo "rebooting in 10 minutes" | sshkick msg --all
  sshkick msg pts/3 --force -m "please log out"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.messageSet = cmd.Flags().Changed("message")
			return runMsg(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	o.Select.register(f)
	f.StringVarP(&o.Message, "message", "m", "", "the `TEXT` to send (default: read standard input)")
	f.BoolVar(&o.All, "all", false, "send to every session with a terminal")
	f.BoolVar(&o.Force, "force", false, "write even to users who said 'mesg n'")
	f.DurationVar(&o.Timeout, "timeout", termmsg.DefaultTimeout, "how long each terminal has to take the message")
	f.BoolVar(&o.JSON, "json", false, "print the delivery per session as JSON")
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "print who would get the message and write nothing")
	f.StringVar(&o.AuditLog, "audit-log", os.Getenv("SSHKICK_AUDIT_LOG"), "append audit records to `FILE` instead of syslog or "+audit.DefaultFile)
	return cmd
}

func readMessage(ios *IO, flag string, set bool) (string, error) {
	if set {
		if strings.TrimSpace(flag) == "" {
			return "", usagef("--message is empty: say something")
		}
		return flag, nil
	}
	if ios.InTTY {
		return "", usagef("no message: give --message TEXT or pipe the text in")
	}
	b, err := io.ReadAll(io.LimitReader(ios.In, maxInput))
	if err != nil {
		return "", fmt.Errorf("read the message from standard input: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", usagef("no message: give --message TEXT or pipe the text in")
	}
	return string(b), nil
}

func runMsg(ctx context.Context, o *msgOptions, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	flt, err := o.Select.filter()
	if err != nil {
		return err
	}
	if o.All && len(args) > 0 {
		return usagef("--all sends to every session: do not name targets too")
	}
	if !o.All && len(args) == 0 && flt.Empty() {
		return usagef("no one to write to: name a session, terminal, PID or user, select with --user/--idle/--from/--kind, or use --all")
	}
	if o.Timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	text, err := readMessage(o.IO, o.Message, o.messageSet)
	if err != nil {
		return err
	}
	res, err := o.Discover(ctx, session.Options{UtmpPath: o.Select.utmp})
	if err != nil {
		return err
	}
	if res.Logind != nil {
		res.Logind.Close()
	}
	for _, n := range res.Notes {
		o.IO.notef("note: %s", sanitize.Field(n))
	}
	sel := kick.Resolve(args, flt, res.Sessions, kick.Self{}, true, lookupUID)
	cleanSelection(&sel)
	sessions := sel.Sessions
	if o.All {
		sessions = sessions[:0:0]
		for _, s := range sel.Sessions {
			if s.TTY != "" {
				sessions = append(sessions, s)
			}
		}
	}
	printRefusals(o.IO, sel)
	trail, err := openTrail(o.IO, o.AuditLog, o.DryRun)
	if err != nil {
		return err
	}
	defer trail.Close()
	auditRefusals(trail, sel.Refused, o.DryRun)
	auditRefusals(trail, sel.Skipped, o.DryRun)
	if len(sessions) == 0 {
		if len(sel.Refused) > 0 {
			return exitErr{ExitError, nil}
		}
		return exitErr{ExitNoMatch, errors.New("no session matched: see 'sshkick list'")}
	}
	msg := compose(text)
	var results []warnResult
	if o.DryRun {
		for i := range sessions {
			s := &sessions[i]
			st := "would-send"
			if s.TTY == "" {
				st = string(termmsg.NoTerminal)
			}
			results = append(results, warnResult{ID: sanitize.Field(s.ID), User: sanitize.Field(s.User), TTY: sanitize.Field(s.TTY), Status: st})
		}
		trail.Log("dry-run-msg", map[string]any{"sessions": results, "message": string(msg)})
	} else {
		results = deliver(ctx, sessions, msg, termmsg.Options{Timeout: o.Timeout, Force: o.Force}, "", trail)
	}
	// A session without a terminal cannot be written to: said so, but not
	// a failure, unless no session at all could be.
	failed := len(sel.Refused) > 0
	reached := 0
	for _, r := range results {
		switch r.Status {
		case string(termmsg.Delivered), "would-send":
			reached++
		case string(termmsg.NoTerminal):
		default:
			failed = true
		}
	}
	if reached == 0 {
		failed = true
	}
	if o.JSON {
		enc := json.NewEncoder(o.IO.Out)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	} else {
		for _, r := range results {
			line := fmt.Sprintf("%-12s %-12s %-8s %s", r.ID, r.User, orDash(r.TTY), r.Status)
			switch termmsg.Status(r.Status) {
			case termmsg.Refused:
				line += " (the user said mesg n; --force overrides)"
			case termmsg.NoTerminal:
				line += " (no terminal to write to)"
			case termmsg.TimedOut, termmsg.Failed:
				line += " (" + r.Error + ")"
			}
			fmt.Fprintln(o.IO.Out, line)
		}
	}
	if failed {
		return exitErr{ExitError, nil}
	}
	return nil
}

// warnFlags are kick's --message and --delay.
type warnFlags struct {
	message string
	delay   time.Duration
	timeout time.Duration
}

func (w *warnFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&w.message, "message", "m", "", "warn the sessions with `TEXT` before kicking them")
	fs.DurationVar(&w.delay, "delay", 0, "warn, then wait `DURATION` before kicking (reminders at 1m and 10s left; Ctrl-C cancels)")
	fs.DurationVar(&w.timeout, "msg-timeout", termmsg.DefaultTimeout, "how long each terminal has to take a warning")
}

func (w *warnFlags) validate() error {
	if w.delay < 0 {
		return usagef("--delay must not be negative")
	}
	if w.timeout <= 0 {
		return usagef("--msg-timeout must be positive")
	}
	return nil
}

// reminders are the times left at which a delayed kick reminds the users.
var reminders = []time.Duration{time.Minute, 10 * time.Second}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	case d < time.Minute:
		return plural(int(d/time.Second), "second")
	}
	return d.String()
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// warnAndWait warns the sessions, waits the delay with reminders, drops
// the sessions that ended by themselves, and reports whether the admin
// cancelled with Ctrl-C (the users are then told).
func warnAndWait(ctx context.Context, o *kickOptions, sessions []session.Session, trail *audit.Logger) ([]session.Session, []warnResult, bool) {
	w := &o.Warn
	text := w.message
	deadline := time.Now().Add(w.delay)
	notice := "This session will be ended by the administrator now."
	if w.delay > 0 {
		notice = fmt.Sprintf("This session will be ended by the administrator in %s, at %s.", humanDuration(w.delay), deadline.UTC().Format("15:04:05 MST"))
	}
	body := notice
	if text != "" {
		body = text + "\n" + notice
	}
	// The user is about to lose the session: telling them is in their
	// interest, so the warning goes through 'mesg n'.
	opt := termmsg.Options{Timeout: w.timeout, Force: true}
	if o.DryRun {
		var res []warnResult
		for i := range sessions {
			st := "would-send"
			if sessions[i].TTY == "" {
				st = string(termmsg.NoTerminal)
			}
			res = append(res, warnResult{ID: sanitize.Field(sessions[i].ID), User: sanitize.Field(sessions[i].User), TTY: sanitize.Field(sessions[i].TTY), Stage: "warning", Status: st})
		}
		return sessions, res, false
	}
	// Ctrl-C must cancel from the moment the first warning can be seen.
	sigctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	results := deliver(ctx, sessions, compose(body), opt, "warning", trail)
	for _, r := range results {
		if r.Status != string(termmsg.Delivered) {
			o.IO.notef("warning to %s: %s %s", r.ID, r.Status, r.Error)
		}
	}
	if w.delay <= 0 {
		return sessions, results, false
	}
	o.IO.notef("warned %d session(s); kicking at %s (in %s); Ctrl-C cancels", len(sessions), deadline.Format("15:04:05"), humanDuration(w.delay))
	next := 0
	for next < len(reminders) && reminders[next] >= w.delay {
		next++
	}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if next < len(reminders) && left <= reminders[next] {
			body := fmt.Sprintf("Reminder: this session will be ended by the administrator in %s.", humanDuration(reminders[next]))
			if text != "" {
				body = text + "\n" + body
			}
			results = append(results, deliver(ctx, sessions, compose(body), opt, "reminder", trail)...)
			next++
		}
		var alive []session.Session
		for _, s := range sessions {
			if s.Alive("/proc") {
				alive = append(alive, s)
			} else {
				o.IO.notef("%s ended by itself during the delay: nothing more to do", sanitize.Field(s.ID))
				trail.Log("ended-during-delay", map[string]any{"target": map[string]any{"session": sanitize.Field(s.ID), "user": sanitize.Field(s.User), "tty": sanitize.Field(s.TTY)}})
			}
		}
		sessions = alive
		if len(sessions) == 0 {
			return nil, results, false
		}
		wait := time.Second
		if left < wait {
			wait = left
		}
		select {
		case <-sigctx.Done():
			if ctx.Err() == nil {
				results = append(results, deliver(context.Background(), sessions,
					compose("The administrator cancelled the end of this session. You may carry on."), opt, "cancel", trail)...)
				trail.Log("cancel", map[string]any{"sessions": len(sessions), "reason": "interrupted during the delay"})
				return nil, results, true
			}
			return nil, results, true
		case <-time.After(wait):
		}
	}
	return sessions, results, false
}
