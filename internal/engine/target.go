package engine

import (
	"slices"
	"strconv"
	"strings"

	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// Refusal is a target or process that was not acted on, and why.
type Refusal = kick.Refusal

// UserTarget is a user named as a target (for --all-processes).
type UserTarget struct {
	Name string `json:"name"`
	UID  int    `json:"uid"`
}

// Selection is what a list of targets and selectors resolved to.
type Selection struct {
	Sessions []session.Session
	Refused  []Refusal
	// Skipped are stale records a user name or selector caught: reported
	// and audited, but not a failure.
	Skipped   []Refusal
	Unmatched []string
	Users     []UserTarget
}

// Self describes the caller: the processes from it up to init, so a kick
// never ends the session the admin is typing in (unless forced).
//
// An admin working in a tmux or screen pane is also typing through every
// login attached to that multiplexer server: ending the SSH login that runs
// `tmux attach` disconnects them as surely as ending the pane. So when one
// of the caller's ancestors is a multiplexer server, every session of the
// server's user that runs a client of the same multiplexer counts as the
// caller's own too. (Clients of another server of the same user are caught
// as well: refusing too much is safe, --force overrides.)
type Self struct {
	Ancestors map[int]bool
	// Mux is the multiplexer whose pane the caller runs in: "tmux",
	// "screen", or "".
	Mux    string
	MuxUID int
}

// muxOf says which multiplexer a process name belongs to.
func muxOf(comm string) string {
	switch {
	case strings.HasPrefix(comm, "tmux"):
		return "tmux"
	case strings.EqualFold(comm, "screen"):
		return "screen"
	}
	return ""
}

// SelfFrom builds Self from a snapshot, walking up from pid.
func SelfFrom(snap *proc.Snapshot, pid int) Self {
	s := Self{Ancestors: map[int]bool{}, MuxUID: -1}
	if snap == nil {
		return s
	}
	for i := 0; i < 4096 && pid > 0; i++ {
		s.Ancestors[pid] = true
		p := snap.Procs[pid]
		if p == nil {
			break
		}
		// The server of a pane is the pane shell's parent: the first
		// multiplexer above the caller.
		if m := muxOf(p.Comm); m != "" && s.Mux == "" && p.PID > 1 {
			s.Mux, s.MuxUID = m, p.UID
		}
		pid = p.PPID
	}
	return s
}

// Owns reports whether the caller runs inside s, or types through it (s
// runs a client of the multiplexer the caller's pane belongs to).
func (me Self) Owns(s *session.Session) bool {
	for _, m := range s.Members {
		if me.Ancestors[m.PID] && m.PID > 1 {
			return true
		}
		if me.Mux != "" && m.Role != session.RoleServer && m.UID == me.MuxUID && muxOf(m.Comm) == me.Mux {
			return true
		}
	}
	return false
}

// Resolve turns targets into sessions. A target is a session id or a
// terminal as `list` shows them ("pts/3"), a PID `list` shows (the PID
// column or any of the session's processes), or a user name (all of the
// user's sessions). "id:X" and "pid:N" say which a number is meant as.
// The selectors in flt narrow the result; with no targets, they alone
// select. lookup finds a user's uid.
//
// A stale utmp record is never a session to signal: named on its own (by
// id, terminal or PID) it is refused; caught by a user name or a selector
// it is only skipped, since it was not what the admin asked to end.
func Resolve(args []string, flt session.Filter, all []session.Session, me Self, force bool,
	lookup func(string) (int, bool)) Selection {
	var sel Selection
	picked := map[string]bool{}
	take := func(target string, s *session.Session, named bool) {
		if picked[s.ID] || !flt.Match(s) {
			return
		}
		picked[s.ID] = true
		switch {
		case s.Stale && !named:
			sel.Skipped = append(sel.Skipped, Refusal{Target: s.ID, PID: s.PID,
				Reason: "stale utmp record (" + s.StaleReason + "): skipped"})
		case s.Stale:
			sel.Refused = append(sel.Refused, Refusal{Target: target, PID: s.PID,
				Reason: "stale utmp record (" + s.StaleReason + "): not signalled"})
		case me.Owns(s) && !force:
			sel.Refused = append(sel.Refused, Refusal{Target: target, PID: s.PID,
				Reason: "this is your own session: use --force to end it"})
		default:
			sel.Sessions = append(sel.Sessions, *s)
		}
	}
	if len(args) == 0 {
		for i := range all {
			take(all[i].ID, &all[i], false)
		}
		return sel
	}
	for _, a := range args {
		matched := false
		named := true
		match := func(pred func(*session.Session) bool) {
			// Live sessions first: a stale record on a reused terminal
			// must not shadow the session that is there now.
			for _, stale := range []bool{false, true} {
				for i := range all {
					if all[i].Stale == stale && pred(&all[i]) {
						matched = true
						take(a, &all[i], named)
					}
				}
				if matched {
					return
				}
			}
		}
		byPID := func(n int) func(*session.Session) bool {
			return func(s *session.Session) bool { return s.PID == n || slices.Contains(s.PIDs, n) }
		}
		byID := func(id string) func(*session.Session) bool {
			return func(s *session.Session) bool { return s.ID == id }
		}
		if id, ok := strings.CutPrefix(a, "id:"); ok {
			match(byID(id))
			if !matched {
				sel.Unmatched = append(sel.Unmatched, a)
			}
			continue
		}
		num, explicitPID := strings.CutPrefix(a, "pid:")
		if n, err := strconv.Atoi(num); err == nil {
			if n <= 1 {
				sel.Refused = append(sel.Refused, Refusal{Target: a, PID: n, Reason: pidReason(n)})
				continue
			}
			// logind's session ids are numbers too: a number that names
			// one session by id and another by PID is refused, not guessed.
			idHit := !explicitPID && slices.ContainsFunc(all, func(s session.Session) bool { return byID(num)(&s) })
			pidHit := slices.ContainsFunc(all, func(s session.Session) bool { return byPID(n)(&s) })
			switch {
			case idHit && pidHit && !slices.ContainsFunc(all, func(s session.Session) bool { return byID(num)(&s) && byPID(n)(&s) }):
				sel.Refused = append(sel.Refused, Refusal{Target: a, Reason: "ambiguous: " + a +
					" is a logind session id and a PID of another session: write id:" + a + " or pid:" + a})
				continue
			case idHit:
				match(byID(num))
			default:
				match(byPID(n))
			}
			if !matched {
				sel.Unmatched = append(sel.Unmatched, a)
			}
			continue
		}
		match(byID(a))
		if !matched {
			if _, ok := proc.TTYDevice(a); ok {
				match(func(s *session.Session) bool { return s.TTY == a })
			}
		}
		if !matched && !strings.ContainsAny(a, "/:") {
			uid, ok := lookup(a)
			if ok {
				sel.Users = append(sel.Users, UserTarget{Name: a, UID: uid})
			}
			named = false
			match(func(s *session.Session) bool { return s.User == a })
			if ok {
				continue
			}
		}
		if !matched {
			sel.Unmatched = append(sel.Unmatched, a)
		}
	}
	return sel
}

func pidReason(n int) string { return kick.PIDReason(n) }
