package sshdtest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pidLock serializes every test on this host that steers PID allocation
// (in this process and in other test binaries): two of them writing
// ns_last_pid at once would steal each other's PIDs.
const pidLock = "/tmp/sshkick-test-ns_last_pid.lock"

// StartWithPID starts a command made by mk so that it runs under PID pid,
// which must be free: it writes pid-1 to /proc/sys/kernel/ns_last_pid
// (root only) and forks until the kernel hands out pid — other processes
// on the host and the Go runtime's own threads may take it first. Each
// attempt that got another PID is killed and reaped before the next. The
// command is reaped at cleanup. Attacks that need a PID reused (a root
// process under a dead session's PID) use it.
func StartWithPID(t testing.TB, pid int, mk func() *exec.Cmd) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("StartWithPID needs root (it writes /proc/sys/kernel/ns_last_pid)")
	}
	lock, err := os.OpenFile(pidLock, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		t.Fatalf("PID reuse lock: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("PID reuse lock: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	deadline := time.Now().Add(60 * time.Second)
	for attempt := 1; ; attempt++ {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatalf("write ns_last_pid: %v", err)
		}
		cmd := mk()
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %v: %v", cmd.Args, err)
		}
		if cmd.Process.Pid == pid {
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			t.Logf("PID %d reused after %d attempt(s)", pid, attempt)
			return cmd
		}
		cmd.Process.Kill()
		cmd.Wait()
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			// Someone else's process has it now; it may end soon.
			time.Sleep(10 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("could not get PID %d in %d attempts: the host forks too much, or something holds the PID (%s)", pid, attempt, holder(pid))
		}
	}
}

// holder says which process or thread has pid, from its status.
func holder(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "free now"
	}
	var name, tgid string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Name:"); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "Tgid:"); ok {
			tgid = strings.TrimSpace(v)
		}
	}
	if tgid == strconv.Itoa(os.Getpid()) {
		return "a thread of this test process"
	}
	return fmt.Sprintf("%q, thread group %s", name, tgid)
}
