package watch

import (
	"context"
	"time"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/session"
)

// EngineBackend is the Backend over the engine: the same discovery,
// terminal writer, kick and audit trail as `sshkick list`, `msg` and
// `kick`.
type EngineBackend struct {
	Engine *engine.Engine
	Trail  engine.Auditor
	// Wait is how long a kicked session gets before SIGKILL (5s).
	Wait time.Duration
}

// Sessions discovers this host's sessions.
func (b *EngineBackend) Sessions(ctx context.Context) (*session.Result, error) {
	snap, err := b.Engine.Sessions(ctx, engine.Query{})
	if err != nil {
		return nil, err
	}
	return &session.Result{Sessions: snap.Raw(), Proc: snap.Proc(), Notes: snap.Notes}, nil
}

// Warn writes each notice under the administrator's banner, through
// `mesg n`, as a kick warning is. Delivery errors come back sanitized.
func (b *EngineBackend) Warn(ctx context.Context, notices []Notice) ([]Delivery, error) {
	ns := make([]engine.Notice, len(notices))
	for i, n := range notices {
		ns[i] = engine.Notice{Session: n.Session, Text: n.Text}
	}
	ds, err := b.Engine.Notify(ctx, b.Trail, "watch", ns, 0)
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		out[i] = Delivery{Status: d.Status, Err: d.Error}
	}
	return out, err
}

// Kick ends the sessions through the engine. Reasons come back sanitized.
func (b *EngineBackend) Kick(ctx context.Context, ss []session.Session, reason string) ([]KickResult, error) {
	wait := b.Wait
	if wait == 0 {
		wait = 5 * time.Second
	}
	ks, err := b.Engine.KickSessions(ctx, b.Trail, ss, reason, wait)
	out := make([]KickResult, len(ks))
	for i, k := range ks {
		out[i] = KickResult{Result: k.Result, Reason: k.Reason,
			Detail: map[string]any{"signals": k.Signals, "gone": k.Gone, "survivors": k.Survivors, "took_ns": k.Took}}
	}
	return out, err
}

// Audit writes one record, event "watch-ACTION".
func (b *EngineBackend) Audit(ctx context.Context, ev Event) error { return b.Trail.Record(ev) }

// AuditEvent names the record: "watch-warn", "watch-kick"…
func (e Event) AuditEvent() string { return "watch-" + e.Action }
