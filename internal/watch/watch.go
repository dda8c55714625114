// Package watch is the `sshkick watch` daemon loop: it looks at the
// sessions every interval, at the next deadline and soon after a login or
// logout (Changes: inotify on utmp and logind's session files), asks internal/policy
// what to do, carries the actions out through a Backend (warn, kick,
// audit), remembers which warnings went out in a state file written
// atomically (so a restart does not repeat them), reloads the policy on
// SIGHUP (keeping the old one when the new file is invalid) and speaks
// sd_notify when systemd runs it.
//
// watch decides nothing itself (policy does) and never signals a process
// or writes to a terminal except through its Backend.
package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sshkick/sshkick/internal/policy"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
)

// DefaultState is where the daemon keeps its state.
const DefaultState = "/var/lib/sshkick/watch-state.json"

// Backend is everything the daemon does to the system. The engine
// (internal/engine) implements it; backend_linux.go is today's adapter
// over session, termmsg, kick and audit.
type Backend interface {
	// Sessions is a discovery snapshot (Result.Proc holds the processes).
	Sessions(ctx context.Context) (*session.Result, error)
	// Warn writes each notice's text to its session's terminal: sanitized
	// with sanitize.Message, bounded, `mesg n` overridden as for a kick
	// warning. One Delivery per notice, in order.
	Warn(ctx context.Context, notices []Notice) ([]Delivery, error)
	// Kick ends the sessions as `sshkick kick` does (verify, escalate,
	// sweep). One KickResult per session, in order.
	Kick(ctx context.Context, s []session.Session, reason string) ([]KickResult, error)
	// Audit records one decision.
	Audit(ctx context.Context, ev Event) error
}

// Notice is one message for one session.
type Notice struct {
	Session session.Session
	Text    string
}

// Delivery is the outcome of one Notice (Err already sanitized): termmsg's status
// ("delivered", "refused", "no-terminal", "timed-out", "failed").
type Delivery struct {
	Status string
	Err    string
}

// KickResult is the outcome of one kick (Reason already sanitized): kick's result ("ended",
// "survived", "refused", "dry-run") and why.
type KickResult struct {
	Result string
	Reason string
	// Detail is the engine's record (signals sent), for the audit trail.
	Detail any
}

// Event is one audited decision.
type Event struct {
	Time     time.Time `json:"-"`
	Action   string    `json:"action"` // warn, kick, cancel, exempt, failure
	Rule     string    `json:"rule"`
	Reason   string    `json:"reason"`
	DryRun   bool      `json:"dry_run"`
	Session  string    `json:"session"`
	User     string    `json:"user"`
	UID      int       `json:"uid"`
	TTY      string    `json:"tty"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	IdleSec  *int64    `json:"idle_seconds"`
	Deadline time.Time `json:"deadline,omitzero"`
	Outcome  string    `json:"outcome"`
	Error    string    `json:"error,omitempty"`
	Message  string    `json:"message,omitempty"`
	Detail   any       `json:"detail,omitempty"`
}

// Options configure Run.
type Options struct {
	Config    string
	StatePath string // "" = DefaultState; "-" = keep state in memory only
	DryRun    bool
	Once      bool
	Backend   Backend
	// Evidence turns a discovery snapshot into policy inputs;
	// SystemEvidence when nil.
	Evidence func(*session.Result) []policy.Input
	// Refresh re-reads the evidence of the last discovery's inputs (see
	// SystemRefresh, the default); it is used only with Changes, which tell
	// when a discovery is needed.
	Refresh func(in []policy.Input, cpu bool) ([]policy.Input, bool)
	Log     *slog.Logger
	Now     func() time.Time
	// Reload receives a value for each SIGHUP.
	Reload <-chan struct{}
	// Reopen, when set, is called at each reload: it reopens the audit
	// file, which logrotate has renamed (packaging/sshkick.logrotate).
	Reopen func() error
	Notify *Notifier
	// Changes, when set, wakes the daemon when a login begins or ends
	// (utmp, logind); the interval rescan stays the fallback.
	Changes *Changes
	// Metrics, when set, is updated after every evaluation.
	Metrics *Metrics
	Lookup  policy.Lookup
	// after is time.After; tests replace it.
	after func(time.Duration) <-chan time.Time
}

// Run runs the daemon until ctx is cancelled (SIGTERM, SIGINT): a clean
// stop is not an error. It fails at once when the policy is invalid.
func Run(ctx context.Context, o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.after == nil {
		o.after = time.After
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Evidence == nil {
		o.Evidence = SystemEvidence
	}
	if o.StatePath == "" {
		o.StatePath = DefaultState
	}
	if o.Refresh == nil {
		o.Refresh = SystemRefresh
	}
	pol, diags, err := policy.LoadFile(o.Config, o.Lookup)
	for _, d := range diags {
		o.Log.Warn("policy", "diagnostic", d.String())
	}
	if err != nil {
		return err
	}
	o.Metrics.reloaded(true, o.Now())
	d := &daemon{o: o, pol: pol}
	d.st = d.loadState()
	o.Log.Info("watching", "policy", sanitize.Field(o.Config), "rules", len(pol.Rules), "interval", pol.Interval.String(), "dry_run", o.DryRun)
	o.Notify.Send("READY=1\nSTATUS=watching sessions")
	defer func() {
		o.Notify.Send("STOPPING=1")
		d.saveState(true)
		o.Log.Info("stopped")
	}()
	var changes <-chan struct{}
	if o.Changes != nil {
		changes = o.Changes.C
		o.Log.Info("woken by changes", "watching", sanitize.Field(strings.Join(o.Changes.Watching(), ", ")))
	}
	dirty := true
	for {
		start := o.Now()
		o.Changes.Refresh()
		// Without change notifications every look is a discovery; with them,
		// only after a change, a reload, every fullRescan, and before acting.
		full := o.Changes == nil || dirty || start.Sub(d.lastFull) >= fullRescan
		dirty = false
		next := d.step(ctx, full)
		if o.Once || ctx.Err() != nil {
			return nil
		}
		wait := pol.Interval
		if !next.IsZero() {
			if w := next.Sub(o.Now()); w < wait {
				wait = max(w, 50*time.Millisecond)
			}
		}
		until := o.Now().Add(wait)
		wd := o.Notify.WatchdogInterval()
	sleep:
		for {
			left := until.Sub(o.Now())
			if left <= 0 {
				break
			}
			if wd > 0 && wd < left {
				left = wd
			}
			select {
			case <-ctx.Done():
				return nil
			case <-o.Reload:
				d.reload()
				pol = d.pol
				dirty = true
				break sleep
			case <-changes:
				dirty = true
				// A login began or ended: look soon, not at once — one login
				// is several writes (utmp, logind, the shell starting), and a
				// storm of logins costs at most one discovery per changeGap.
				soon := o.Now().Add(changeSettle)
				if gap := start.Add(changeGap); gap.After(soon) {
					soon = gap
				}
				if soon.Before(until) {
					until = soon
				}
			case <-o.after(left):
				o.Notify.Send("WATCHDOG=1")
			}
		}
	}
}

// How soon after a change the daemon looks (changeSettle), and how often
// at most changes make it look (changeGap).
const (
	changeSettle = 200 * time.Millisecond
	changeGap    = time.Second
)

// fullRescan is how often the daemon discovers the sessions afresh when
// changes wake it: between discoveries, a look re-reads only the evidence
// of the sessions it knows (Options.Refresh), and a discovery comes first
// whenever that look would act. It catches what no watched file shows: a
// no-tty session on a host without logind, a user's new groups.
const fullRescan = 10 * time.Minute

// cpuEvery is how often a look between discoveries re-reads CPU times
// (busy_cpu): busy is CPU use between two samples, and a discovery, which
// samples it too, comes before every action, so a session that just got
// busy is never kicked as idle.
const cpuEvery = time.Minute

type daemon struct {
	o     Options
	pol   *policy.Policy
	st    policy.State
	saved policy.State
	// last is the inputs of the last look, lastFull when the sessions
	// were last discovered.
	last              []policy.Input
	lastFull, lastCPU time.Time
}

func (d *daemon) reload() {
	o := d.o
	o.Notify.Send("RELOADING=1\nMONOTONIC_USEC=" + monotonicUsec())
	if o.Reopen != nil {
		if err := o.Reopen(); err != nil {
			o.Log.Error("audit file not reopened: records go on to the old one", "error", sanitize.Field(err.Error()))
			o.Metrics.failure()
		}
	}
	pol, diags, err := policy.LoadFile(o.Config, o.Lookup)
	for _, dg := range diags {
		o.Log.Warn("policy", "diagnostic", dg.String())
	}
	if err != nil {
		var ie *policy.InvalidError
		msg := err.Error()
		if errors.As(err, &ie) {
			msg = ie.First().String()
		}
		o.Log.Error("reload failed: keeping the policy in force", "error", sanitize.Field(msg))
		o.Metrics.reloaded(false, o.Now())
	} else {
		d.pol = pol
		o.Log.Info("reloaded", "policy", sanitize.Field(o.Config), "rules", len(pol.Rules))
		o.Metrics.reloaded(true, o.Now())
	}
	o.Notify.Send("READY=1")
}

// tick is one evaluation: discover, decide, act, save.
func (d *daemon) tick(ctx context.Context) time.Time { return d.step(ctx, true) }

// step is one evaluation; unless full, it first tries the last discovery's
// sessions with their evidence re-read, and discovers only when a member
// is gone or there is something to do (so every action is decided on a
// fresh discovery).
func (d *daemon) step(ctx context.Context, full bool) time.Time {
	o := d.o
	start := o.Now()
	if !full && d.last != nil {
		cpu := usesCPU(d.pol) && start.Sub(d.lastCPU) >= cpuEvery
		if in, ok := o.Refresh(d.last, cpu); ok {
			dec := policy.Evaluate(d.pol, o.Now(), in, d.st)
			if len(dec.Actions) == 0 {
				d.st = dec.State
				if cpu {
					d.lastCPU = start
				}
				o.Metrics.sessions(in)
				d.saveState(false)
				o.Metrics.evaluated(o.Now().Sub(start))
				return dec.Next
			}
		}
	}
	d.lastFull, d.lastCPU = start, start
	res, err := o.Backend.Sessions(ctx)
	if err != nil {
		o.Log.Error("discovery failed", "error", sanitize.Field(err.Error()))
		o.Metrics.failure()
		return time.Time{}
	}
	in := o.Evidence(res)
	d.last = in
	now := o.Now()
	dec := policy.Evaluate(d.pol, now, in, d.st)
	d.st = dec.State
	o.Metrics.sessions(in)
	var warns []policy.Action
	var kicks []policy.Action
	for _, a := range dec.Actions {
		switch a.Kind {
		case policy.Warn, policy.Cancel:
			if a.Text == "" {
				d.record(ctx, a, "silent", "", nil)
				continue
			}
			warns = append(warns, a)
		case policy.Kick:
			kicks = append(kicks, a)
		case policy.Exempt:
			d.record(ctx, a, "spared", "", nil)
		}
	}
	if len(warns) > 0 {
		if o.DryRun {
			for _, a := range warns {
				d.record(ctx, a, "would-send", "", nil)
			}
		} else {
			notices := make([]Notice, len(warns))
			for i, a := range warns {
				notices[i] = Notice{Session: *a.Session, Text: a.Text}
			}
			dl, err := o.Backend.Warn(ctx, notices)
			done := o.Now()
			for i, a := range warns {
				d.st.NoteWrite(a.Key, done)
				out, msg := "failed", ""
				if err != nil {
					msg = sanitize.Field(err.Error())
				} else if i < len(dl) {
					out, msg = dl[i].Status, dl[i].Err
				}
				d.record(ctx, a, out, msg, nil)
			}
		}
	}
	if len(kicks) > 0 {
		if o.DryRun {
			for _, a := range kicks {
				d.st.GiveUp(a.Key)
				d.record(ctx, a, "would-kick", "", nil)
			}
		} else {
			ss := make([]session.Session, len(kicks))
			for i, a := range kicks {
				ss[i] = *a.Session
			}
			kr, err := o.Backend.Kick(ctx, ss, "policy")
			for i, a := range kicks {
				r := KickResult{Result: "failed"}
				if err != nil {
					r.Reason = sanitize.Field(err.Error())
				} else if i < len(kr) {
					r = kr[i]
				}
				if r.Result == "refused" {
					d.st.GiveUp(a.Key)
				}
				d.record(ctx, a, r.Result, r.Reason, r.Detail)
			}
		}
	}
	d.saveState(false)
	o.Metrics.evaluated(o.Now().Sub(start))
	return dec.Next
}

// usesCPU reports whether a busy_cpu applies anywhere in p.
func usesCPU(p *policy.Policy) bool {
	if p.BusyCPU > 0 {
		return true
	}
	for i := range p.Rules {
		if p.Rules[i].BusyCPU > 0 {
			return true
		}
	}
	return false
}

// record logs one line and writes one audit record for a decision.
func (d *daemon) record(ctx context.Context, a policy.Action, outcome, errText string, detail any) {
	o := d.o
	s := a.Session
	ev := Event{Time: o.Now(), Action: string(a.Kind), Rule: a.Rule, Reason: string(a.Reason), DryRun: o.DryRun,
		Session: sanitize.Field(s.ID), User: sanitize.Field(s.User), UID: s.UID, TTY: sanitize.Field(s.TTY), Host: sanitize.Field(s.Host), PID: s.PID,
		Deadline: a.Deadline, Outcome: outcome, Error: errText, Detail: detail}
	if a.Idle >= 0 {
		sec := int64(a.Idle / time.Second)
		ev.IdleSec = &sec
	}
	if a.Text != "" {
		ev.Message = sanitize.Field(a.Text)
	}
	failed := (a.Kind == policy.Kick && outcome != "ended" && outcome != "would-kick") ||
		((a.Kind == policy.Warn || a.Kind == policy.Cancel) && outcome != "delivered" && outcome != "would-send" && outcome != "no-terminal" && outcome != "silent")
	attrs := []any{"action", ev.Action, "rule", ev.Rule, "reason", ev.Reason, "session", ev.Session, "user", ev.User, "tty", ev.TTY,
		"outcome", outcome, "dry_run", o.DryRun}
	if ev.IdleSec != nil {
		attrs = append(attrs, "idle", policy.Short(a.Idle))
	}
	if !a.Deadline.IsZero() {
		attrs = append(attrs, "deadline", a.Deadline.Format(time.RFC3339))
	}
	if errText != "" {
		attrs = append(attrs, "error", ev.Error)
	}
	if failed {
		o.Log.Warn("failure", attrs...)
	} else {
		o.Log.Info(string(a.Kind), attrs...)
	}
	o.Metrics.action(a.Kind, failed)
	if err := o.Backend.Audit(ctx, ev); err != nil {
		o.Log.Error("audit record not written", "error", sanitize.Field(err.Error()))
		o.Metrics.failure()
	}
	if failed {
		fe := ev
		fe.Action = "failure"
		fe.Detail = nil
		o.Backend.Audit(ctx, fe)
	}
}

type stateFile struct {
	Version int `json:"version"`
	policy.State
}

func (d *daemon) loadState() policy.State {
	st := policy.State{Sessions: map[string]*policy.Track{}}
	if d.o.StatePath == "-" {
		return st
	}
	b, err := os.ReadFile(d.o.StatePath)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			d.o.Log.Warn("cannot read the state file: starting afresh (warnings may be repeated)", "error", sanitize.Field(err.Error()))
		}
		return st
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || f.Sessions == nil {
		d.o.Log.Warn("the state file is damaged: starting afresh (warnings may be repeated)", "file", sanitize.Field(d.o.StatePath))
		return st
	}
	d.saved = f.State.Clone()
	return f.State
}

// saveState writes the state atomically (temporary file, fsync, rename)
// when it changed in anything but CPU samples, or when forced.
func (d *daemon) saveState(force bool) {
	if d.o.StatePath == "-" || d.o.DryRun {
		return
	}
	if !force && !d.st.Changed(d.saved) {
		return
	}
	if err := WriteState(d.o.StatePath, d.st); err != nil {
		d.o.Log.Error("state not saved: a restart may repeat warnings", "error", sanitize.Field(err.Error()))
		d.o.Metrics.failure()
		return
	}
	d.saved = d.st.Clone()
}

// ReadState reads a state file (for `why` and `simulate`); a missing file
// is an empty state.
func ReadState(path string) (policy.State, error) {
	st := policy.State{Sessions: map[string]*policy.Track{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil || f.Sessions == nil {
		return st, fmt.Errorf("state file %s is damaged", path)
	}
	return f.State, nil
}

// WriteState writes st to path atomically.
func WriteState(path string, st policy.State) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	b, err := json.Marshal(stateFile{Version: 1, State: st})
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".watch-state-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o640)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if df, err := os.Open(dir); err == nil {
		df.Sync()
		df.Close()
	}
	return nil
}
