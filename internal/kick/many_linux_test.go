package kick

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/sshdtest"
)

// lowFDLimit sets this process's descriptor limit to n for the test.
func lowFDLimit(t *testing.T, n uint64) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
}

// sidProcs waits until session sid has at least n live processes and
// returns them as discovery would list them.
func sidProcs(t *testing.T, sid, n int) []session.Member {
	t.Helper()
	var ms []session.Member
	var scanErr error
	ok := sshdtest.Poll(60*time.Second, func() bool {
		snap, err := proc.Scan("/proc")
		if err != nil {
			scanErr = err
			return true
		}
		ms = ms[:0]
		for _, p := range snap.Procs {
			if p.SID == sid && !p.Zombie() {
				role := session.RoleMember
				if p.PID == sid {
					role = session.RoleLeader
				}
				ms = append(ms, session.Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: role})
			}
		}
		return len(ms) >= n
	})
	if scanErr != nil {
		t.Fatal(scanErr)
	}
	if !ok {
		t.Fatalf("session %d has %d processes, want %d", sid, len(ms), n)
	}
	return ms
}

// TestKickManyProcessesFewDescriptors: a session of 2,000 processes and
// 300 sessions more, kicked with a descriptor limit of 256: nothing is
// refused for lack of descriptors (issue 8: "pidfd_open: too many open
// files" left 884 processes running), everything ends.
func TestKickManyProcessesFewDescriptors(t *testing.T) {
	needRoot(t)
	needPidfd(t)
	subreaper(t)
	const jobs, sessions = 2000, 300
	big := start(t, true, "sh", "-c", `i=0; while [ $i -lt `+strconv.Itoa(jobs)+` ]; do sleep 120 & i=$((i+1)); done; exec sleep 120`)
	many := start(t, true, "sh", "-c", `i=0; while [ $i -lt `+strconv.Itoa(sessions)+` ]; do setsid sleep 120 & i=$((i+1)); done; exec sleep 120`)
	bigMembers := sidProcs(t, big.pid, jobs+1)
	var all []session.Session
	all = append(all, session.Session{ID: "big", UID: 0, Members: bigMembers, SIDs: []int{big.pid}})
	var small []int
	waitFor(t, "the small sessions to start", func() bool {
		snap, err := proc.Scan("/proc")
		if err != nil {
			return false
		}
		small = small[:0]
		for _, p := range snap.Children(many.pid) {
			if p.SID == p.PID && p.Comm == "sleep" {
				small = append(small, p.PID)
			}
		}
		return len(small) == sessions
	})
	for _, pid := range small {
		m := member(t, pid, session.RoleLeader)
		all = append(all, session.Session{ID: "s" + strconv.Itoa(pid), UID: 0, Members: []session.Member{m}, SIDs: []int{pid}})
	}
	t.Cleanup(func() {
		for _, s := range all {
			for _, m := range s.Members {
				if m.PID != big.pid {
					syscall.Kill(m.PID, syscall.SIGKILL) // our own children, not reaped yet
					reapPid(m.PID)
				}
			}
		}
	})

	lowFDLimit(t, 256)
	out, err := Kick(context.Background(), all, Options{Wait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i, oc := range out {
		if oc.Result != Ended {
			t.Errorf("session %s: %s (%s), %d refused, first: %+v", all[i].ID, oc.Result, oc.Reason, len(oc.Refused), first(oc.Refused))
		}
		for _, r := range oc.Refused {
			if strings.Contains(r.Reason, "too many open files") {
				t.Fatalf("ran out of descriptors: %+v", r)
			}
		}
	}
	if got := len(out[0].Gone); got != jobs+1 {
		t.Errorf("the big session: %d processes seen gone, want %d", got, jobs+1)
	}
	for _, m := range bigMembers {
		if alive(m.PID) {
			t.Fatalf("pid %d of the big session survived", m.PID)
		}
	}
}

func first(r []Refusal) any {
	if len(r) == 0 {
		return nil
	}
	return r[0]
}
