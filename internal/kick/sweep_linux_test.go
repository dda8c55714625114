package kick

import (
	"context"
	"os"
	"os/exec"
	"slices"
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

// nobody is the uid the attack tests' "user" runs as.
const nobody = 65534

// needRoot stops a test that must run as root: it fails under make check
// (SSHKICK_E2E=require) rather than skip.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SSHKICK_E2E") == "require" {
		t.Fatal("this test needs root (run make check as root)")
	}
	t.Skip("this test needs root")
}

// subreaper makes this test process the reaper of orphans its tests leave
// (PID 1 here does not reap them), for the duration of the test.
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// startAs starts a command as uid in a session of its own.
func startAs(t *testing.T, uid int, name string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), Groups: []uint32{}}}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s as uid %d: %v", name, uid, err)
	}
	c := &child{cmd: cmd, pid: cmd.Process.Pid}
	t.Cleanup(func() {
		if !c.reaped {
			syscall.Kill(-c.pid, syscall.SIGKILL)
			cmd.Process.Kill()
			c.wait()
		}
	})
	return c
}

// childOf waits for a child of ppid for which ok holds.
func childOf(t *testing.T, ppid int, what string, ok func(p *proc.Process) bool) *proc.Process {
	t.Helper()
	var found *proc.Process
	waitFor(t, what, func() bool {
		snap, err := proc.Scan("/proc")
		if err != nil {
			return false
		}
		for _, p := range snap.Children(ppid) {
			if !p.Zombie() && ok(p) {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

// reapPid kills (if still there) and reaps an orphan this process adopted
// as subreaper.
func reapPid(pid int) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// TestSweepSparesReusedSessionID is issue 8's first attack: a user's
// session leader dies on SIGHUP while a child that called setsid() and
// ignores SIGHUP keeps the kick waiting; meanwhile a root process gets the
// dead leader's PID and calls setsid(), so it carries the kicked session's
// id. The sweep must not touch it: it was not seen at discovery, is not
// the user's, and started after the kick began. The refusal is reported.
func TestSweepSparesReusedSessionID(t *testing.T) {
	needRoot(t)
	needPidfd(t)
	subreaper(t)
	leader := startAs(t, nobody, "sh", "-c", `setsid sh -c 'trap "" HUP; exec sleep 60' </dev/null >/dev/null 2>&1 & exec sleep 60`)
	kid := childOf(t, leader.pid, "the setsid child to ignore SIGHUP", func(p *proc.Process) bool {
		return p.SID == p.PID && p.Comm == "sleep" && sigIgnored(p.PID, syscall.SIGHUP)
	})
	t.Cleanup(func() { syscall.Kill(kid.PID, syscall.SIGKILL); reapPid(kid.PID) })
	lm := member(t, leader.pid, session.RoleLeader)
	s := session.Session{ID: "attack", User: "nobody", UID: nobody, PID: leader.pid, Kind: session.SSH,
		Members: []session.Member{lm, member(t, kid.PID, session.RoleMember)}, SIDs: []int{lm.SID}}

	// A PID is free again within microseconds here, but a real reuse
	// needs the PIDs to wrap: the taker starts in a later clock tick than
	// the leader, which is what tells the two apart (start time, in
	// ticks). Started within the leader's own tick, it would share its
	// identity, and the kick would take it for the member it already
	// handled and not report it. (Waited for here, not once the leader is
	// reaped: a thread created meanwhile could take the freed PID.)
	waitFor(t, "a clock tick past the leader's start", func() bool { return bootTicks() > lm.Start })

	done := make(chan Outcome, 1)
	go func() {
		out, err := Kick(context.Background(), []session.Session{s}, Options{Wait: 60 * time.Second})
		if err != nil || len(out) != 1 {
			t.Errorf("Kick = %v, %v", out, err)
			done <- Outcome{}
			return
		}
		done <- out[0]
	}()
	// SIGHUP ends the leader; once it is reaped its PID (and the session
	// id) is free, and a root process that calls setsid() takes both.
	waitFor(t, "the leader to die of SIGHUP", func() bool { return !alive(leader.pid) })
	if err := leader.wait(); err == nil || !strings.Contains(err.Error(), "hangup") {
		t.Fatalf("leader ended with %v, want hangup", err)
	}
	victim := sshdtest.StartWithPID(t, leader.pid, func() *exec.Cmd {
		c := exec.Command("sleep", "60")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return c
	})
	waitFor(t, "the root process to lead session "+strconv.Itoa(leader.pid), func() bool {
		p, err := proc.Read("/proc", leader.pid)
		return err == nil && p.SID == leader.pid && p.UID == 0
	})
	// The stubborn child ends (as SIGKILL would end it after the wait):
	// the kick goes on to its sweep.
	syscall.Kill(kid.PID, syscall.SIGKILL)

	var oc Outcome
	select {
	case oc = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Kick did not return")
	}
	if !alive(victim.Process.Pid) {
		t.Fatalf("the sweep killed root's process %d, which had the kicked session's id; signals: %+v", victim.Process.Pid, oc.Signals)
	}
	for _, r := range oc.Signals {
		if r.PID == leader.pid && r.Start != lm.Start {
			t.Errorf("a signal went to a process discovery never saw: %+v", r)
		}
	}
	refused := false
	for _, r := range oc.Refused {
		if r.PID == leader.pid && strings.Contains(r.Reason, "not the session's") {
			refused = true
		}
	}
	if !refused {
		t.Errorf("the sweep's refusal of root's process is not in the outcome: %+v", oc.Refused)
	}
	if oc.Result != Ended {
		t.Errorf("Result = %q (%s), want ended: the session's own processes are gone", oc.Result, oc.Reason)
	}
}

// TestLeftoverRule: which processes a sweep scan found may be signalled as
// the session's, on a fixture process table.
func TestLeftoverRule(t *testing.T) {
	const uid, began = 1001, 5000
	procs := map[int]*proc.Process{
		100: {PID: 100, PPID: 1, SID: 100, Start: 1000, UID: uid, EUID: uid, Comm: "bash"},   // leader, seen
		101: {PID: 101, PPID: 100, SID: 100, Start: 4000, UID: uid, EUID: uid, Comm: "make"}, // started since discovery
		102: {PID: 102, PPID: 101, SID: 102, Start: 4100, UID: uid, EUID: uid, Comm: "cc"},   // called setsid()
		103: {PID: 103, PPID: 101, SID: 100, Start: 4200, UID: uid, EUID: 0, Comm: "sudo"},   // setuid root
		104: {PID: 104, PPID: 100, SID: 100, Start: 6000, UID: uid, EUID: uid, Comm: "late"}, // after the kick began
		200: {PID: 200, PPID: 1, SID: 200, Start: 7000, UID: 0, EUID: 0, Comm: "root"},       // took a dead leader's PID
		201: {PID: 201, PPID: 1, SID: 200, Start: 3000, UID: uid, EUID: uid, Comm: "orphan"}, // the sid, parent gone, unseen
		300: {PID: 300, PPID: 100, SID: 100, Start: 900, UID: uid, EUID: uid, Comm: "old"},   // parent started later: reused
		301: {PID: 301, PPID: 100, SID: 100, Start: 1500, UID: uid, EUID: uid, Comm: "sshd"}, // never swept
	}
	snap := &proc.Snapshot{Procs: procs}
	s := &session.Session{UID: uid, SIDs: []int{100, 200}}
	r := &runner{oc: &Outcome{Session: s}, began: began, known: map[proc.Ident]bool{procs[100].Ident(): true}}
	owners := ownersOf(snap, map[proc.Ident][]*runner{procs[100].Ident(): {r}})
	want := map[int]string{
		100: "",
		101: "",
		102: "",
		103: "runs as uid 1001/0",
		104: "started after the kick began",
		200: "descends from no process",
		201: "descends from no process",
		300: "descends from no process",
		301: "never swept",
	}
	for pid, w := range want {
		got := r.leftover(procs[pid], slices.Contains(owners[pid], r))
		if (w == "") != (got == "") || !strings.Contains(got, w) {
			t.Errorf("pid %d (%s): leftover = %q, want %q", pid, procs[pid].Comm, got, w)
		}
	}
	// A root session's unlisted processes are never signalled.
	s.UID = 0
	if got := r.leftover(procs[101], true); !strings.Contains(got, "uid 0") {
		t.Errorf("root session, unlisted descendant: %q", got)
	}
}
