package engine

import (
	"context"
	"strings"
	"time"

	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// Bounds of what reaches a user's terminal: wall's 79 columns, and a
// total that fits a screen or two.
const (
	MsgWidth    = 79
	MsgMaxBytes = 4096
)

// WarnRequest asks for a message on sessions' terminals (sshkick msg).
type WarnRequest struct {
	Targets []string
	Filter  session.Filter
	// All sends to every session with a terminal, like wall.
	All bool
	// Text is the message as the admin wrote it; it is sanitized and
	// bounded before any terminal sees it.
	Text string
	// Force writes even to users who said `mesg n`.
	Force bool
	// Timeout is how long each terminal has to take the message.
	Timeout  time.Duration
	DryRun   bool
	AuditLog string
}

// WarnReport is what happened to each message.
type WarnReport struct {
	DryRun     bool       `json:"dry_run"`
	Deliveries []Delivery `json:"deliveries"`
	Refused    []Refusal  `json:"refused"`
	Skipped    []Refusal  `json:"skipped"`
	Unmatched  []string   `json:"unmatched"`
	Notes      []string   `json:"notes"`
	// Failed says something could not be done: a target was refused, a
	// reachable terminal did not take the message, or none could.
	Failed bool `json:"-"`
}

// Warn writes a message to the selected sessions' terminals.
func (e *Engine) Warn(ctx context.Context, r WarnRequest) (*WarnReport, error) {
	switch {
	case r.All && len(r.Targets) > 0:
		return nil, badRequest("--all sends to every session: do not name targets too")
	case !r.All && len(r.Targets) == 0 && r.Filter.Empty():
		return nil, badRequest("no one to write to: name a session, terminal, PID or user, select with --user/--idle/--from/--kind, or use --all")
	case r.Timeout <= 0:
		return nil, badRequest("--timeout must be positive")
	case strings.TrimSpace(r.Text) == "":
		return nil, badRequest("no message: give --message TEXT or pipe the text in")
	}
	if err := checkTargets(r.Targets); err != nil {
		return nil, err
	}
	res, err := e.discover(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.checkUsers(r.Filter, res.Sessions); err != nil {
		return nil, err
	}
	rep := &WarnReport{DryRun: r.DryRun, Deliveries: []Delivery{}, Notes: cleanStrings(res.Notes)}
	// Writing to a terminal cannot end anyone's session: the caller's own
	// is no exception.
	sel := Resolve(r.Targets, r.Filter, res.Sessions, Self{}, true, e.lookupUID)
	rep.Refused, rep.Skipped, rep.Unmatched = cleanRefusals(sel.Refused), cleanRefusals(sel.Skipped), cleanStrings(sel.Unmatched)
	sessions := sel.Sessions
	if r.All {
		sessions = sessions[:0:0]
		for _, s := range sel.Sessions {
			if s.TTY != "" {
				sessions = append(sessions, s)
			}
		}
	}
	trail, err := e.openTrail(r.AuditLog, r.DryRun, &rep.Notes)
	if err != nil {
		return rep, err
	}
	defer trail.Close()
	if err := auditRefusals(trail, rep.Refused, rep.Skipped, r.DryRun); err != nil && !r.DryRun {
		return rep, &AuditError{Err: err}
	}
	if len(sessions) == 0 {
		if len(sel.Refused) > 0 {
			rep.Failed = true
			return rep, nil
		}
		return rep, ErrNoMatch
	}
	msg := e.compose(r.Text)
	if r.DryRun {
		rep.Deliveries = wouldSend(sessions, "")
		trail.Record(DryRunMsgEvent{Sessions: rep.Deliveries, Message: string(msg)})
	} else {
		if err := trail.Record(IntentEvent{Action: "msg", Sessions: refs(sessions)}); err != nil {
			return rep, &AuditError{Err: err}
		}
		d, err := e.deliver(ctx, trail, sessions, msg, termmsg.Options{Timeout: r.Timeout, Force: r.Force}, "")
		rep.Deliveries = d
		if err != nil {
			rep.Failed = true
			return rep, &AuditError{Err: err, Done: true}
		}
	}
	// A session without a terminal cannot be written to: said so, but not
	// a failure, unless no session at all could be.
	reached := 0
	rep.Failed = len(sel.Refused) > 0
	for _, d := range rep.Deliveries {
		switch d.Status {
		case string(termmsg.Delivered), "would-send":
			reached++
		case string(termmsg.NoTerminal):
		default:
			rep.Failed = true
		}
	}
	if reached == 0 {
		rep.Failed = true
	}
	return rep, nil
}

// compose builds the bytes written to a terminal: a blank line, the
// banner, the body — all of it through sanitize.Message.
func (e *Engine) compose(body string) []byte {
	text := "\n" + termmsg.Banner(e.c.Env.Sender, e.c.Env.Hostname, e.c.Clock.Now()) + "\n" + body
	return sanitize.Message([]byte(text), MsgWidth, MsgMaxBytes)
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

// deliver writes msg to the sessions' terminals and audits each delivery.
// The error is an audit record that could not be written.
func (e *Engine) deliver(ctx context.Context, trail Auditor, sessions []session.Session, msg []byte, opt termmsg.Options, stage string) ([]Delivery, error) {
	res := e.c.Messenger.Send(ctx, targetsOf(sessions), msg, opt)
	out := make([]Delivery, len(res))
	var auditErr error
	for i, r := range res {
		ref := refOf(&sessions[i])
		d := Delivery{ID: ref.ID, User: ref.User, TTY: ref.TTY, Stage: stage, Status: string(r.Status)}
		if r.Err != nil {
			d.Error = clean(r.Err.Error())
		}
		out[i] = d
		if err := trail.Record(MsgEvent{Stage: stage, Target: ref, Status: d.Status, Error: d.Error, Forced: opt.Force,
			Bytes: r.Bytes, Message: string(msg)}); err != nil && auditErr == nil {
			auditErr = err
		}
	}
	return out, auditErr
}

func wouldSend(sessions []session.Session, stage string) []Delivery {
	out := make([]Delivery, len(sessions))
	for i := range sessions {
		ref := refOf(&sessions[i])
		st := "would-send"
		if sessions[i].TTY == "" {
			st = string(termmsg.NoTerminal)
		}
		out[i] = Delivery{ID: ref.ID, User: ref.User, TTY: ref.TTY, Stage: stage, Status: st}
	}
	return out
}

func refs(sessions []session.Session) []Ref {
	out := make([]Ref, len(sessions))
	for i := range sessions {
		out[i] = refOf(&sessions[i])
	}
	return out
}

func checkTargets(targets []string) error {
	for _, a := range targets {
		if strings.TrimSpace(a) == "" {
			return badRequest("an empty target: name a session, terminal, PID or user")
		}
	}
	return nil
}

func (e *Engine) lookupUID(name string) (int, bool) {
	uid, _, ok := e.c.Env.LookupUser(name)
	return uid, ok
}
