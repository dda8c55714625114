package engine

import "github.com/sshkick/sshkick/internal/kick"

// The audit trail's events, one struct per kind (README, "Audit trail").
// Their strings come from published (sanitized) reports.

// IntentEvent is written before anything is signalled or written to a
// terminal: if it cannot be written, nothing is done.
type IntentEvent struct {
	Action   string   `json:"action"` // kick, kick-user, msg, warning
	DryRun   bool     `json:"dry_run"`
	Sessions []Ref    `json:"sessions"`
	Users    []string `json:"users,omitempty"`
	Signal   string   `json:"signal,omitempty"`
	DelayMS  int64    `json:"delay_ms,omitempty"`
}

func (IntentEvent) AuditEvent() string { return "intent" }

// KickEvent is the outcome of one session's kick (event "kick", or
// "dry-run").
type KickEvent struct {
	DryRun     bool                `json:"dry_run"`
	Target     Ref                 `json:"target"`
	Signal     string              `json:"signal"`
	WaitMS     int64               `json:"wait_ms"`
	NoEscalate bool                `json:"no_escalate"`
	Outcome    string              `json:"outcome"`
	Reason     string              `json:"reason"`
	Signals    []kick.SignalRecord `json:"signals"`
	Gone       []kick.Exit         `json:"gone"`
	Survivors  []int               `json:"survivors"`
	Refused    []Refusal           `json:"refused"`
	Scope      string              `json:"scope,omitempty"`
	Actions    []kick.Action       `json:"actions"`
	Kept       []kick.Kept         `json:"kept"`
	// EndMultiplexers: the session's tmux/screen servers were to end too.
	EndMultiplexers bool `json:"end_multiplexers"`
	// By is the front end or rule that asked (watch: the policy rule).
	By string `json:"by,omitempty"`
}

func (e KickEvent) AuditEvent() string {
	if e.DryRun {
		return "dry-run"
	}
	return "kick"
}

// KickUserEvent is the outcome of ending every process of a user.
type KickUserEvent struct {
	DryRun bool `json:"dry_run"`
	KickedUser
}

func (e KickUserEvent) AuditEvent() string {
	if e.DryRun {
		return "dry-run-user"
	}
	return "kick-user"
}

// RefuseEvent is a target that was refused or skipped.
type RefuseEvent struct {
	Target  string `json:"target"`
	PID     int    `json:"pid"`
	Reason  string `json:"reason"`
	DryRun  bool   `json:"dry_run"`
	Skipped bool   `json:"skipped"`
}

func (RefuseEvent) AuditEvent() string { return "refuse" }

// MsgEvent is one message written (or not) to one session's terminal.
type MsgEvent struct {
	Stage   string `json:"stage"`
	Target  Ref    `json:"target"`
	Status  string `json:"status"`
	Error   string `json:"error"`
	Forced  bool   `json:"forced"`
	Bytes   int    `json:"bytes"`
	Message string `json:"message"`
}

func (MsgEvent) AuditEvent() string { return "msg" }

// DryRunMsgEvent is a message that a dry run did not send.
type DryRunMsgEvent struct {
	Sessions []Delivery `json:"sessions"`
	Message  string     `json:"message"`
}

func (DryRunMsgEvent) AuditEvent() string { return "dry-run-msg" }

// CancelEvent is a delayed kick cancelled before its deadline.
type CancelEvent struct {
	Sessions []Ref  `json:"sessions"`
	Reason   string `json:"reason"`
}

func (CancelEvent) AuditEvent() string { return "cancel" }

// EndedDuringDelayEvent is a session that ended by itself before its
// delayed kick.
type EndedDuringDelayEvent struct {
	Target Ref `json:"target"`
}

func (EndedDuringDelayEvent) AuditEvent() string { return "ended-during-delay" }

// LeftoverEvent lists a kicked user's processes that no session holds.
type LeftoverEvent struct {
	Processes []Leftover `json:"processes"`
}

func (LeftoverEvent) AuditEvent() string { return "leftover" }
