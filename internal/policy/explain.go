package policy

import (
	"time"

	"github.com/sshkick/sshkick/internal/session"
)

// Event is one step of a simulated timeline.
type Event struct {
	At      time.Time        `json:"at"`
	Kind    ActionKind       `json:"action"`
	Key     string           `json:"-"`
	Session *session.Session `json:"-"`
	Rule    string           `json:"rule"`
	Reason  Reason           `json:"reason"`
	// Idle is the idle time at that moment (< 0: none).
	Idle     time.Duration `json:"-"`
	Deadline time.Time     `json:"deadline,omitzero"`
	Offset   time.Duration `json:"-"`
}

// maxSteps bounds a simulation: each step is a warning, a kick or a
// deadline, so a real policy needs a handful per session.
const maxSteps = 100000

// Simulate plays the policy forward from now for the given time, as if
// nobody typed, no program wrote and no process used CPU: the timeline of
// warnings and kicks the daemon would produce. It runs Evaluate itself, so
// the timeline is what the daemon does. st is not modified.
func Simulate(p *Policy, now time.Time, in []Input, st State, horizon time.Duration) []Event {
	var out []Event
	live := make([]Input, len(in))
	copy(live, in)
	st = st.Clone()
	end := now.Add(horizon)
	t := now
	for step := 0; step < maxSteps && len(live) > 0; step++ {
		d := Evaluate(p, t, live, st)
		st = d.State
		gone := map[string]bool{}
		for _, a := range d.Actions {
			out = append(out, Event{At: t, Kind: a.Kind, Key: a.Key, Session: a.Session, Rule: a.Rule, Reason: a.Reason,
				Idle: a.Idle, Deadline: a.Deadline, Offset: a.Offset})
			switch a.Kind {
			case Warn, Cancel:
				st.NoteWrite(a.Key, t)
			case Kick:
				gone[a.Key] = true
			}
		}
		if len(gone) > 0 {
			keep := live[:0]
			for _, x := range live {
				if !gone[Key(x.Session)] {
					keep = append(keep, x)
				}
			}
			live = keep
		}
		if d.Next.IsZero() || d.Next.After(end) {
			break
		}
		if d.Next.After(t) {
			t = d.Next
		} else {
			t = t.Add(time.Second)
		}
	}
	return out
}

// Explanation is everything behind the policy's decision about one
// session: for `sshkick why`.
type Explanation struct {
	Key   string      `json:"-"`
	Rules []RuleCheck `json:"rules"`
	// Rule is the rule that decides ("" when none matches).
	Rule string `json:"rule"`
	// Exempt is why the session is spared, when it is.
	Exempt Reason `json:"exempt,omitempty"`
	// Summary is one line for people.
	Summary string `json:"summary"`
	// Idle (< 0: the session cannot be idle), measured from Activity,
	// which came from Source.
	Idle     time.Duration `json:"-"`
	Activity time.Time     `json:"activity,omitzero"`
	Source   string        `json:"activity_source,omitempty"`
	Busy     bool          `json:"busy"`
	// The deadlines of each limit, and the one that applies.
	IdleDeadline time.Time `json:"idle_deadline,omitzero"`
	MaxDeadline  time.Time `json:"max_session_deadline,omitzero"`
	Deadline     time.Time `json:"deadline,omitzero"`
	Reason       Reason    `json:"reason,omitempty"`
	// Track is what the daemon remembers (warnings already sent).
	Track Track `json:"state"`
	// Timeline is what happens if nobody types: Simulate for this session.
	Timeline []Event `json:"timeline"`
}

// Explain says what the policy does with one session and why: which rule
// matched and why the earlier ones did not, its evidence, its deadlines,
// the warnings already sent and what comes next (within horizon).
func Explain(p *Policy, now time.Time, in Input, st State, horizon time.Duration) Explanation {
	key := Key(in.Session)
	t := Track{}
	if old := st.Sessions[key]; old != nil {
		t = *old
	}
	tc := t
	j := judge(p, now, &in, key, &tc)
	e := Explanation{Key: key, Rules: j.rules, Exempt: j.exempt, Summary: j.why, Idle: j.idle, Activity: j.activity,
		Source: j.source, Busy: j.busy, IdleDeadline: j.idleDL, MaxDeadline: j.maxDL, Deadline: j.deadline, Reason: j.reason, Track: t}
	if e.Rules == nil {
		e.Rules = []RuleCheck{}
	}
	if j.rule != nil {
		e.Rule = j.rule.Name
	}
	if tc.counting() {
		e.Deadline = tc.Deadline
	}
	e.Timeline = Simulate(p, now, []Input{in}, st, horizon)
	if e.Timeline == nil {
		e.Timeline = []Event{}
	}
	return e
}
