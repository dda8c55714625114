package kick

import (
	"errors"
	"os"
	"os/exec"
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

// needPidfd skips when the kernel (or a seccomp filter) has no pidfds.
func needPidfd(t *testing.T) {
	t.Helper()
	if err := CheckPidfd(); err != nil {
		t.Skipf("no pidfds here: %v", err)
	}
}

// child is a process this test started, killed (its whole process group
// when it has its own session) and reaped at cleanup.
type child struct {
	cmd    *exec.Cmd
	pid    int
	reaped bool
}

func start(t *testing.T, setsid bool, name string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(name, args...)
	if setsid {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	c := &child{cmd: cmd, pid: cmd.Process.Pid}
	t.Cleanup(func() {
		if !c.reaped {
			// Not reaped yet, so the PID (and the process group it
			// leads) cannot have been reused: only our processes are hit.
			if setsid {
				syscall.Kill(-c.pid, syscall.SIGKILL)
			}
			cmd.Process.Kill()
			c.wait()
		}
	})
	return c
}

func (c *child) wait() error {
	if c.reaped {
		return nil
	}
	c.reaped = true
	return c.cmd.Wait()
}

// member describes pid as discovery would.
func member(t *testing.T, pid int, role session.Role) session.Member {
	t.Helper()
	p, err := proc.Read("/proc", pid)
	if err != nil {
		t.Fatalf("proc.Read(%d): %v", pid, err)
	}
	return session.Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: role}
}

// waitFor polls cond for up to a minute: generous, the machine is shared
// and slow at times.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !sshdtest.Poll(time.Minute, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func isZombie(pid int) bool {
	p, err := proc.Read("/proc", pid)
	return err == nil && p.Zombie()
}

func TestDiffers(t *testing.T) {
	m := session.Member{Ident: proc.Ident{PID: 4242, Start: 777}, UID: 1000, SID: 4240, TTY: 34816}
	same := proc.Process{PID: 4242, PPID: 4240, SID: 4240, TTY: 34816, Start: 777, UID: 1000, EUID: 1000}
	tests := []struct {
		name string
		m    session.Member
		edit func(p *proc.Process)
		want string // substring; "" means no difference
	}{
		{"same", m, func(*proc.Process) {}, ""},
		{"reused PID", m, func(p *proc.Process) { p.Start = 778 }, "PID reused"},
		{"kernel thread flag", m, func(p *proc.Process) { p.Flags = 0x00200000 }, "kernel thread"},
		{"child of kthreadd", m, func(p *proc.Process) { p.PPID = 2 }, "kernel thread"},
		{"uid changed", m, func(p *proc.Process) { p.UID = 0 }, "now runs as uid 0, not 1000"},
		{"unknown uid at discovery is not compared", session.Member{Ident: m.Ident, UID: -1, SID: m.SID, TTY: m.TTY},
			func(p *proc.Process) { p.UID = 0 }, ""},
		{"session changed", m, func(p *proc.Process) { p.SID = 1 }, "moved to session 1 from 4240"},
		{"terminal changed", m, func(p *proc.Process) { p.TTY = 0 }, "changed its terminal"},
		{"effective uid is not compared", m, func(p *proc.Process) { p.EUID = 0 }, ""},
	}
	for _, tc := range tests {
		p := same
		tc.edit(&p)
		got := differs(tc.m, &p)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: differs = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCheckPidfd(t *testing.T) {
	if err := CheckPidfd(); err != nil && !errors.Is(err, ErrNoPidfd) {
		t.Fatalf("CheckPidfd = %v, want nil or ErrNoPidfd", err)
	}
}

func TestOpen(t *testing.T) {
	needPidfd(t)
	c := start(t, false, "sleep", "30")
	m := member(t, c.pid, session.RoleLeader)
	if m.Comm != "sleep" || m.UID != os.Getuid() {
		t.Fatalf("member %+v: want sleep running as uid %d", m, os.Getuid())
	}

	h, err := Open("/proc", m)
	if err != nil {
		t.Fatalf("Open(own child) = %v", err)
	}
	if h.Member != m {
		t.Errorf("Handle.Member = %+v, want %+v", h.Member, m)
	}
	if h.Exited() {
		t.Errorf("a running child reads as exited")
	}
	h.Close()
	h.Close() // twice is harmless

	wrong := []struct {
		name string
		edit func(*session.Member)
	}{
		{"start", func(m *session.Member) { m.Start++ }},
		{"uid", func(m *session.Member) { m.UID += 12345 }},
		{"sid", func(m *session.Member) { m.SID++ }},
		{"tty", func(m *session.Member) { m.TTY ^= 1 }},
	}
	for _, w := range wrong {
		bad := m
		w.edit(&bad)
		h, err := Open("/proc", bad)
		if !errors.Is(err, ErrIdentityChanged) || h != nil {
			t.Errorf("Open with a wrong %s = %v, %v; want ErrIdentityChanged", w.name, h, err)
		}
	}
	// A uid unknown at discovery (-1) is not compared.
	unknown := m
	unknown.UID = -1
	if h, err := Open("/proc", unknown); err != nil {
		t.Errorf("Open with uid -1 = %v", err)
	} else {
		h.Close()
	}
	if p, err := proc.Read("/proc", c.pid); err != nil || p.Zombie() {
		t.Fatalf("Open harmed the child: %v", err)
	}
}

func TestOpenRefusesLowPIDs(t *testing.T) {
	for _, pid := range []int{1, 0, -1, -12345} {
		m := session.Member{Ident: proc.Ident{PID: pid}, UID: -1}
		if pid == 1 {
			// Even an exact description of init is refused.
			if p, err := proc.Read("/proc", 1); err == nil {
				m = session.Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm}
			}
		}
		h, err := Open("/proc", m)
		if err == nil || h != nil {
			t.Errorf("Open(pid %d) = %v, %v; want an error and no handle", pid, h, err)
		}
		if !errors.Is(err, ErrIdentityChanged) {
			t.Errorf("Open(pid %d) = %v, want ErrIdentityChanged", pid, err)
		}
	}
}

func TestOpenGone(t *testing.T) {
	needPidfd(t)
	t.Run("reaped", func(t *testing.T) {
		c := start(t, false, "sleep", "30")
		m := member(t, c.pid, session.RoleMember)
		c.cmd.Process.Kill()
		c.wait()
		if h, err := Open("/proc", m); !errors.Is(err, ErrGone) || h != nil {
			t.Errorf("Open(reaped child) = %v, %v; want ErrGone", h, err)
		}
	})
	t.Run("zombie", func(t *testing.T) {
		c := start(t, false, "sleep", "30")
		m := member(t, c.pid, session.RoleMember)
		c.cmd.Process.Kill()
		waitFor(t, "the child to be a zombie", func() bool { return isZombie(c.pid) })
		if h, err := Open("/proc", m); !errors.Is(err, ErrGone) || h != nil {
			t.Errorf("Open(zombie child) = %v, %v; want ErrGone", h, err)
		}
	})
}

func TestHandleSignalAndWait(t *testing.T) {
	needPidfd(t)
	c := start(t, false, "sleep", "30")
	d := start(t, false, "sleep", "30")
	hc, err := Open("/proc", member(t, c.pid, session.RoleLeader))
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	hd, err := Open("/proc", member(t, d.pid, session.RoleLeader))
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()

	// Nothing exits by itself: both are left after a short wait.
	if left := waitExit([]*Handle{hc, hd}, 50*time.Millisecond); len(left) != 2 {
		t.Fatalf("waitExit on two running children left %d", len(left))
	}

	if err := hc.Signal(unix.SIGTERM); err != nil {
		t.Fatalf("Signal(SIGTERM) = %v", err)
	}
	if left := waitExit([]*Handle{hc}, 5*time.Second); len(left) != 0 {
		t.Fatalf("waitExit after SIGTERM left %d", len(left))
	}
	if !hc.Exited() {
		t.Errorf("Exited = false after the child ended")
	}
	// Only the one signalled ended.
	left := waitExit([]*Handle{hc, hd}, 20*time.Millisecond)
	if len(left) != 1 || left[0] != hd {
		t.Errorf("waitExit left %v, want only the other child", left)
	}
	if err := c.wait(); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("child ended with %v, want terminated by SIGTERM", err)
	}
	// Reaped: the pidfd still names the dead process, never a new one.
	if err := hc.Signal(unix.SIGTERM); !errors.Is(err, ErrGone) {
		t.Errorf("Signal after reaping = %v, want ErrGone", err)
	}
	if p, err := proc.Read("/proc", d.pid); err != nil || p.Zombie() {
		t.Errorf("the other child was harmed: %v", err)
	}
}

func TestWaitExitEmpty(t *testing.T) {
	if left := waitExit(nil, time.Second); left != nil {
		t.Errorf("waitExit(nil) = %v", left)
	}
}

// sigIgnored reports whether pid ignores sig, from /proc/PID/status.
func sigIgnored(pid int, sig syscall.Signal) bool { return sigMask(pid, "SigIgn:", sig) }

// sigCaught reports whether pid has a handler for sig (a shell's trap).
func sigCaught(pid int, sig syscall.Signal) bool { return sigMask(pid, "SigCgt:", sig) }

func sigMask(pid int, field string, sig syscall.Signal) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}
