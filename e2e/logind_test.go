package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/logind"
	"github.com/sshkick/sshkick/internal/logind/logindtest"
	"github.com/sshkick/sshkick/internal/sshdtest"
)

// withBus runs the binary with the system bus at addr.
func withBus(t testing.TB, addr string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cmd.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+addr)
	return runCmd(t, cmd)
}

// TestLogind: with logind on the system bus (a fake login1 on a private
// dbus-daemon, since this host has no systemd), its sessions join the
// ones utmp and /proc found, logind-only sessions are listed, greeter and
// manager sessions are not, and kick asks logind to signal the session and
// still verifies the end itself.
func TestLogind(t *testing.T) {
	s := sshdtest.Start(t)
	alice, bob := s.AddUser(t), s.AddUser(t)
	a := s.Login(t, alice, true, "sleep 621")
	s.Login(t, bob, false, "sleep 622")
	sa := waitTTYSessions(t, 1, alice.Name, "--utmp", s.Utmp)[0]
	sb := waitSessions(t, 1, bob.Name, "--utmp", s.Utmp)[0]
	// A console login that only logind knows of: its leader is a process
	// of the test's, on no terminal discovery accepts.
	leader := exec.Command("sleep", "600")
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leader.Process.Kill(); leader.Wait() })

	addr := logindtest.StartBus(t)
	now := time.Now().Truncate(time.Second)
	fake := logindtest.NewFake(t, addr,
		logind.Session{ID: "7", UID: uint32(alice.UID), User: alice.Name, TTY: sa.TTY, Remote: true, RemoteHost: "127.0.0.1",
			Service: "sshd", Type: "tty", Class: "user", State: "active", Leader: uint32(sa.PID), Timestamp: now},
		logind.Session{ID: "8", UID: uint32(bob.UID), User: bob.Name, Remote: true, RemoteHost: "127.0.0.1",
			Service: "sshd", Type: "unspecified", Class: "user", State: "active", Leader: uint32(sb.PID), Timestamp: now},
		logind.Session{ID: "c1", UID: 0, User: "root", Seat: "seat0", Service: "login", Type: "tty", Class: "user",
			State: "online", Leader: uint32(leader.Process.Pid), Timestamp: now},
		logind.Session{ID: "c2", UID: 0, User: "root", Class: "manager", Leader: uint32(leader.Process.Pid), Timestamp: now},
		logind.Session{ID: "g1", UID: 0, User: "root", Class: "greeter", Leader: uint32(leader.Process.Pid), Timestamp: now},
	)

	r := withBus(t, addr, "list", "--json", "--utmp", s.Utmp)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("list with logind: exit %d %s", r.code, r.stderr)
	}
	var all []jsonSession
	mustJSON(t, r.stdout, &all)
	byID := map[string]jsonSession{}
	for _, x := range all {
		byID[x.ID] = x
	}
	if x, ok := byID["7"]; !ok || x.TTY != sa.TTY || x.PID != sa.PID || strings.Join(x.Sources, ",") != "logind,utmp,proc" {
		t.Errorf("alice's session with logind: %+v (all: %+v)", x, all)
	}
	if x, ok := byID["8"]; !ok || x.Kind != "ssh-notty" || strings.Join(x.Sources, ",") != "logind,proc" {
		t.Errorf("bob's session with logind: %+v", x)
	}
	if x, ok := byID["c1"]; !ok || x.PID != leader.Process.Pid || x.Sources[0] != "logind" || x.Stale {
		t.Errorf("logind-only session: %+v", x)
	}
	if _, ok := byID["c2"]; ok {
		t.Errorf("a manager session is listed")
	}
	if _, ok := byID["g1"]; ok {
		t.Errorf("a greeter session is listed")
	}

	// Kick by logind id with --end-multiplexers: logind is asked to
	// signal the whole scope, pidfds verify. (Without the flag logind is
	// not asked: its KillSession would also end the tmux servers a logout
	// keeps.)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	r = withBus(t, addr, "kick", "7", "--end-multiplexers", "--json", "--utmp", s.Utmp, "--audit-log", audit)
	var rep kickReport
	mustJSON(t, r.stdout, &rep)
	if r.code != 0 || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick 7: exit %d %+v %s", r.code, rep, r.stderr)
	}
	calls := fake.Calls()
	if len(calls) == 0 || calls[0].Method != "KillSession" || calls[0].Args[0] != "7" || calls[0].Args[1] != "all" {
		t.Errorf("logind calls: %+v", calls)
	}
	if acts := rep.Sessions[0].Actions; len(acts) == 0 || acts[0].Via != "logind" || acts[0].Target != "session 7" || acts[0].Result != "done" {
		t.Errorf("the outcome does not say logind was asked: %+v", acts)
	}
	if !a.Ended(60 * time.Second) {
		t.Errorf("alice's session did not end")
	}
}
