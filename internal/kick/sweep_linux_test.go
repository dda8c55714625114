package kick

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
		104: {PID: 104, PPID: 100, SID: 100, Start: 6000, UID: uid, EUID: uid, Comm: "late"}, // forked during the kick
		200: {PID: 200, PPID: 1, SID: 200, Start: 7000, UID: 0, EUID: 0, Comm: "root"},       // took a dead leader's PID
		201: {PID: 201, PPID: 1, SID: 200, Start: 3000, UID: uid, EUID: uid, Comm: "orphan"}, // the sid, parent gone, unseen
		300: {PID: 300, PPID: 100, SID: 100, Start: 900, UID: uid, EUID: uid, Comm: "old"},   // parent started later: reused
		301: {PID: 301, PPID: 100, SID: 100, Start: 1500, UID: uid, EUID: uid, Comm: "sshd"}, // the user's own "sshd"
		302: {PID: 302, PPID: 100, SID: 100, Start: 1600, UID: 0, EUID: 0, Comm: "sshd"},     // a root sshd: never

		// sshd's monitor 400, verified and last proven holding its PID at
		// tick 5500 (its SIGKILL), left orphans of its session behind.
		400: {PID: 400, PPID: 1, SID: 400, Start: 2000, UID: 0, EUID: 0, Comm: "sshd"},
		401: {PID: 401, PPID: 1, SID: 400, Start: 5100, UID: uid, EUID: uid, Comm: "sshd"},    // the user's sshd, orphaned
		402: {PID: 402, PPID: 401, SID: 402, Start: 5200, UID: uid, EUID: uid, Comm: "sleep"}, // its command, own session
		403: {PID: 403, PPID: 1, SID: 400, Start: 5501, UID: uid, EUID: uid, Comm: "after"},   // after the proof
		406: {PID: 406, PPID: 1, SID: 400, Start: 5500, UID: uid, EUID: uid, Comm: "same"},    // in the proof's tick
		404: {PID: 404, PPID: 1, SID: 400, Start: 5300, UID: 0, EUID: 0, Comm: "rootkid"},     // root, unlisted
	}
	snap := &proc.Snapshot{Procs: procs}
	s := &session.Session{UID: uid, SIDs: []int{100, 200}}
	r := &runner{oc: &Outcome{Session: s}, began: began, known: map[proc.Ident]bool{procs[100].Ident(): true}}
	leaders := leaderSet{400: {ident: procs[400].Ident(), aliveAt: 5500, runners: []*runner{r}}}
	owners := ownersOf(snap, func(p *proc.Process) []*runner {
		if r.known[p.Ident()] {
			return []*runner{r}
		}
		return leaders.of(p)
	})
	want := map[int]string{
		100: "",
		101: "",
		102: "",
		103: "runs as uid 1001/0",
		104: "",
		200: "descends from no process",
		201: "descends from no process",
		300: "descends from no process",
		301: "",
		302: "root sshd process is never swept",
		400: "root sshd process is never swept",
		401: "",
		402: "",
		403: "descends from no process",
		404: "runs as uid 0/0",
		406: "",
	}
	if !sameTickProves() {
		want[406] = "descends from no process"
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
	// The monitor's PID taken again once it was reaped, by a process of
	// the user that calls setsid(): it and its session started after the
	// proof, so they are not the kicked session's.
	reused := &proc.Process{PID: 400, PPID: 1, SID: 400, Start: 6000, UID: uid, EUID: uid, Comm: "sh"}
	kid := &proc.Process{PID: 405, PPID: 400, SID: 400, Start: 6001, UID: uid, EUID: uid, Comm: "sleep"}
	if leaders.of(reused) != nil || leaders.of(kid) != nil {
		t.Error("a session made under the monitor's PID after it was last proven is counted as the kicked session's")
	}
}

// TestSweepEndsWhatTheMonitorForked: a kick can catch a login while it is
// being born, its session only sshd's root monitor (seen on a real logind
// host: the monitor waiting in pam_systemd). The monitor forks the user's
// sshd, which holds the connection, after discovery; the kick, finding no
// process of the user to end, kills the monitor, which orphans that child
// and the command it started in a session of its own. The sweep must end
// both: the child is in the monitor's session and started while the kick
// had the monitor's PID proven, the command descends from it. They are
// the session user's; a root sshd is never swept.
func TestSweepEndsWhatTheMonitorForked(t *testing.T) {
	needRoot(t)
	needPidfd(t)
	subreaper(t)
	dir, err := os.MkdirTemp("", "sshkick-sweep-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The user's sshd: a shell whose process name is sshd.
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(dir, "sshd")
	if err := os.WriteFile(fake, sh, 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "go")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `read x < ` + fifo + `; setpriv --reuid=` + strconv.Itoa(nobody) + ` --regid=` + strconv.Itoa(nobody) +
		` --clear-groups ` + fake + ` -c 'setsid sleep 3701 </dev/null >/dev/null 2>&1 & wait'; true`
	mon := startAs(t, 0, "sh", "-c", script)
	mm := member(t, mon.pid, session.RoleMonitor)
	s := session.Session{ID: "ssh:" + strconv.Itoa(mon.pid), User: "nobody", UID: nobody, PID: mon.pid, Kind: session.SSHNoTTY,
		Members: []session.Member{mm}, SIDs: []int{mm.SID}}

	// Discovery is done; now the login goes on.
	if err := os.WriteFile(fifo, []byte("go\n"), 0); err != nil {
		t.Fatal(err)
	}
	kid := childOf(t, mon.pid, "the monitor to fork the user's sshd", func(p *proc.Process) bool {
		return p.Comm == "sshd" && p.UID == nobody
	})
	t.Cleanup(func() { syscall.Kill(kid.PID, syscall.SIGKILL); reapPid(kid.PID) })
	job := childOf(t, kid.PID, "the user's sshd to start its command", func(p *proc.Process) bool {
		return p.Comm == "sleep" && p.SID == p.PID
	})
	t.Cleanup(func() { syscall.Kill(job.PID, syscall.SIGKILL); reapPid(job.PID) })

	oc := kickOne1(t, s, Options{Wait: 5 * time.Second})
	if got := signalsTo(oc, mon.pid); !slices.Equal(got, []string{"TERM"}) {
		t.Errorf("signals to the monitor: %v, want [TERM] (it holds nothing else, and ends of it)", got)
	}
	for _, p := range []*proc.Process{kid, job} {
		if alive(p.PID) {
			t.Errorf("%s (pid %d) outlived the kick: signals %+v refused %+v", p.Comm, p.PID, oc.Signals, oc.Refused)
		}
		if !sweptKill(oc, p.PID) {
			t.Errorf("%s (pid %d) did not get the sweep's KILL: %+v", p.Comm, p.PID, oc.Signals)
		}
	}
	if oc.Result != Ended || len(oc.Refused) != 0 {
		t.Errorf("Result = %q (%s), refused %+v: want ended, nothing refused", oc.Result, oc.Reason, oc.Refused)
	}
}

// TestSweepEndsJobsForkedDuringTheKick: a shell that traps SIGHUP starts a
// job when the kick's SIGHUP arrives and lives on until its SIGKILL. The
// job started after the kick began and its parent is dead by the sweep,
// but it is in the shell's session and started before the SIGKILL that
// proved the shell still held its PID: the sweep ends it, and the shell's
// background sleep, orphaned the same way.
func TestSweepEndsJobsForkedDuringTheKick(t *testing.T) {
	needRoot(t)
	needPidfd(t)
	subreaper(t)
	// The trap runs within milliseconds of the SIGHUP; should a loaded
	// machine take longer than the kick's wait, the round is run again
	// with a longer one rather than judged.
	for wait := 2 * time.Second; ; wait *= 2 {
		if trapJobEnded(t, wait) {
			return
		}
		if wait > time.Minute {
			t.Fatal("the shell's SIGHUP trap never ran before its SIGKILL")
		}
		t.Logf("the trap had not run within the kick's %v wait: again with a longer one", wait)
	}
}

// trapJobEnded kicks one trapping shell with the given wait and reports
// whether its trap's job ran before the SIGKILL (and then checks it ended).
func trapJobEnded(t *testing.T, wait time.Duration) bool {
	t.Helper()
	leader := startAs(t, nobody, "sh", "-c", `trap 'sleep 3702 </dev/null >/dev/null 2>&1 &' HUP; sleep 3703 & while :; do wait; done`)
	waitFor(t, "the shell to trap SIGHUP", func() bool { return sigCaught(leader.pid, syscall.SIGHUP) })
	bg := childOf(t, leader.pid, "the shell's background sleep", func(p *proc.Process) bool { return p.Comm == "sleep" })
	t.Cleanup(func() { syscall.Kill(bg.PID, syscall.SIGKILL); reapPid(bg.PID) })
	lm := member(t, leader.pid, session.RoleLeader)
	s := session.Session{ID: "trap", User: "nobody", UID: nobody, PID: leader.pid, Kind: session.SSH,
		Members: []session.Member{lm}, SIDs: []int{lm.SID}}

	// Watch for the trap's job while the kick waits on the shell.
	done := make(chan struct{})
	var job *proc.Process
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		sshdtest.Poll(wait+time.Minute, func() bool {
			select {
			case <-done:
				return true
			default:
			}
			if snap, err := proc.Scan("/proc"); err == nil {
				for _, p := range snap.Children(leader.pid) {
					if p.PID != bg.PID && p.Comm == "sleep" && !p.Zombie() {
						job = p
						return true
					}
				}
			}
			return false
		})
	}()
	oc := kickOne1(t, s, Options{Wait: wait})
	close(done)
	<-watched
	if job != nil {
		t.Cleanup(func() { syscall.Kill(job.PID, syscall.SIGKILL); reapPid(job.PID) })
	}
	if got := signalsTo(oc, leader.pid); !slices.Equal(got, []string{"HUP", "KILL"}) {
		t.Errorf("signals to the shell: %v, want HUP, KILL (after the wait)", got)
	}
	if job == nil {
		return false
	}
	for _, p := range []*proc.Process{bg, job} {
		if alive(p.PID) {
			t.Errorf("pid %d (%s) of the kicked session outlived the kick: refused %+v", p.PID, p.Comm, oc.Refused)
		}
		if !sweptKill(oc, p.PID) {
			t.Errorf("pid %d (%s) did not get the sweep's KILL: %+v", p.PID, p.Comm, oc.Signals)
		}
	}
	if oc.Result != Ended || len(oc.Refused) != 0 {
		t.Errorf("Result = %q (%s), refused %+v: want ended, nothing refused", oc.Result, oc.Reason, oc.Refused)
	}
	return true
}

// sweptKill reports whether the sweep took pid for the session's and sent
// it SIGKILL — or found it gone by then: the processes of one round are
// killed in no set order, and the user's "sshd" ends of itself once the
// job it waits for is killed.
func sweptKill(oc Outcome, pid int) bool {
	for _, r := range oc.Signals {
		if r.PID == pid && r.Role == session.RoleMember && r.Signal == "KILL" && (r.Result == "sent" || r.Result == "gone") {
			return true
		}
	}
	return false
}
