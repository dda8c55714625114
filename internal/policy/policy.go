// Package policy is the pure half of `sshkick watch`: it parses and
// validates the TOML policy file, matches sessions to rules (first match
// wins), and decides — as a pure function of the sessions, the evidence
// about them, the time, the remembered state and the policy — which
// sessions to warn, kick, spare or leave alone, and when.
//
// policy never reads the system, never signals and never writes to a
// terminal: the caller (internal/watch) gathers the evidence (tty atime and
// mtime, CPU time, groups), carries the actions out and records them. The
// same functions explain a decision (Explain, for `sshkick why`) and play
// the future forward (Simulate, for `sshkick policy simulate`), so what
// they say is what the daemon then does.
//
// Idle is measured from the tty's atime (the last time the user's input
// was read, as w and logind do), or from atime and mtime with idle_input =
// "input+output". The kernel updates both only when they change by more
// than 8 seconds (tty_update_time), so every idle time here is ±8 s.
//
// The policy never acts on a session of root, nor on the session the
// daemon itself runs in, unless the matching rule names that user in its
// users list. Sessions without a terminal are never idle (only max_session
// applies to them); multiplexer panes and mosh sessions are matched only by
// a rule whose kinds names them; stale utmp records are never acted on.
package policy

import (
	"net/netip"
	"slices"
	"time"

	"github.com/sshkick/sshkick/internal/session"
)

// DefaultPath is where the daemon reads its policy.
const DefaultPath = "/etc/sshkick/policy.toml"

// IdleInput says what counts as activity on a terminal.
type IdleInput string

// What counts as activity.
const (
	InputOnly   IdleInput = "input"        // tty atime: input the session read
	InputOutput IdleInput = "input+output" // atime or mtime: input or output (except our own warnings)
)

// Defaults for a policy that leaves them out.
const (
	DefaultInterval = 15 * time.Second
	// DefaultMessage is the warning of an idle countdown.
	DefaultMessage = "Idle for {idle}: this session ends at {deadline} ({in}). Press a key to stay."
	// DefaultMaxSessionMessage is the warning of a max_session countdown.
	DefaultMaxSessionMessage = "This session reaches its time limit ({reason}) and ends at {deadline} ({in}). Save your work and log in again."
	// DefaultCancelMessage tells a user the countdown is off.
	DefaultCancelMessage = "Idle logout cancelled: you are active again. ({rule})"
)

// DefaultWarn are the warnings before a kick when the policy names none.
var DefaultWarn = []time.Duration{10 * time.Minute, time.Minute}

// Policy is a parsed, validated policy file.
type Policy struct {
	File      string
	Interval  time.Duration
	IdleInput IdleInput
	// BusyCPU is a fraction of one CPU (0.05 for "5%"); 0 means off.
	BusyCPU           float64
	Warn              []time.Duration // longest first
	Message           string
	MaxSessionMessage string
	CancelMessage     string
	Rules             []Rule
}

// Rule is one [[rule]] table.
type Rule struct {
	Name string
	// Line is where the rule starts in the file.
	Line int

	Users  []string
	Groups []string
	From   []netip.Prefix
	Kinds  []session.Kind

	Exempt     bool
	Idle       time.Duration // 0: no idle limit
	MaxSession time.Duration // 0: no session limit
	// Warn, Message, MaxSessionMessage, IdleInput and BusyCPU are the
	// rule's own; the zero value means the policy's.
	Warn              []time.Duration
	Message           string
	MaxSessionMessage string
	IdleInput         IdleInput
	BusyCPU           float64
	busySet, warnSet  bool
}

// warn returns the rule's warnings, longest first.
func (r *Rule) warn(p *Policy) []time.Duration {
	if r.warnSet {
		return r.Warn
	}
	return p.Warn
}

func (r *Rule) idleInput(p *Policy) IdleInput {
	if r.IdleInput != "" {
		return r.IdleInput
	}
	return p.IdleInput
}

func (r *Rule) busyCPU(p *Policy) float64 {
	if r.busySet {
		return r.BusyCPU
	}
	return p.BusyCPU
}

func (r *Rule) message(p *Policy, reason Reason) string {
	if reason == ReasonMaxSession {
		if r.MaxSessionMessage != "" {
			return r.MaxSessionMessage
		}
		return p.MaxSessionMessage
	}
	if r.Message != "" {
		return r.Message
	}
	return p.Message
}

// namesUser reports whether the rule lists user by name: what it takes to
// act on root or on the daemon's own session.
func (r *Rule) namesUser(user string) bool { return slices.Contains(r.Users, user) }

// defaultKinds are what a rule without kinds matches: not multiplexer panes
// (kicking a pane's record would end a server others share) nor mosh.
var defaultKinds = []session.Kind{session.SSH, session.SSHNoTTY, session.Console, session.Local}
