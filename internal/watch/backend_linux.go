package watch

import (
	"context"
	"os"
	"time"

	"github.com/sshkick/sshkick/internal/audit"
	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// SystemBackend is today's Backend over session, termmsg, kick and audit;
// the engine (internal/engine) replaces it.
type SystemBackend struct {
	Discover session.Options
	Trail    *audit.Logger
	// Wait is how long a kicked session gets before SIGKILL (5s).
	Wait time.Duration
}

// Sessions discovers this host's sessions.
func (b *SystemBackend) Sessions(ctx context.Context) (*session.Result, error) {
	o := b.Discover
	o.Now = time.Now()
	o.NoLogind = true
	return session.Discover(ctx, o)
}

// Warn writes each notice under the administrator's banner, sanitized
// with sanitize.Message; `mesg n` is overridden, as for a kick warning.
func (b *SystemBackend) Warn(ctx context.Context, notices []Notice) ([]Delivery, error) {
	host, _ := os.Hostname()
	now := time.Now()
	out := make([]Delivery, len(notices))
	// Texts differ per session: one Send per notice, each bounded by the
	// termmsg timeout; concurrently, so one stopped terminal delays no one.
	done := make(chan struct{}, len(notices))
	for i := range notices {
		go func() {
			defer func() { done <- struct{}{} }()
			n := &notices[i]
			text := "\n" + termmsg.Banner("root", host, now) + "\n" + n.Text
			msg := sanitize.Message([]byte(text), 79, 4096)
			t := termmsg.Target{TTY: n.Session.TTY, Rdev: n.Session.TTYDev, UID: n.Session.UID}
			if n.Session.Stale {
				t.TTY = ""
			}
			r := termmsg.Send(ctx, []termmsg.Target{t}, msg, termmsg.Options{Force: true})[0]
			out[i].Status = string(r.Status)
			if r.Err != nil {
				out[i].Err = r.Err.Error()
			}
		}()
	}
	for range notices {
		<-done
	}
	return out, nil
}

// Kick ends the sessions through kick.Kick.
func (b *SystemBackend) Kick(ctx context.Context, ss []session.Session, reason string) ([]KickResult, error) {
	wait := b.Wait
	if wait == 0 {
		wait = 5 * time.Second
	}
	oc, err := kick.Kick(ctx, ss, kick.Options{Wait: wait, ProcRoot: b.Discover.ProcRoot})
	if err != nil {
		return nil, err
	}
	out := make([]KickResult, len(oc))
	for i := range oc {
		sig := oc[i].Signals
		for j := range sig {
			sig[j].Comm = sanitize.Field(sig[j].Comm)
		}
		out[i] = KickResult{Result: oc[i].Result, Reason: sanitize.Field(oc[i].Reason),
			Detail: map[string]any{"signals": sig, "survivors": oc[i].Survivors, "took_ns": oc[i].Took}}
	}
	return out, nil
}

// Audit writes one record, event "watch-ACTION".
func (b *SystemBackend) Audit(ctx context.Context, ev Event) error {
	return b.Trail.Log("watch-"+ev.Action, ev)
}
