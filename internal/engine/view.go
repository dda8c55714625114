package engine

import (
	"time"

	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
)

// This file is the one boundary where raw strings (from utmp, /proc, D-Bus,
// the password database and the command line) become published ones: every
// report field is sanitized here, once, and nowhere else. Fields are always
// present in JSON (empty strings, zeros, empty arrays, null), so scripts
// need not guess.

// clean is the sanitizer every published string passes, once.
func clean(s string) string { return sanitize.Field(s) }

// Session is the published form of one session (README, "JSON keys").
type Session struct {
	ID          string  `json:"id"`
	User        string  `json:"user"`
	UID         int     `json:"uid"`
	TTY         string  `json:"tty"`
	Host        string  `json:"host"`
	Addr        string  `json:"addr"`
	Port        int     `json:"port"`
	HostSource  string  `json:"host_source"`
	Verified    bool    `json:"host_verified"`
	Login       *string `json:"login"`
	IdleSeconds *int64  `json:"idle_seconds"`
	// IdleSource: "tty" (terminal atime), "logind" (its idle hint), or
	// "" when idle_seconds is null.
	IdleSource  string   `json:"idle_source"`
	PID         int      `json:"pid"`
	Kind        string   `json:"kind"`
	Stale       bool     `json:"stale"`
	StaleReason string   `json:"stale_reason"`
	Sources     []string `json:"sources"`
	Command     string   `json:"command"`
	Processes   int      `json:"processes"`
	PIDs        []int    `json:"pids"`
	LogindID    string   `json:"logind_id"`

	// LoginTime is Login as a time, for tables (zero when unknown).
	LoginTime time.Time `json:"-"`
}

func viewSession(s *session.Session) Session {
	v := Session{
		ID: clean(s.ID), User: clean(s.User), UID: s.UID, TTY: clean(s.TTY), Host: clean(s.Host), Addr: clean(s.Addr),
		Port: s.Port, HostSource: s.HostSource, Verified: s.HostVerified, IdleSeconds: s.IdleSeconds, IdleSource: s.IdleSource, PID: s.PID, Kind: clean(string(s.Kind)), Stale: s.Stale,
		StaleReason: clean(s.StaleReason), Sources: s.Sources, Command: clean(s.Command),
		Processes: s.Processes, PIDs: s.PIDs, LogindID: clean(s.LogindID), LoginTime: s.Login,
	}
	if !s.Login.IsZero() {
		t := s.Login.Format(time.RFC3339)
		v.Login = &t
	}
	if v.Sources == nil {
		v.Sources = []string{}
	}
	if v.PIDs == nil {
		v.PIDs = []int{}
	}
	return v
}

// Ref names a session in reports and audit records.
type Ref struct {
	ID   string `json:"id"`
	User string `json:"user"`
	UID  int    `json:"uid"`
	TTY  string `json:"tty"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	Kind string `json:"kind"`
}

func refOf(s *session.Session) Ref {
	return Ref{ID: clean(s.ID), User: clean(s.User), UID: s.UID, TTY: clean(s.TTY), Host: clean(s.Host), PID: s.PID, Kind: clean(string(s.Kind))}
}

func cleanRefusals(in []Refusal) []Refusal {
	out := make([]Refusal, len(in))
	for i, r := range in {
		out[i] = Refusal{Target: clean(r.Target), PID: r.PID, Reason: clean(r.Reason)}
	}
	return out
}

func cleanStrings(in []string) []string {
	out := make([]string, len(in))
	for i := range in {
		out[i] = clean(in[i])
	}
	return out
}

// KickedSession is what happened to one session.
type KickedSession struct {
	Ref
	Result    string              `json:"result"`
	Reason    string              `json:"reason"`
	Signals   []kick.SignalRecord `json:"signals"`
	Gone      []kick.Exit         `json:"gone"`
	Survivors []int               `json:"survivors"`
	Refused   []Refusal           `json:"refused"`
	// Scope is the session's logind scope (cgroup path) when it has one.
	Scope string `json:"scope,omitempty"`
	// Actions are steps on the whole session: logind's KillSession, the
	// kernel's cgroup.kill of its scope.
	Actions []kick.Action `json:"actions"`
	// Kept are processes left running on purpose: tmux/screen servers
	// started in the session and their panes (see --end-multiplexers).
	Kept []kick.Kept   `json:"kept"`
	Took time.Duration `json:"took_ns"`
}

func cleanActions(as []kick.Action) []kick.Action {
	out := make([]kick.Action, len(as))
	for i, a := range as {
		a.Via, a.Target, a.Signal, a.Result = clean(a.Via), clean(a.Target), clean(a.Signal), clean(a.Result)
		out[i] = a
	}
	return out
}

func viewOutcome(s *session.Session, oc *kick.Outcome) KickedSession {
	k := KickedSession{Ref: refOf(s), Result: oc.Result, Reason: clean(oc.Reason), Survivors: oc.Survivors,
		Refused: cleanRefusals(oc.Refused), Took: oc.Took}
	k.Signals = make([]kick.SignalRecord, len(oc.Signals))
	for i, sg := range oc.Signals {
		sg.Comm, sg.Result = clean(sg.Comm), clean(sg.Result)
		k.Signals[i] = sg
	}
	k.Gone = make([]kick.Exit, len(oc.Gone))
	for i, g := range oc.Gone {
		g.Comm = clean(g.Comm)
		k.Gone[i] = g
	}
	if k.Survivors == nil {
		k.Survivors = []int{}
	}
	k.Scope = clean(oc.Scope)
	k.Actions = cleanActions(oc.Actions)
	k.Kept = make([]kick.Kept, len(oc.Kept))
	for i, kp := range oc.Kept {
		kp.Comm, kp.Reason = clean(kp.Comm), clean(kp.Reason)
		k.Kept[i] = kp
	}
	return k
}

// KickedUser is what happened to every process of one user
// (--all-processes).
type KickedUser struct {
	User    string              `json:"user"`
	UID     int                 `json:"uid"`
	Result  string              `json:"result"`
	Reason  string              `json:"reason"`
	Found   []int               `json:"found"`
	Rounds  int                 `json:"rounds"`
	Signals []kick.SignalRecord `json:"signals"`
	// Actions are steps on the user's slice: logind's KillUser and the
	// kernel's cgroup.kill.
	Actions   []kick.Action `json:"actions"`
	Survivors []int         `json:"survivors"`
	Took      time.Duration `json:"took_ns"`
}

func viewUser(uo *kick.UserOutcome) KickedUser {
	k := KickedUser{User: clean(uo.User), UID: uo.UID, Result: uo.Result, Reason: clean(uo.Reason), Found: uo.Found,
		Rounds: uo.Rounds, Survivors: uo.Survivors, Took: uo.Took}
	k.Signals = make([]kick.SignalRecord, len(uo.Signals))
	for i, sg := range uo.Signals {
		sg.Comm, sg.Result = clean(sg.Comm), clean(sg.Result)
		k.Signals[i] = sg
	}
	k.Actions = cleanActions(uo.Actions)
	if k.Found == nil {
		k.Found = []int{}
	}
	if k.Survivors == nil {
		k.Survivors = []int{}
	}
	return k
}

// Delivery is one message to one session's terminal.
type Delivery struct {
	ID   string `json:"id"`
	User string `json:"user"`
	TTY  string `json:"tty"`
	// Stage is "" for msg; warning, reminder or cancel for a delayed kick.
	Stage string `json:"stage,omitempty"`
	// Status: delivered, refused (mesg n), no-terminal, timed-out,
	// failed, would-send (dry run).
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Leftover is a process of a kicked user that belongs to no session (a
// `setsid -f` job): a kick of sessions does not reach it.
type Leftover struct {
	User    string `json:"user"`
	UID     int    `json:"uid"`
	PID     int    `json:"pid"`
	Command string `json:"command"`
}
