// Package enginetest has fakes for every edge of an engine.Engine — a
// discoverer serving canned sessions, a signaller that records what it was
// asked, a messenger, an in-memory audit trail and a clock that advances
// only when waited on — so engine behaviour and front ends are tested in
// milliseconds without a host. Only tests import it.
package enginetest

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/sshkick/sshkick/internal/audit"
	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// Clock is a fake clock: After advances it by d at once, so a schedule
// runs through its whole delay instantly in simulated time. At runs a
// hook when the time first reaches a moment (e.g. cancel a context).
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	hooks []hook
	// Waits records every wait asked for.
	Waits []time.Duration
}

type hook struct {
	at time.Time
	f  func()
}

// NewClock starts a fake clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// At runs f (once) when the clock first reaches t.
func (c *Clock) At(t time.Time, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hooks = append(c.hooks, hook{t, f})
}

func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.Waits = append(c.Waits, d)
	c.now = c.now.Add(d)
	now := c.now
	var due []func()
	keep := c.hooks[:0]
	for _, h := range c.hooks {
		if !h.at.After(now) {
			due = append(due, h.f)
		} else {
			keep = append(keep, h)
		}
	}
	c.hooks = keep
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

// Discoverer serves canned sessions. Gone marks sessions (by id) that are
// no longer alive; Input sets a terminal's last input time.
type Discoverer struct {
	mu       sync.Mutex
	Sessions []session.Session
	Notes    []string
	Err      error
	Calls    int
	Gone     map[string]bool
	Input    map[string]time.Time
	// GoneAfter makes a session end once the clock passes a moment.
	GoneAfter map[string]time.Time
	Clock     *Clock
	Closed    bool
	// Proc is the process table each snapshot carries.
	Proc *proc.Snapshot
}

func (d *Discoverer) Discover(ctx context.Context) (*session.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Calls++
	if d.Err != nil {
		return nil, d.Err
	}
	var live []session.Session
	for _, s := range d.Sessions {
		if !d.gone(&s) {
			live = append(live, cloneSession(s))
		}
	}
	return &session.Result{Sessions: live, Notes: slices.Clone(d.Notes), Proc: d.Proc}, nil
}

func cloneSession(s session.Session) session.Session {
	s.Members = slices.Clone(s.Members)
	s.PIDs = slices.Clone(s.PIDs)
	s.Sources = slices.Clone(s.Sources)
	s.SIDs = slices.Clone(s.SIDs)
	return s
}

func (d *Discoverer) gone(s *session.Session) bool {
	if d.Gone[s.ID] {
		return true
	}
	if t, ok := d.GoneAfter[s.ID]; ok && d.Clock != nil && !d.Clock.Now().Before(t) {
		return true
	}
	return false
}

func (d *Discoverer) Alive(s *session.Session) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.gone(s)
}

func (d *Discoverer) LastInput(s *session.Session) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.Input[s.ID]
	return t, ok
}

func (d *Discoverer) Logind() kick.Logind { return nil }

func (d *Discoverer) Close() error { d.Closed = true; return nil }

// Signaller records kicks; each session ends unless listed in Survive.
type Signaller struct {
	mu       sync.Mutex
	CheckErr error
	Survive  map[string]bool
	Kicked   []string
	Opts     []kick.Options
	Users    []int
	// UserFound is what KillUser finds per uid.
	UserFound map[int][]int
	// At records the clock time of each Kick call.
	Clock *Clock
	At    []time.Time
}

func (s *Signaller) Check() error { return s.CheckErr }

func (s *Signaller) Kick(ctx context.Context, sessions []session.Session, o kick.Options) ([]kick.Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Opts = append(s.Opts, o)
	if s.Clock != nil {
		s.At = append(s.At, s.Clock.Now())
	}
	out := make([]kick.Outcome, len(sessions))
	for i := range sessions {
		ss := &sessions[i]
		s.Kicked = append(s.Kicked, ss.ID)
		oc := kick.Outcome{Signals: []kick.SignalRecord{}, Gone: []kick.Exit{}, Survivors: []int{}, Refused: []kick.Refusal{}}
		for _, m := range ss.Members {
			res := "sent"
			if o.DryRun {
				res = "would send"
			}
			oc.Signals = append(oc.Signals, kick.SignalRecord{PID: m.PID, Start: m.Start, Comm: m.Comm, Role: m.Role, Signal: kick.SignalName(syscall.Signal(o.Signal)), Result: res})
		}
		switch {
		case o.DryRun:
			oc.Result = kick.DryRun
		case s.Survive[ss.ID]:
			oc.Result, oc.Reason = kick.Survived, "1 process(es) still running"
			if len(ss.Members) > 0 {
				oc.Survivors = []int{ss.Members[0].PID}
			}
		default:
			oc.Result = kick.Ended
			for _, m := range ss.Members {
				oc.Gone = append(oc.Gone, kick.Exit{PID: m.PID, Comm: m.Comm})
			}
		}
		out[i] = oc
	}
	return out, nil
}

func (s *Signaller) KillUser(ctx context.Context, name string, uid, gid int, o kick.Options) kick.UserOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Users = append(s.Users, uid)
	uo := kick.UserOutcome{User: name, UID: uid, Found: slices.Clone(s.UserFound[uid]), Signals: []kick.SignalRecord{}, Survivors: []int{}}
	if uo.Found == nil {
		uo.Found = []int{}
	}
	switch {
	case o.DryRun:
		uo.Result = kick.DryRun
	case len(uo.Found) == 0:
		uo.Result, uo.Reason = kick.Ended, "the user had no processes"
	default:
		uo.Result, uo.Rounds = kick.Ended, 1
	}
	return uo
}

// Sent is one message a Messenger was asked to write.
type Sent struct {
	TTYs  []string
	Msg   string
	Force bool
	At    time.Time
}

// Messenger records messages; terminals in Status get that status, the
// rest are delivered (sessions without a terminal get no-terminal).
type Messenger struct {
	mu     sync.Mutex
	Status map[string]termmsg.Status
	Sent   []Sent
	Clock  *Clock
}

func (m *Messenger) Send(ctx context.Context, targets []termmsg.Target, msg []byte, opt termmsg.Options) []termmsg.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Sent{Msg: string(msg), Force: opt.Force}
	if m.Clock != nil {
		s.At = m.Clock.Now()
	}
	out := make([]termmsg.Result, len(targets))
	for i, t := range targets {
		s.TTYs = append(s.TTYs, t.TTY)
		r := termmsg.Result{Target: t, Status: termmsg.Delivered, Bytes: len(msg)}
		switch {
		case t.TTY == "":
			r.Status, r.Bytes, r.Err = termmsg.NoTerminal, 0, termmsg.ErrNoTerminal
		case m.Status[t.TTY] != "":
			r.Status, r.Bytes, r.Err = m.Status[t.TTY], 0, errors.New(string(m.Status[t.TTY]))
		}
		out[i] = r
	}
	m.Sent = append(m.Sent, s)
	return out
}

// Auditor keeps records in memory as decoded JSON objects; FailAfter > 0
// makes the record with that number (1-based) and every later one fail.
type Auditor struct {
	mu        sync.Mutex
	Records   []map[string]any
	FailAfter int
	OpenErr   error
	n         int
}

// ErrAudit is the error a failing Auditor returns.
var ErrAudit = errors.New("no space left on device")

func (a *Auditor) Record(ev audit.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	if a.FailAfter > 0 && a.n >= a.FailAfter {
		return ErrAudit
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	m["event"] = ev.AuditEvent()
	a.Records = append(a.Records, m)
	return nil
}

func (a *Auditor) Close() error { return nil }

// Events lists the records' event names in order.
func (a *Auditor) Events() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.Records {
		out = append(out, r["event"].(string))
	}
	return out
}

// Host is a fake host: every edge, wired into an Engine by New.
type Host struct {
	Clock      *Clock
	Discoverer *Discoverer
	Signaller  *Signaller
	Messenger  *Messenger
	Auditor    *Auditor
	Env        engine.Env
	// Users is the password database: name → uid.
	Users map[string]int
}

// NewHost is a fake host with sessions, running as root with PID 1000000.
func NewHost(sessions ...session.Session) *Host {
	clock := NewClock(time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC))
	h := &Host{
		Clock:      clock,
		Discoverer: &Discoverer{Sessions: sessions, Clock: clock},
		Signaller:  &Signaller{Clock: clock},
		Messenger:  &Messenger{Clock: clock},
		Auditor:    &Auditor{},
		Users:      map[string]int{"root": 0},
	}
	for _, s := range sessions {
		if s.User != "" && s.UID >= 0 {
			h.Users[s.User] = s.UID
		}
	}
	h.Env = engine.Env{EUID: 0, PID: 1000000, Sender: "root", Hostname: "testhost",
		LookupUser: func(name string) (int, int, bool) {
			uid, ok := h.Users[name]
			return uid, uid, ok
		},
		LookupUID: func(uid int) (string, int, bool) {
			for n, u := range h.Users {
				if u == uid {
					return n, uid, true
				}
			}
			return "", 0, false
		},
	}
	return h
}

// Engine wires the host's edges into an engine.
func (h *Host) Engine() *engine.Engine {
	e, err := engine.New(engine.Config{
		Discoverer: h.Discoverer, Signaller: h.Signaller, Messenger: h.Messenger, Clock: h.Clock, Env: h.Env,
		OpenAuditor: func(string) (engine.Auditor, string, error) {
			if h.Auditor.OpenErr != nil {
				return nil, "", h.Auditor.OpenErr
			}
			return h.Auditor, "memory", nil
		},
	})
	if err != nil {
		panic(err)
	}
	return e
}
