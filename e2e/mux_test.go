package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/sshdtest"
)

// tmuxServers are the live "tmux: server" processes of uid whose socket
// is sock (their command line names it).
func tmuxServers(t *testing.T, uid int, sock string) []int {
	t.Helper()
	snap, err := proc.Scan("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range snap.Procs {
		if p.UID == uid && !p.Zombie() && p.PID == p.SID && strings.HasPrefix(p.Comm, "tmux") &&
			strings.Contains(snap.Cmdline(p.PID), sock) {
			out = append(out, p.PID)
		}
	}
	return out
}

func waitTmuxServer(t *testing.T, uid int, sock string) int {
	t.Helper()
	var pids []int
	if !sshdtest.Poll(60*time.Second, func() bool { pids = tmuxServers(t, uid, sock); return len(pids) == 1 }) {
		t.Fatalf("no tmux server for %s: %v", sock, pids)
	}
	return pids[0]
}

// TestKickKeepsMultiplexers: on a host without logind, a tmux server
// started from an SSH login survives `kick TTY` (as it survives the
// user's logout), and ends with --end-multiplexers — only the one started
// from the kicked login, not an older one on a reused terminal.
func TestKickKeepsMultiplexers(t *testing.T) {
	if _, err := os.Stat("/usr/bin/tmux"); err != nil {
		if os.Getenv("SSHKICK_E2E") == "require" {
			t.Fatal("tmux is missing: make check installs it")
		}
		t.Skip("tmux is missing")
	}
	s := sshdtest.Start(t)
	alice := s.AddUser(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	sock1 := filepath.Join(alice.Home, "one.sock")
	sock2 := filepath.Join(alice.Home, "two.sock")

	a := s.Login(t, alice, true, "")
	sa := waitTTYSessions(t, 1, alice.Name, "--utmp", s.Utmp)[0]
	a.Stdin.Write([]byte("tmux -S " + sock1 + " new-session -d 'sleep 641' && echo tmux-$((6*7))\n"))
	if !a.WaitFor("tmux-42", 60*time.Second) {
		t.Fatal("tmux did not start in the session")
	}
	first := waitTmuxServer(t, alice.UID, sock1)
	t.Cleanup(func() { signalOwn(first) })

	rep, r := kickJSON(t, s, audit, sa.TTY)
	if r.code != 0 || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick %s: exit %d %+v %s", sa.TTY, r.code, rep, r.stderr)
	}
	if !a.Ended(60 * time.Second) {
		t.Fatal("the login did not end")
	}
	if !alivePID(first) {
		t.Fatal("kick TTY ended the tmux server started in the session; it must be kept by default")
	}

	// A second login (often on the same terminal) and its own server.
	b := s.Login(t, alice, true, "")
	sb := waitTTYSessions(t, 1, alice.Name, "--utmp", s.Utmp)[0]
	b.Stdin.Write([]byte("tmux -S " + sock2 + " new-session -d 'sleep 642' && echo tmux-$((6*7))\n"))
	if !b.WaitFor("tmux-42", 60*time.Second) {
		t.Fatal("tmux did not start in the second session")
	}
	second := waitTmuxServer(t, alice.UID, sock2)
	t.Cleanup(func() { signalOwn(second) })

	rep, r = kickJSON(t, s, audit, sb.TTY, "--end-multiplexers")
	if r.code != 0 || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick %s --end-multiplexers: exit %d %+v %s", sb.TTY, r.code, rep, r.stderr)
	}
	signalled := false
	for _, sg := range rep.Sessions[0].Signals {
		if sg.PID == second && sg.Result == "sent" {
			signalled = true
		}
		if sg.PID == first {
			t.Errorf("--end-multiplexers signalled the older login's tmux server %d: %+v", first, sg)
		}
	}
	if !signalled {
		t.Errorf("the session's tmux server %d was not signalled: %+v", second, rep.Sessions[0].Signals)
	}
	if !sshdtest.Poll(60*time.Second, func() bool { return !alivePID(second) }) {
		t.Error("the second tmux server survived --end-multiplexers")
	}
	if !alivePID(first) {
		t.Error("the first login's tmux server ended with the second login")
	}
}

// alivePID: the process exists and is not a zombie.
func alivePID(pid int) bool {
	p, err := proc.Read("/proc", pid)
	return err == nil && !p.Zombie()
}

// signalOwn ends a process this test started (through its user's login),
// if it still runs.
func signalOwn(pid int) {
	if p, err := os.FindProcess(pid); err == nil && alivePID(pid) {
		p.Kill()
	}
}
