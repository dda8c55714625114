package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// fixSession builds a session whose Members are pids (the first the
// leader) and whose PIDs column lists them.
func fixSession(id, user string, uid int, tty string, kind session.Kind, pid int, pids ...int) session.Session {
	s := session.Session{ID: id, User: user, UID: uid, TTY: tty, Kind: kind, PID: pid, PIDs: slices.Clone(pids)}
	for i, p := range pids {
		role := session.RoleMember
		if i == 0 {
			role = session.RoleLeader
		}
		s.Members = append(s.Members, session.Member{Ident: proc.Ident{PID: p, Start: uint64(1000 + p)}, UID: uid, SID: pids[0], Role: role})
	}
	s.Processes = len(pids)
	return s
}

func withIdle(s session.Session, d time.Duration) session.Session {
	secs := int64(d / time.Second)
	s.Idle, s.IdleSeconds = d, &secs
	return s
}

func stale(s session.Session, reason string) session.Session {
	s.Stale, s.StaleReason = true, reason
	s.Members, s.PIDs, s.Processes = nil, []int{}, 0
	return s
}

// resolveFixture: alice on pts/0 and without a terminal (ssh:123) and on
// pts/2 (where the caller runs), bob on pts/1 with a stale record on pts/1
// too, and a stale record alone on pts/7 of a user the password database
// no longer knows.
func resolveFixture() []session.Session {
	return []session.Session{
		withIdle(fixSession("pts/0", "alice", 1000, "pts/0", session.SSH, 100, 101, 102), 10*time.Minute),
		withIdle(fixSession("pts/1", "bob", 1001, "pts/1", session.SSH, 200, 201, 202), 3*time.Hour),
		fixSession("ssh:123", "alice", 1000, "", session.SSHNoTTY, 120, 123, 124),
		stale(fixSession("stale:pts/1:250", "bob", 1001, "pts/1", session.SSH, 250), "process 250 is gone"),
		stale(fixSession("stale:pts/7:700", "carol", -1, "pts/7", session.Local, 700), "no user carol in the password database"),
		withIdle(fixSession("pts/2", "alice", 1000, "pts/2", session.SSH, 300, 301, 302), 0),
	}
}

// me is the caller: a shell (302) in alice's pts/2 session.
var me = Self{Ancestors: map[int]bool{900: true, 302: true, 301: true, 1: true}}

func lookup(name string) (int, bool) {
	switch name {
	case "alice":
		return 1000, true
	case "bob":
		return 1001, true
	case "dave":
		return 1002, true
	}
	return 0, false
}

type wantRefusal struct {
	target string
	pid    int
	reason string // a substring
}

func TestResolve(t *testing.T) {
	// Two live sessions share pts/5 (so neither is called pts/5) and a
	// stale record names it too.
	sharedTTY := []session.Session{
		fixSession("ssh:501", "erin", 1003, "pts/5", session.SSH, 501, 501),
		fixSession("ssh:502", "erin", 1003, "pts/5", session.SSH, 502, 502),
		stale(fixSession("stale:pts/5:550", "erin", 1003, "pts/5", session.SSH, 550), "process 550 is gone"),
	}
	tests := []struct {
		name      string
		args      []string
		flt       session.Filter
		force     bool
		all       []session.Session // resolveFixture() when nil
		sessions  []string
		refused   []wantRefusal
		skipped   []wantRefusal
		unmatched []string
		users     []UserTarget
	}{
		{name: "by id", args: []string{"pts/0"}, sessions: []string{"pts/0"}},
		{name: "by notty id", args: []string{"ssh:123"}, sessions: []string{"ssh:123"}},
		{name: "live tty preferred over stale on the same tty", args: []string{"pts/1"}, sessions: []string{"pts/1"}},
		{name: "tty with two live sessions and a stale one", args: []string{"pts/5"}, all: sharedTTY,
			sessions: []string{"ssh:501", "ssh:502"}},
		{name: "stale-only tty is refused", args: []string{"pts/7"},
			refused: []wantRefusal{{"pts/7", 700, "stale"}}},
		{name: "stale id is refused", args: []string{"stale:pts/7:700"},
			refused: []wantRefusal{{"stale:pts/7:700", 700, "stale utmp record (no user carol"}}},
		{name: "stale record of a live tty by id is refused", args: []string{"stale:pts/1:250"},
			refused: []wantRefusal{{"stale:pts/1:250", 250, "stale"}}},
		{name: "PID column", args: []string{"100"}, sessions: []string{"pts/0"}},
		{name: "member PID", args: []string{"102"}, sessions: []string{"pts/0"}},
		{name: "member PID of notty", args: []string{"124"}, sessions: []string{"ssh:123"}},
		{name: "stale PID is refused", args: []string{"250"}, refused: []wantRefusal{{"250", 250, "stale"}}},
		{name: "unknown PID", args: []string{"9999"}, unmatched: []string{"9999"}},
		{name: "unknown tty", args: []string{"pts/9"}, unmatched: []string{"pts/9"}},
		{name: "unknown id", args: []string{"ssh:999"}, unmatched: []string{"ssh:999"}},
		{name: "unknown name", args: []string{"nosuchuser"}, unmatched: []string{"nosuchuser"}},
		{name: "PID 1", args: []string{"1"}, refused: []wantRefusal{{"1", 1, "PID 1 is init: never signalled"}}},
		{name: "PID 0", args: []string{"0"}, refused: []wantRefusal{{"0", 0, "PID 0 is not a process"}}},
		{name: "negative PID", args: []string{"-5"}, refused: []wantRefusal{{"-5", -5, "PID -5 is not a process id (a negative PID means a process group"}}},
		{name: "PID 1 even when a session lists it", args: []string{"1"},
			all:     []session.Session{fixSession("pts/0", "alice", 1000, "pts/0", session.SSH, 1, 1, 101)},
			refused: []wantRefusal{{"1", 1, "init"}}},
		{name: "user: all live sessions, own refused", args: []string{"alice"},
			sessions: []string{"pts/0", "ssh:123"},
			refused:  []wantRefusal{{"alice", 300, "your own session"}},
			users:    []UserTarget{{"alice", 1000}}},
		{name: "user with force", args: []string{"alice"}, force: true,
			sessions: []string{"pts/0", "ssh:123", "pts/2"}, users: []UserTarget{{"alice", 1000}}},
		{name: "user: live sessions shadow the stale one", args: []string{"bob"},
			sessions: []string{"pts/1"}, users: []UserTarget{{"bob", 1001}}},
		{name: "user unknown to passwd with only a stale record: skipped", args: []string{"carol"},
			skipped: []wantRefusal{{"stale:pts/7:700", 700, "stale"}}},
		{name: "known user without sessions", args: []string{"dave"}, users: []UserTarget{{"dave", 1002}}},
		{name: "own session by tty", args: []string{"pts/2"}, refused: []wantRefusal{{"pts/2", 300, "use --force"}}},
		{name: "own session by PID", args: []string{"300"}, refused: []wantRefusal{{"300", 300, "your own session"}}},
		{name: "own session forced", args: []string{"pts/2"}, force: true, sessions: []string{"pts/2"}},
		{name: "user target narrowed by kind", args: []string{"alice"}, flt: session.Filter{Kinds: []session.Kind{session.SSHNoTTY}},
			sessions: []string{"ssh:123"}, users: []UserTarget{{"alice", 1000}}},
		{name: "target filtered out by another user", args: []string{"pts/0"}, flt: session.Filter{Users: []string{"bob"}}},
		{name: "no args, idle selector", flt: session.Filter{Idle: time.Hour}, sessions: []string{"pts/1"}},
		{name: "no args, user selector", flt: session.Filter{Users: []string{"alice"}},
			sessions: []string{"pts/0", "ssh:123"}, refused: []wantRefusal{{"pts/2", 300, "own session"}}},
		{name: "no args, uid selector reaches the stale record", flt: session.Filter{Users: []string{"1001"}},
			sessions: []string{"pts/1"}, skipped: []wantRefusal{{"stale:pts/1:250", 250, "stale"}}},
		{name: "no args, kind selector", flt: session.Filter{Kinds: []session.Kind{session.SSHNoTTY}}, sessions: []string{"ssh:123"}},
		{name: "duplicates only once", args: []string{"pts/0", "pts/0", "100", "101", "alice"},
			sessions: []string{"pts/0", "ssh:123"},
			refused:  []wantRefusal{{"alice", 300, "own session"}},
			users:    []UserTarget{{"alice", 1000}}},
		{name: "duplicate refusals only once", args: []string{"pts/7", "700", "stale:pts/7:700"},
			refused: []wantRefusal{{"pts/7", 700, "stale"}}},
		{name: "mixed", args: []string{"pts/1", "1", "ssh:123", "nope/x"},
			sessions:  []string{"pts/1", "ssh:123"},
			refused:   []wantRefusal{{"1", 1, "init"}},
			unmatched: []string{"nope/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			all := tc.all
			if all == nil {
				all = resolveFixture()
			}
			before := len(all)
			sel := Resolve(tc.args, tc.flt, all, me, tc.force, lookup)
			if len(all) != before {
				t.Fatalf("Resolve changed its input")
			}
			var ids []string
			for _, s := range sel.Sessions {
				ids = append(ids, s.ID)
				if s.Stale {
					t.Errorf("stale session %s selected", s.ID)
				}
				if slices.Contains(s.PIDs, 1) || s.PID <= 1 {
					t.Errorf("session %s with PID 1 or below selected", s.ID)
				}
			}
			if !slices.Equal(ids, tc.sessions) {
				t.Errorf("sessions = %q, want %q", ids, tc.sessions)
			}
			if len(sel.Skipped) != len(tc.skipped) {
				t.Errorf("skipped = %+v, want %+v", sel.Skipped, tc.skipped)
			} else {
				for i, w := range tc.skipped {
					if r := sel.Skipped[i]; r.Target != w.target || r.PID != w.pid || !strings.Contains(r.Reason, w.reason) {
						t.Errorf("skipped[%d] = %+v, want %+v", i, r, w)
					}
				}
			}
			if len(sel.Refused) != len(tc.refused) {
				t.Errorf("refused = %+v, want %d refusals %+v", sel.Refused, len(tc.refused), tc.refused)
			} else {
				for i, w := range tc.refused {
					r := sel.Refused[i]
					if r.Target != w.target || r.PID != w.pid || !strings.Contains(r.Reason, w.reason) {
						t.Errorf("refused[%d] = %+v, want target %q pid %d reason containing %q", i, r, w.target, w.pid, w.reason)
					}
				}
			}
			if !slices.Equal(sel.Unmatched, tc.unmatched) {
				t.Errorf("unmatched = %q, want %q", sel.Unmatched, tc.unmatched)
			}
			if !slices.Equal(sel.Users, tc.users) {
				t.Errorf("users = %+v, want %+v", sel.Users, tc.users)
			}
		})
	}
}

func TestPidReason(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{1, "PID 1 is init: never signalled"},
		{0, "PID 0 is not a process (kill(0) would signal the caller's own process group): refused"},
		{-1, "PID -1 is not a process id (a negative PID means a process group to kill()): refused"},
		{-5, "PID -5 is not a process id (a negative PID means a process group to kill()): refused"},
	}
	for _, tc := range tests {
		if got := pidReason(tc.n); got != tc.want {
			t.Errorf("pidReason(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestSelfFrom(t *testing.T) {
	snap := &proc.Snapshot{Procs: map[int]*proc.Process{
		1:   {PID: 1, PPID: 0},
		300: {PID: 300, PPID: 1},
		400: {PID: 400, PPID: 300},
		500: {PID: 500, PPID: 400},
		// A loop (a corrupt or racing snapshot) must end.
		10: {PID: 10, PPID: 11},
		11: {PID: 11, PPID: 10},
	}}
	tests := []struct {
		pid  int
		want []int
	}{
		{500, []int{1, 300, 400, 500}},
		{300, []int{1, 300}},
		{10, []int{10, 11}},
		{777, []int{777}}, // not in the snapshot: itself only
		{0, nil},
	}
	for _, tc := range tests {
		me := SelfFrom(snap, tc.pid)
		var got []int
		for p := range me.Ancestors {
			got = append(got, p)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("SelfFrom(%d) = %v, want %v", tc.pid, got, tc.want)
		}
	}
}

func TestOwns(t *testing.T) {
	me := Self{Ancestors: map[int]bool{1: true, 300: true, 400: true}}
	tests := []struct {
		name string
		s    session.Session
		want bool
	}{
		{"contains an ancestor", fixSession("a", "u", 1000, "pts/0", session.SSH, 300, 300, 301), true},
		{"contains a deeper ancestor", fixSession("b", "u", 1000, "pts/0", session.SSH, 350, 350, 400), true},
		{"unrelated", fixSession("c", "u", 1000, "pts/0", session.SSH, 600, 600, 601), false},
		{"PID 1 is everyone's ancestor, not a session's", fixSession("d", "u", 1000, "pts/0", session.SSH, 1, 1, 700), false},
		{"no members", session.Session{ID: "e", PID: 300}, false},
	}
	for _, tc := range tests {
		if got := me.Owns(&tc.s); got != tc.want {
			t.Errorf("%s: Owns = %v, want %v", tc.name, got, tc.want)
		}
	}
	if (Self{}).Owns(&tests[0].s) {
		t.Errorf("the zero Self owns a session")
	}
}

// TestResolveNumericIDs: logind's session ids are numbers, like PIDs. A
// number naming one session by id and another by PID is refused; id: and
// pid: say which is meant.
func TestResolveNumericIDs(t *testing.T) {
	all := []session.Session{
		fixSession("101", "alice", 1000, "pts/0", session.SSH, 5000, 5001, 5002),
		fixSession("7", "bob", 1001, "pts/1", session.SSH, 101, 102, 103),
		fixSession("8", "carol", 1002, "pts/2", session.SSH, 8, 600, 601),
	}
	ids := func(sel Selection) []string {
		var out []string
		for _, s := range sel.Sessions {
			out = append(out, s.ID)
		}
		return out
	}
	for _, tc := range []struct {
		arg     string
		want    []string
		refused bool
	}{
		{"7", []string{"7"}, false},      // an id only
		{"5001", []string{"101"}, false}, // a PID only
		{"101", nil, true},               // id of alice's, PID of bob's: ambiguous
		{"id:101", []string{"101"}, false},
		{"pid:101", []string{"7"}, false},
		{"8", []string{"8"}, false}, // id and PID of the same session
		{"pid:1", nil, true},
		{"id:nope", nil, false},
	} {
		sel := Resolve([]string{tc.arg}, session.Filter{}, all, Self{}, false, func(string) (int, bool) { return 0, false })
		if got := ids(sel); !slices.Equal(got, tc.want) || (len(sel.Refused) > 0) != tc.refused {
			t.Errorf("%s: sessions %v refused %+v unmatched %v", tc.arg, got, sel.Refused, sel.Unmatched)
		}
	}
}
