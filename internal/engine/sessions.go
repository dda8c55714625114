package engine

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// Query selects sessions. The zero Query is every session.
type Query struct {
	Filter session.Filter
}

// Snapshot is the host's sessions at one moment, as published.
type Snapshot struct {
	Taken    time.Time `json:"taken"`
	Sessions []Session `json:"sessions"`
	// Notes say what could not be seen and why, for a person (sanitized).
	Notes []string `json:"notes"`

	raw  []session.Session
	proc *proc.Snapshot
}

// Raw returns the matched sessions as discovery found them (unsanitized),
// for front ends that hand them back to the engine (a daemon's policy).
func (s *Snapshot) Raw() []session.Session { return s.raw }

// Proc is the process table the sessions were built from.
func (s *Snapshot) Proc() *proc.Snapshot { return s.proc }

// Sessions discovers the host's sessions and returns those q selects, in
// discovery's order (by login time, then naturally by id: pts/2 before
// pts/10).
func (e *Engine) Sessions(ctx context.Context, q Query) (*Snapshot, error) {
	res, err := e.discover(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.checkUsers(q.Filter, res.Sessions); err != nil {
		return nil, err
	}
	snap := &Snapshot{Taken: e.c.Clock.Now(), Notes: cleanStrings(res.Notes), proc: res.Proc}
	snap.raw = q.Filter.Apply(res.Sessions)
	snap.Sessions = make([]Session, len(snap.raw))
	for i := range snap.raw {
		snap.Sessions[i] = viewSession(&snap.raw[i])
	}
	return snap, nil
}

func (e *Engine) discover(ctx context.Context) (*session.Result, error) {
	res, err := e.c.Discoverer.Discover(ctx)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// checkUsers refuses a --user that names no user: not in the password
// database and on no session (a deleted user still logged in is found by
// name). A number is a uid.
func (e *Engine) checkUsers(f session.Filter, all []session.Session) error {
	for _, u := range f.Users {
		if _, err := strconv.Atoi(u); err == nil {
			continue
		}
		if _, _, ok := e.c.Env.LookupUser(u); ok {
			continue
		}
		if slices.ContainsFunc(all, func(s session.Session) bool { return s.User == u }) {
			continue
		}
		return badRequest("--user: no such user \"%s\"", u)
	}
	return nil
}
