// Package engine is the one trip every sshkick front end makes — discover,
// select, warn, wait and remind, kick, verify, audit — as a library with a
// small API of plain typed requests and reports:
//
//	Sessions(ctx, Query) (*Snapshot, error)
//	Warn(ctx, WarnRequest) (*WarnReport, error)
//	Kick(ctx, KickRequest) (*KickReport, error)
//
// The CLI, the watch daemon, and later an interactive view and remote-host
// clients are thin clients of an Engine: they turn their input into a
// request and render the report. Reports are the published form (what
// --json prints): every string that came from utmp, /proc, D-Bus or the
// command line is sanitized exactly once, here, when the report is built;
// front ends print them as they are.
//
// The engine decides nothing about the OS on its own: every edge is an
// interface in Config (a Discoverer for sessions, a Signaller over pidfds,
// a Messenger for terminals, an Auditor, a Clock, an Env for the caller's
// identity and user look-ups), so its behaviour is tested with fakes and a
// fake clock. engine never signals a process or writes to a terminal
// itself: only the kick package signals and only termmsg writes to users'
// terminals, behind those interfaces.
package engine

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/sshkick/sshkick/internal/audit"
	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// Discoverer yields snapshots of the host's sessions. A long-lived one (for
// a daemon) keeps its logind connection and caches between calls.
type Discoverer interface {
	Discover(ctx context.Context) (*session.Result, error)
	// Alive reports whether a session discovery saw is still there (its
	// leader is still the same process).
	Alive(s *session.Session) bool
	// LastInput is when the session's terminal last read input (its
	// atime), false without a terminal.
	LastInput(s *session.Session) (time.Time, bool)
	// Logind is logind's client for kick (KillSession), or nil without one.
	Logind() kick.Logind
	Close() error
}

// Signaller ends sessions and users' processes: the kick package, through
// pidfds verified against discovery.
type Signaller interface {
	// Check reports whether signals can be sent safely here (pidfds).
	Check() error
	Kick(ctx context.Context, sessions []session.Session, o kick.Options) ([]kick.Outcome, error)
	KillUser(ctx context.Context, name string, uid, gid int, o kick.Options) kick.UserOutcome
}

// Messenger writes already sanitized bytes to terminals: termmsg.
type Messenger interface {
	Send(ctx context.Context, targets []termmsg.Target, msg []byte, opt termmsg.Options) []termmsg.Result
}

// Auditor records every action and refusal. An error means the record is
// not in the trail.
type Auditor interface {
	Record(ev audit.Event) error
	Close() error
}

// Clock is time for the warn → remind → deadline schedule, so tests run
// it in milliseconds.
type Clock interface {
	Now() time.Time
	// After fires once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Env is who and where the caller is.
type Env struct {
	EUID int
	// PID is the caller's own process: its session is never kicked unless
	// forced.
	PID int
	// SudoUser and SudoUID are the admin behind sudo, when there is one.
	SudoUser, SudoUID string
	// Sender names the admin in the banner of messages (SUDO_USER, else
	// the user sshkick runs as).
	Sender   string
	Hostname string
	// LookupUser finds a user by name: uid and primary gid.
	LookupUser func(name string) (uid, gid int, ok bool)
	// LookupUID finds a user by uid: name and primary gid.
	LookupUID func(uid int) (name string, gid int, ok bool)
}

// Config is an Engine's edges. New fills what is left zero with the real
// system (see NewSystem).
type Config struct {
	Discoverer Discoverer
	Signaller  Signaller
	Messenger  Messenger
	Clock      Clock
	Env        Env
	// OpenAuditor opens the audit trail when an action needs it (path ""
	// is the default trail).
	OpenAuditor func(path string) (Auditor, string, error)
}

// Engine runs requests against one host. It is safe for one caller at a
// time; a daemon keeps one for its whole life.
type Engine struct {
	c Config
}

// New makes an Engine from its edges; every field of c must be set.
func New(c Config) (*Engine, error) {
	if c.Discoverer == nil || c.Signaller == nil || c.Messenger == nil || c.Clock == nil || c.OpenAuditor == nil ||
		c.Env.LookupUser == nil || c.Env.LookupUID == nil {
		return nil, errors.New("engine: incomplete configuration")
	}
	return &Engine{c: c}, nil
}

// Close releases the discoverer's connections.
func (e *Engine) Close() error { return e.c.Discoverer.Close() }

// Env returns the caller's environment as the engine sees it.
func (e *Engine) Env() Env { return e.c.Env }

// RequestError is a bad request: a usage error for a front end (exit code
// 2); nothing was changed.
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func badRequest(format string, a ...any) error { return &RequestError{Msg: fmt.Sprintf(format, a...)} }

// Errors a front end decides on.
var (
	// ErrNotRoot: kicking needs root.
	ErrNotRoot = errors.New("kicking needs root: run it with sudo (or try --dry-run)")
	// ErrCancelled: the request was cancelled before anything was signalled.
	ErrCancelled = errors.New("cancelled: no session was kicked")
	// ErrNoMatch: no session matched the targets (exit code 3).
	ErrNoMatch = errors.New("no session matched: see 'sshkick list'")
)

// AuditError is an audit trail that could not be opened or written.
// Before an action it means nothing was done.
type AuditError struct {
	Err error
	// Done says the action was carried out and only its final record is
	// missing.
	Done bool
}

func (e *AuditError) Error() string {
	if e.Done {
		return fmt.Sprintf("the action was carried out but its audit record could not be written (%v): check the trail", e.Err)
	}
	return fmt.Sprintf("cannot write the audit trail (%v): nothing was done; fix it or use --audit-log FILE", e.Err)
}

func (e *AuditError) Unwrap() error { return e.Err }

// Results of one session's or user's kick, as reports give them.
const (
	Ended    = kick.Ended
	Survived = kick.Survived
	Refused  = kick.Refused
	DryRun   = kick.DryRun
)

// ParseSignal accepts HUP, SIGHUP, hup, TERM, KILL, 9, 15…
func ParseSignal(s string) (syscall.Signal, bool) {
	sig, ok := kick.ParseSignal(s)
	return syscall.Signal(sig), ok
}

// SignalName is "HUP" for SIGHUP.
func SignalName(s syscall.Signal) string { return kick.SignalName(s) }

// Kinds are the kinds of session, for validating and completing --kind.
func Kinds() []string {
	out := make([]string, len(session.Kinds))
	for i, k := range session.Kinds {
		out[i] = string(k)
	}
	return out
}
