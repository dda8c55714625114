package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sshkick/sshkick/internal/session"
)

// Evidence is what the caller observed about a session, beyond what
// discovery put in the Session.
type Evidence struct {
	// Atime and Mtime are the terminal's access and modification times
	// (input read, output written); zero when the session has no terminal
	// or it could not be read. Both have 8-second granularity.
	Atime, Mtime time.Time
	// CPU is the total CPU time of the session's processes now; < 0
	// unknown. busy_cpu compares its growth between evaluations.
	CPU time.Duration
	// Groups are the user's groups (primary included), by name.
	Groups []string
	// Own is true for the session the daemon (or the command) runs in.
	Own bool
}

// Input is one session and its evidence.
type Input struct {
	Session  *session.Session
	Evidence Evidence
}

// ActionKind is what to do with a session.
type ActionKind string

// Actions.
const (
	Warn   ActionKind = "warn"   // write the warning Text to the session's terminal
	Kick   ActionKind = "kick"   // end the session
	Cancel ActionKind = "cancel" // the countdown is off: write Text to tell the user
	Exempt ActionKind = "exempt" // the session is spared (recorded once)
)

// Reason is why an action was decided.
type Reason string

// Reasons.
const (
	ReasonIdle       Reason = "idle"
	ReasonMaxSession Reason = "max_session"
	ReasonExempt     Reason = "exempt"         // an exempt rule matched
	ReasonRoot       Reason = "root"           // root, not named by the rule
	ReasonOwn        Reason = "own-session"    // the daemon's own session, not named
	ReasonActive     Reason = "active"         // input (or output, CPU use) after a warning
	ReasonPolicy     Reason = "policy-changed" // the rule that started the countdown no longer applies
)

// Action is one decision about one session.
type Action struct {
	Kind    ActionKind
	Key     string
	Session *session.Session
	Rule    string
	Reason  Reason
	// Idle is the session's idle time (< 0 without one).
	Idle     time.Duration
	Deadline time.Time
	// Offset is, for a warning, how long before the deadline it is.
	Offset time.Duration
	// Text is the message for Warn and Cancel: placeholders filled in,
	// values sanitized as fields; the writer sanitizes it as a message.
	Text string
}

// Track is what the daemon remembers about one session between
// evaluations (and restarts: it is saved in the state file).
type Track struct {
	Rule string `json:"rule,omitempty"`
	// Exempt is the exemption already recorded (rule and reason), so it is
	// audited once, not at every evaluation.
	Exempt string `json:"exempt,omitempty"`
	// The countdown: its reason, its deadline (after any grace), the
	// warnings sent (offsets before Deadline) and when the first went.
	Reason   Reason          `json:"reason,omitempty"`
	Deadline time.Time       `json:"deadline,omitzero"`
	Sent     []time.Duration `json:"sent,omitempty"`
	WarnedAt time.Time       `json:"warned_at,omitzero"`
	// Since is the activity the idle countdown was computed from: input
	// that moves it (the tty's atime, whole seconds, moved only across an
	// 8-second boundary) cancels the countdown.
	Since time.Time `json:"since,omitzero"`
	// WroteAt is when our last write to the terminal finished: an mtime
	// not after it may be our own warning, and is not the user's output.
	WroteAt time.Time `json:"wrote_at,omitzero"`
	// Output is the last mtime taken as the session's own output.
	Output time.Time `json:"output,omitzero"`
	// BusyAt is the last evaluation that found the session busy (CPU).
	BusyAt time.Time `json:"busy_at,omitzero"`
	// CPU and CPUAt are the last CPU sample; not worth a state write.
	CPU   time.Duration `json:"cpu_ns,omitempty"`
	CPUAt time.Time     `json:"cpu_at,omitzero"`
	// Kicks counts kick attempts of this countdown; KickAt the last.
	Kicks  int       `json:"kicks,omitempty"`
	KickAt time.Time `json:"kick_at,omitzero"`
}

func (t *Track) counting() bool { return !t.Deadline.IsZero() }

func (t *Track) reset() {
	t.Reason, t.Deadline, t.Sent, t.WarnedAt, t.Since, t.Kicks, t.KickAt = "", time.Time{}, nil, time.Time{}, time.Time{}, 0, time.Time{}
}

// same reports whether two tracks differ only in their CPU sample (which
// changes at every evaluation and is not worth writing the state for).
func (t Track) same(o Track) bool {
	t.CPU, t.CPUAt, o.CPU, o.CPUAt = 0, time.Time{}, 0, time.Time{}
	t.BusyAt, o.BusyAt = t.BusyAt.Truncate(time.Minute), o.BusyAt.Truncate(time.Minute)
	return t.Rule == o.Rule && t.Exempt == o.Exempt && t.Reason == o.Reason && t.Deadline.Equal(o.Deadline) &&
		slices.Equal(t.Sent, o.Sent) && t.WarnedAt.Equal(o.WarnedAt) && t.Since.Equal(o.Since) && t.WroteAt.Equal(o.WroteAt) &&
		t.Output.Equal(o.Output) && t.BusyAt.Equal(o.BusyAt) && t.Kicks == o.Kicks && t.KickAt.Equal(o.KickAt)
}

// State is everything remembered, by session Key.
type State struct {
	Sessions map[string]*Track `json:"sessions"`
}

// Clone returns a deep copy.
func (s State) Clone() State {
	c := State{Sessions: make(map[string]*Track, len(s.Sessions))}
	for k, t := range s.Sessions {
		x := *t
		x.Sent = slices.Clone(t.Sent)
		c.Sessions[k] = &x
	}
	return c
}

// Changed reports whether s differs from o in anything worth saving.
func (s State) Changed(o State) bool {
	if len(s.Sessions) != len(o.Sessions) {
		return true
	}
	for k, t := range s.Sessions {
		u, ok := o.Sessions[k]
		if !ok || !t.same(*u) {
			return true
		}
	}
	return false
}

// NoteWrite records that we finished writing to the session's terminal
// at: its mtime up to then is ours, not the session's output.
func (s *State) NoteWrite(key string, at time.Time) {
	if t := s.Sessions[key]; t != nil && at.After(t.WroteAt) {
		t.WroteAt = at
	}
}

// GiveUp stops kick attempts of the session's countdown (a dry run, or a
// kick that was refused for good).
func (s *State) GiveUp(key string) {
	if t := s.Sessions[key]; t != nil {
		t.Kicks = maxKicks
	}
}

// maxKicks bounds kick attempts of one countdown: a session that survives
// or is refused is retried, but not for ever.
const maxKicks = 3

// Key identifies a session across evaluations: its id plus the identity of
// its first process, so a new login on a reused terminal starts afresh.
func Key(s *session.Session) string {
	for _, role := range []session.Role{session.RoleLeader, session.RoleSSHD, session.RoleMonitor, session.RoleLogin} {
		for _, m := range s.Members {
			if m.Role == role {
				return s.ID + "@" + strconv.Itoa(m.PID) + ":" + strconv.FormatUint(m.Start, 10)
			}
		}
	}
	return s.ID + "@" + strconv.Itoa(s.PID) + ":" + strconv.FormatInt(s.Login.Unix(), 10)
}

// Decision is the outcome of one evaluation.
type Decision struct {
	Actions []Action
	// Next is when something falls due (a warning, a deadline) if no one
	// types; zero when nothing is pending. The daemon wakes then, or after
	// its interval, whichever comes first.
	Next  time.Time
	State State
}

// Evaluate decides, for every session, what to do at now. It is a pure
// function: st is not modified; the new state is in the Decision.
func Evaluate(p *Policy, now time.Time, in []Input, st State) Decision {
	d := Decision{State: State{Sessions: make(map[string]*Track, len(in))}}
	old := st.Clone()
	for i := range in {
		key := Key(in[i].Session)
		t := old.Sessions[key]
		if t == nil {
			t = &Track{}
		}
		j := judge(p, now, &in[i], key, t)
		d.Actions = append(d.Actions, j.actions...)
		if !j.next.IsZero() && (d.Next.IsZero() || j.next.Before(d.Next)) {
			d.Next = j.next
		}
		d.State.Sessions[key] = t
	}
	return d
}

// RuleCheck says whether one rule matched a session, and why not.
type RuleCheck struct {
	Rule    string `json:"rule"`
	Line    int    `json:"line"`
	Matched bool   `json:"matched"`
	// Why it did not match ("" when it did, or when an earlier rule won).
	Why string `json:"why,omitempty"`
}

// judgement is what judge found about one session.
type judgement struct {
	actions []Action
	next    time.Time

	rules    []RuleCheck
	rule     *Rule
	exempt   Reason
	why      string // one line for people
	idle     time.Duration
	activity time.Time
	source   string
	idleDL   time.Time
	maxDL    time.Time
	deadline time.Time
	reason   Reason
	busy     bool
}

// match finds the first rule for the session, with why each earlier rule
// did not match.
func match(p *Policy, s *session.Session, ev *Evidence) (int, []RuleCheck) {
	checks := make([]RuleCheck, 0, len(p.Rules))
	for i := range p.Rules {
		r := &p.Rules[i]
		why := mismatch(r, s, ev)
		checks = append(checks, RuleCheck{Rule: r.Name, Line: r.Line, Matched: why == "", Why: why})
		if why == "" {
			return i, checks
		}
	}
	return -1, checks
}

func mismatch(r *Rule, s *session.Session, ev *Evidence) string {
	if len(r.Users) > 0 && !slices.Contains(r.Users, s.User) {
		return fmt.Sprintf("users: %s is not one of %s", s.User, strings.Join(r.Users, ", "))
	}
	if len(r.Groups) > 0 && !slices.ContainsFunc(r.Groups, func(g string) bool { return slices.Contains(ev.Groups, g) }) {
		return fmt.Sprintf("groups: %s is in none of %s", s.User, strings.Join(r.Groups, ", "))
	}
	if len(r.From) > 0 {
		a, err := netip.ParseAddr(s.Addr)
		if err != nil {
			return "from: the session's client address is unknown"
		}
		a = a.Unmap()
		if !slices.ContainsFunc(r.From, func(p netip.Prefix) bool { return p.Contains(a) }) {
			return fmt.Sprintf("from: %s is in none of the rule's networks", a)
		}
	}
	kinds := r.Kinds
	if len(kinds) == 0 {
		kinds = defaultKinds
	}
	if !slices.Contains(kinds, s.Kind) {
		if len(r.Kinds) == 0 {
			return fmt.Sprintf("kinds: a rule without kinds does not match %s sessions (name them in kinds)", s.Kind)
		}
		return fmt.Sprintf("kinds: %s is not one of the rule's kinds", s.Kind)
	}
	return ""
}

func (j *judgement) act(a Action) { j.actions = append(j.actions, a) }

func (j *judgement) wake(t time.Time) {
	if j.next.IsZero() || t.Before(j.next) {
		j.next = t
	}
}

// judge decides for one session and updates its track.
func judge(p *Policy, now time.Time, in *Input, key string, t *Track) *judgement {
	s, ev := in.Session, &in.Evidence
	j := &judgement{idle: -1}
	base := Action{Key: key, Session: s, Idle: -1}
	cancel := func(reason Reason, rule string) {
		if t.counting() {
			a := base
			a.Kind, a.Reason, a.Rule, a.Deadline = Cancel, reason, rule, t.Deadline
			a.Idle = j.idle
			if !t.WarnedAt.IsZero() {
				a.Text = Render(p.CancelMessage, Vars{User: s.User, TTY: s.TTY, Idle: j.idle, Deadline: t.Deadline, Now: now, Reason: string(reason), Rule: rule})
			}
			j.act(a)
		}
		t.reset()
	}
	if s.Stale {
		j.why = "a stale utmp record (" + s.StaleReason + "): never acted on"
		t.reset()
		return j
	}
	ri, checks := match(p, s, ev)
	j.rules = checks
	if ri < 0 {
		j.why = "no rule matches: left alone"
		cancel(ReasonPolicy, t.Rule)
		t.Rule, t.Exempt = "", ""
		return j
	}
	r := &p.Rules[ri]
	j.rule = r
	if t.Rule != r.Name {
		cancel(ReasonPolicy, t.Rule)
		t.Exempt = ""
	}
	t.Rule = r.Name
	base.Rule = r.Name

	// CPU: busy since the last evaluation counts as activity.
	if busy := r.busyCPU(p); ev.CPU >= 0 {
		if busy > 0 && !t.CPUAt.IsZero() && now.After(t.CPUAt) {
			delta := ev.CPU - t.CPU
			if delta > 0 && float64(delta)/float64(now.Sub(t.CPUAt)) > busy {
				t.BusyAt = now
				j.busy = true
			}
		}
		t.CPU, t.CPUAt = ev.CPU, now
	}

	switch {
	case s.UID == 0 && !r.namesUser(s.User):
		j.exempt = ReasonRoot
		j.why = fmt.Sprintf("root: never acted on unless rule %s names root in users", r.Name)
	case ev.Own && !r.namesUser(s.User):
		j.exempt = ReasonOwn
		j.why = fmt.Sprintf("the session sshkick runs in: never acted on unless rule %s names %s in users", r.Name, s.User)
	case r.Exempt:
		j.exempt = ReasonExempt
		j.why = fmt.Sprintf("exempt by rule %s", r.Name)
	}
	if j.exempt != "" {
		cancel(ReasonPolicy, r.Name)
		if mark := r.Name + ":" + string(j.exempt); t.Exempt != mark {
			t.Exempt = mark
			a := base
			a.Kind, a.Reason = Exempt, j.exempt
			j.act(a)
		}
		return j
	}
	t.Exempt = ""

	// Idle: only a session with a terminal can be idle.
	if r.Idle > 0 && s.TTY != "" && !ev.Atime.IsZero() {
		act, src := ev.Atime, "tty atime (input)"
		if r.idleInput(p) == InputOutput && !ev.Mtime.IsZero() {
			if t.WroteAt.IsZero() || ev.Mtime.After(t.WroteAt) {
				t.Output = ev.Mtime
			}
			if t.Output.After(act) {
				act, src = t.Output, "tty mtime (output)"
			}
		}
		if t.BusyAt.After(act) {
			act, src = t.BusyAt, "CPU use above busy_cpu"
		}
		if s.Login.After(act) {
			act, src = s.Login, "login"
		}
		if act.After(now) {
			// A clock stepped back, or a forged time: not idle.
			act, src = now, src+" (in the future: taken as now)"
		}
		j.activity, j.source = act, src
		j.idle = now.Sub(act)
		j.idleDL = act.Add(r.Idle)
	}
	if r.MaxSession > 0 && !s.Login.IsZero() {
		j.maxDL = s.Login.Add(r.MaxSession)
	}
	base.Idle = j.idle
	switch {
	case !j.idleDL.IsZero() && (j.maxDL.IsZero() || !j.maxDL.Before(j.idleDL)):
		j.deadline, j.reason = j.idleDL, ReasonIdle
	case !j.maxDL.IsZero():
		j.deadline, j.reason = j.maxDL, ReasonMaxSession
	}

	// Activity after the first warning ends an idle countdown.
	if t.counting() && t.Reason == ReasonIdle && !t.WarnedAt.IsZero() && j.activity.After(t.Since) {
		cancel(ReasonActive, r.Name)
	}
	if j.deadline.IsZero() {
		cancel(ReasonPolicy, r.Name)
		if r.Idle > 0 && s.TTY == "" {
			j.why = fmt.Sprintf("rule %s: no terminal, so never idle; no max_session", r.Name)
		} else {
			j.why = fmt.Sprintf("rule %s: nothing to enforce on this session", r.Name)
		}
		return j
	}
	if t.counting() && t.Reason != j.reason {
		// The other limit now comes first: start its own countdown.
		t.reset()
	}
	base.Reason = j.reason
	warns := r.warn(p)
	reasonText := func() string {
		if j.reason == ReasonMaxSession {
			return "session limit " + Short(r.MaxSession)
		}
		return "idle limit " + Short(r.Idle)
	}
	warn := func(eff time.Time, off time.Duration) {
		a := base
		a.Kind, a.Deadline, a.Offset = Warn, eff, off
		a.Text = Render(r.message(p, j.reason), Vars{User: s.User, TTY: s.TTY, Idle: j.idle, Deadline: eff, Now: now, Reason: reasonText(), Rule: r.Name})
		j.act(a)
	}
	if !t.counting() {
		first := j.deadline
		if len(warns) > 0 {
			first = j.deadline.Add(-warns[0])
		}
		if now.Before(first) && now.Before(j.deadline) {
			j.wake(first)
			j.why = fmt.Sprintf("rule %s: %s deadline %s", r.Name, j.reason, j.deadline.Format(time.RFC3339))
			return j
		}
		t.Since = j.activity
		if len(warns) == 0 {
			t.Reason, t.Deadline = j.reason, j.deadline
		} else {
			// The first warning always leaves at least the last offset:
			// a session found long past its deadline (a daemon just
			// started, a policy just loaded) is warned, not ended at once.
			last := warns[len(warns)-1]
			eff := j.deadline
			if eff.Before(now.Add(last)) {
				eff = now.Add(last)
			}
			t.Reason, t.Deadline, t.WarnedAt = j.reason, eff, now
			for _, w := range warns {
				if !now.Before(eff.Add(-w)) {
					t.Sent = append(t.Sent, w)
				}
			}
			warn(eff, slices.Min(t.Sent))
		}
	}
	eff := t.Deadline
	if !now.Before(eff) {
		j.why = fmt.Sprintf("rule %s: %s deadline passed", r.Name, j.reason)
		if t.Kicks < maxKicks && (t.KickAt.IsZero() || now.Sub(t.KickAt) >= p.Interval) {
			t.Kicks++
			t.KickAt = now
			a := base
			a.Kind, a.Deadline = Kick, eff
			j.act(a)
		}
		if t.Kicks < maxKicks {
			j.wake(t.KickAt.Add(p.Interval))
		}
		return j
	}
	// Warnings that fell due since the last evaluation: send the latest.
	var due []time.Duration
	for _, w := range warns {
		if !slices.Contains(t.Sent, w) && !now.Before(eff.Add(-w)) {
			due = append(due, w)
		}
	}
	if len(due) > 0 {
		t.Sent = append(t.Sent, due...)
		if t.WarnedAt.IsZero() {
			t.WarnedAt = now
		}
		warn(eff, slices.Min(due))
	}
	for _, w := range warns {
		if !slices.Contains(t.Sent, w) {
			j.wake(eff.Add(-w))
		}
	}
	j.wake(eff)
	j.why = fmt.Sprintf("rule %s: %s countdown, deadline %s", r.Name, j.reason, eff.Format(time.RFC3339))
	return j
}
