package kick

import (
	"context"
	"os"
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
)

// hupProof starts `sh -c 'trap "" HUP; sleep 30'` in a session of its own
// and waits until SIGHUP is ignored, so the test does not race the trap.
func hupProof(t *testing.T) (*child, session.Session) {
	t.Helper()
	c := start(t, true, "sh", "-c", `trap "" HUP; sleep 30`)
	waitFor(t, "the shell to ignore SIGHUP", func() bool { return sigIgnored(c.pid, syscall.SIGHUP) })
	m := member(t, c.pid, session.RoleLeader)
	if m.SID != c.pid {
		t.Fatalf("child %d is in session %d, want its own", c.pid, m.SID)
	}
	// As discovery lists a session: the leader and what it started.
	job := childOf(t, c.pid, "the shell to start sleep", func(p *proc.Process) bool { return p.Comm == "sleep" })
	return c, session.Session{ID: "test:" + strconv.Itoa(c.pid), User: "test", UID: m.UID, PID: c.pid,
		Kind: session.Local, Members: []session.Member{m, member(t, job.PID, session.RoleMember)}, SIDs: []int{m.SID}, PIDs: []int{c.pid, job.PID}}
}

func alive(pid int) bool {
	p, err := proc.Read("/proc", pid)
	return err == nil && !p.Zombie()
}

// signalsTo lists the signals recorded as sent to pid, in order.
func signalsTo(oc Outcome, pid int) []string {
	var out []string
	for _, s := range oc.Signals {
		if s.PID == pid && s.Result == "sent" {
			out = append(out, s.Signal)
		}
	}
	return out
}

func kickOne1(t *testing.T, s session.Session, o Options) Outcome {
	t.Helper()
	out, err := Kick(context.Background(), []session.Session{s}, o)
	if err != nil {
		t.Fatalf("Kick = %v", err)
	}
	if len(out) != 1 {
		t.Fatalf("Kick returned %d outcomes for one session", len(out))
	}
	if out[0].Session == nil || out[0].Session.ID != s.ID {
		t.Errorf("outcome is for %v, want %s", out[0].Session, s.ID)
	}
	return out[0]
}

func TestKickEscalates(t *testing.T) {
	needPidfd(t)
	c, s := hupProof(t)
	oc := kickOne1(t, s, Options{Wait: 300 * time.Millisecond})
	if oc.Result != Ended {
		t.Fatalf("Result = %q (%s), want %q; signals %+v", oc.Result, oc.Reason, Ended, oc.Signals)
	}
	if got := signalsTo(oc, c.pid); !slices.Equal(got, []string{"HUP", "KILL"}) {
		t.Errorf("signals to the leader = %v, want [HUP KILL]; all: %+v", got, oc.Signals)
	}
	if len(oc.Survivors) != 0 {
		t.Errorf("Survivors = %v", oc.Survivors)
	}
	if !slices.ContainsFunc(oc.Gone, func(e Exit) bool { return e.PID == c.pid }) {
		t.Errorf("Gone = %+v, want the leader", oc.Gone)
	}
	if oc.Took < 300*time.Millisecond {
		t.Errorf("Took = %v, shorter than the wait", oc.Took)
	}
	for _, r := range oc.Signals {
		if r.PID <= 1 {
			t.Errorf("signalled pid %d", r.PID)
		}
	}
	if err := c.wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("leader ended with %v, want killed", err)
	}
	// The sleep the shell started kept the session id: the sweep got it.
	snap, err := proc.Scan("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range snap.Procs {
		if p.SID == c.pid && !p.Zombie() {
			t.Errorf("pid %d (%s) of the session survived the sweep", p.PID, p.Comm)
		}
	}
}

func TestKickNoEscalate(t *testing.T) {
	needPidfd(t)
	c, s := hupProof(t)
	oc := kickOne1(t, s, Options{Wait: 300 * time.Millisecond, NoEscalate: true})
	if oc.Result != Survived {
		t.Fatalf("Result = %q (%s), want %q", oc.Result, oc.Reason, Survived)
	}
	if want := s.PIDs; !slices.Equal(oc.Survivors, want) {
		t.Errorf("Survivors = %v, want %v", oc.Survivors, want)
	}
	if got := signalsTo(oc, c.pid); !slices.Equal(got, []string{"HUP"}) {
		t.Errorf("signals = %v, want [HUP] only", got)
	}
	if !strings.Contains(oc.Reason, "still running") {
		t.Errorf("Reason = %q", oc.Reason)
	}
	if !alive(c.pid) {
		t.Errorf("the leader did not survive a NoEscalate kick")
	}
}

func TestKickDryRun(t *testing.T) {
	needPidfd(t)
	c, s := hupProof(t)
	oc := kickOne1(t, s, Options{Wait: 300 * time.Millisecond, DryRun: true})
	if oc.Result != DryRun {
		t.Fatalf("Result = %q, want %q", oc.Result, DryRun)
	}
	if len(signalsTo(oc, c.pid)) != 0 {
		t.Errorf("dry run sent signals: %+v", oc.Signals)
	}
	var would []string
	for _, r := range oc.Signals {
		if !strings.HasPrefix(r.Result, "would send") {
			t.Errorf("dry-run record %+v", r)
		}
		if r.PID == c.pid {
			would = append(would, r.Signal)
		}
	}
	if !slices.Equal(would, []string{"HUP", "KILL"}) {
		t.Errorf("dry run would send %v, want [HUP KILL]", would)
	}
	// With NoEscalate the dry run shows the first signal only.
	oc = kickOne1(t, s, Options{Signal: unix.SIGTERM, DryRun: true, NoEscalate: true})
	if len(oc.Signals) != len(s.Members) || oc.Signals[0].Signal != "TERM" || oc.Signals[1].Signal != "TERM" {
		t.Errorf("dry run, no escalation: %+v", oc.Signals)
	}
	checkNoFatalSignal(t, c)
}

// checkNoFatalSignal proves, without waiting for "nothing to happen",
// that no fatal signal reached c before now: the first fatal signal a
// process is sent decides its exit (the kernel starts the group exit at
// once), so c must end by the SIGUSR1 sent here, not by one sent before.
func checkNoFatalSignal(t *testing.T, c *child) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("the process is gone: %v", err)
	}
	if err := c.wait(); err == nil || !strings.Contains(err.Error(), "user defined signal 1") {
		t.Errorf("the process ended with %v, not by the SIGUSR1 sent after the dry run: it was signalled", err)
	}
}

func TestKickRefusesChangedAndServer(t *testing.T) {
	needPidfd(t)
	t.Run("identity changed", func(t *testing.T) {
		c := start(t, true, "sleep", "30")
		m := member(t, c.pid, session.RoleLeader)
		m.Start++ // discovery saw another process under this PID
		s := session.Session{ID: "x", Members: []session.Member{m}, SIDs: []int{m.SID}}
		oc := kickOne1(t, s, Options{Wait: 100 * time.Millisecond})
		if oc.Result != Refused || len(oc.Signals) != 0 || len(oc.Refused) != 1 {
			t.Errorf("outcome %+v, want refused with no signal", oc)
		}
		if !alive(c.pid) {
			t.Errorf("a process with another identity was signalled")
		}
	})
	t.Run("already ended", func(t *testing.T) {
		c := start(t, true, "sleep", "30")
		m := member(t, c.pid, session.RoleLeader)
		c.cmd.Process.Kill()
		c.wait()
		oc := kickOne1(t, session.Session{ID: "y", Members: []session.Member{m}}, Options{})
		if oc.Result != Ended || len(oc.Signals) != 0 {
			t.Errorf("outcome %+v, want ended with no signal", oc)
		}
	})
	t.Run("server is never signalled", func(t *testing.T) {
		leader := start(t, true, "sleep", "30")
		server := start(t, false, "sleep", "30")
		lm := member(t, leader.pid, session.RoleLeader)
		s := session.Session{ID: "pane:1", Kind: session.Pane, SIDs: []int{lm.SID},
			Members: []session.Member{member(t, server.pid, session.RoleServer), lm}}
		oc := kickOne1(t, s, Options{Wait: 2 * time.Second})
		if oc.Result != Ended {
			t.Errorf("Result = %q (%s), want ended", oc.Result, oc.Reason)
		}
		if got := signalsTo(oc, server.pid); len(got) != 0 {
			t.Errorf("server got %v", got)
		}
		if !slices.ContainsFunc(oc.Refused, func(r Refusal) bool { return r.PID == server.pid }) {
			t.Errorf("Refused = %+v, want the server", oc.Refused)
		}
		if !alive(server.pid) {
			t.Errorf("the multiplexer server was killed")
		}
		if alive(leader.pid) {
			t.Errorf("the pane's shell survived")
		}
	})
}

func TestKickEmpty(t *testing.T) {
	needPidfd(t)
	out, err := Kick(context.Background(), nil, Options{})
	if err != nil || len(out) != 0 {
		t.Errorf("Kick(nil) = %v, %v", out, err)
	}
}

// A session that holds nothing but its login process (a login caught
// half-born, or one whose session ended without it) gets SIGTERM at once,
// which sshd's monitor and login(1) answer by logging the user out; SIGKILL
// only if it stays. The dry run says so, in that order.
func TestKickLoginOnlyGetsTERM(t *testing.T) {
	needRoot(t)
	needPidfd(t)
	subreaper(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "logged-out")
	// As sshd's monitor does: on SIGTERM, end the child, log out, exit.
	mon := start(t, true, "sh", "-c", `trap 'kill $!; echo out > `+out+`; exit 0' TERM; sleep 3705 & while :; do wait; done`)
	waitFor(t, "the monitor to trap SIGTERM", func() bool { return sigCaught(mon.pid, syscall.SIGTERM) })
	kid := childOf(t, mon.pid, "the monitor's child", func(p *proc.Process) bool { return p.Comm == "sleep" })
	t.Cleanup(func() { syscall.Kill(kid.PID, syscall.SIGKILL); reapPid(kid.PID) })
	mm := member(t, mon.pid, session.RoleMonitor)
	s := session.Session{ID: "ssh:" + strconv.Itoa(mon.pid), User: "root", UID: 0, PID: mon.pid, Kind: session.SSHNoTTY,
		Members: []session.Member{mm}, SIDs: []int{mm.SID}}

	dry := kickOne1(t, s, Options{DryRun: true, Wait: 5 * time.Second})
	var said []string
	for _, r := range dry.Signals {
		said = append(said, r.Signal)
	}
	if !slices.Equal(said, []string{"TERM", "KILL"}) || dry.Result != DryRun {
		t.Errorf("dry run: %v (%s), want TERM then KILL if it stays: %+v", said, dry.Result, dry.Signals)
	}
	if !alive(mon.pid) {
		t.Fatal("the dry run ended the login")
	}

	oc := kickOne1(t, s, Options{Wait: 5 * time.Second})
	if got := signalsTo(oc, mon.pid); !slices.Equal(got, []string{"TERM"}) {
		t.Errorf("signals to the login: %v, want [TERM] (it logs out by itself)", got)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "out\n" {
		t.Errorf("the login did not log out: %q, %v", b, err)
	}
	if err := mon.wait(); err != nil {
		t.Errorf("the login ended with %v, want its own exit 0", err)
	}
	if oc.Result != Ended {
		t.Errorf("Result = %q (%s), want ended", oc.Result, oc.Reason)
	}
}
