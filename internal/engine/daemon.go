package engine

import (
	"context"
	"sync"
	"time"

	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// What a long-lived front end (the watch daemon) calls: it keeps one
// audit trail open and acts on sessions its policy selected from a
// Snapshot, instead of on targets typed by an admin.

// OpenAudit opens the audit trail for a front end that keeps it (path ""
// is the default trail).
func (e *Engine) OpenAudit(path string) (Auditor, error) {
	a, _, err := e.c.OpenAuditor(path)
	if err != nil {
		return nil, &AuditError{Err: err}
	}
	return a, nil
}

// Notice is one message for one session discovery found.
type Notice struct {
	Session session.Session
	// Text is the body, raw; it is sanitized and bounded with the banner.
	Text string
}

// Notify writes each notice's own text to its session's terminal, through
// `mesg n` (it warns of the session's end), each write bounded by timeout,
// all at once so a stopped terminal delays no one; every delivery is
// audited with stage. One Delivery per notice, in order; the error is an
// audit record that could not be written.
func (e *Engine) Notify(ctx context.Context, trail Auditor, stage string, notices []Notice, timeout time.Duration) ([]Delivery, error) {
	if timeout <= 0 {
		timeout = termmsg.DefaultTimeout
	}
	out := make([]Delivery, len(notices))
	errs := make([]error, len(notices))
	var wg sync.WaitGroup
	for i := range notices {
		wg.Go(func() {
			n := &notices[i]
			d, err := e.deliver(ctx, trail, []session.Session{n.Session}, e.compose(n.Text), termmsg.Options{Timeout: timeout, Force: true}, stage)
			out[i], errs[i] = d[0], err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// KickSessions ends sessions a front end selected itself (a policy rule,
// named in by): the same verification, escalation, sweep and audit as
// Kick, with the intent recorded first — without it nothing is signalled.
func (e *Engine) KickSessions(ctx context.Context, trail Auditor, sessions []session.Session, by string, wait time.Duration) ([]KickedSession, error) {
	if e.c.Env.EUID != 0 {
		return nil, ErrNotRoot
	}
	if err := e.c.Signaller.Check(); err != nil {
		return nil, err
	}
	var live []session.Session
	for _, s := range sessions {
		if !s.Stale {
			live = append(live, s)
		}
	}
	if err := trail.Record(IntentEvent{Action: "kick", Sessions: refs(live), Signal: "HUP"}); err != nil {
		return nil, &AuditError{Err: err}
	}
	outcomes, err := e.c.Signaller.Kick(context.WithoutCancel(ctx), live, kick.Options{Wait: wait, Logind: e.c.Discoverer.Logind()})
	if err != nil {
		return nil, err
	}
	out := make([]KickedSession, len(outcomes))
	var auditErr error
	for i := range outcomes {
		ks := viewOutcome(&live[i], &outcomes[i])
		out[i] = ks
		if err := trail.Record(KickEvent{Target: ks.Ref, Signal: "HUP", WaitMS: wait.Milliseconds(), Outcome: ks.Result, Reason: ks.Reason,
			Signals: ks.Signals, Gone: ks.Gone, Survivors: ks.Survivors, Refused: ks.Refused, By: clean(by)}); err != nil && auditErr == nil {
			auditErr = err
		}
	}
	if auditErr != nil {
		return out, &AuditError{Err: auditErr, Done: true}
	}
	return out, nil
}
