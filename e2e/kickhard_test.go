package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

// whoLineOf waits until who -u on the server's utmp shows user on a
// terminal, and returns it.
func whoLineOf(t *testing.T, s *sshdtest.Server, user string) whoLine {
	t.Helper()
	var found whoLine
	if !sshdtest.Poll(60*time.Second, func() bool {
		for _, w := range whoU(t, s.Utmp) {
			if w.user == user {
				found = w
				return true
			}
		}
		return false
	}) {
		t.Fatalf("who -u %s never showed %s", s.Utmp, user)
	}
	return found
}

// waitLoggedOut waits until who -u no longer shows line: sshd wrote the
// logout record.
func waitLoggedOut(t *testing.T, s *sshdtest.Server, line string) bool {
	t.Helper()
	return sshdtest.Poll(30*time.Second, func() bool {
		for _, w := range whoU(t, s.Utmp) {
			if w.line == line {
				return false
			}
		}
		return true
	})
}

// alive proves a session's shell still runs after something that must
// not have touched it: it answers a command typed now, which it could not
// if a signal sent before had ended it (signals are delivered before the
// shell returns to reading its input). No fixed sleep.
func answers(t *testing.T, sess *sshdtest.Session, marker string) bool {
	t.Helper()
	if _, err := sess.Stdin.Write([]byte("echo " + marker + "-$((6*7))\n")); err != nil {
		return false
	}
	return sess.WaitFor(marker+"-42", 30*time.Second)
}

// TestKickRootLoginLogsOut is issue 8 item 5: a root login on OpenSSH
// before 9.8 has one root sshd process and no privilege-separated child;
// SIGHUP killed it before it wrote the logout record, and the session
// stayed in who. The kick must leave utmp clean.
func TestKickRootLoginLogsOut(t *testing.T) {
	s := sshdtest.Start(t)
	root := s.Root(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	rs := s.Login(t, root, true, "")
	w := whoLineOf(t, s, "root")
	if !answers(t, rs, "up") {
		t.Fatalf("root's shell does not answer: %q", rs.Out.Bytes())
	}
	rep, r := kickJSON(t, s, audit, w.line)
	if r.code != 0 || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick %s: exit %d %+v\n%s", w.line, r.code, rep, r.stderr)
	}
	for _, sg := range rep.Sessions[0].Signals {
		if sg.Role == "sshd" && sg.Signal == "HUP" && !hasMonitor(rep) {
			t.Errorf("root's only sshd process got SIGHUP, which kills it before it logs out: %+v", sg)
		}
	}
	if !rs.Ended(30 * time.Second) {
		t.Errorf("the client's session did not end")
	}
	if !waitLoggedOut(t, s, w.line) {
		t.Errorf("who -u still shows root on %s after the kick: sshd did not log root out; signals %+v", w.line, rep.Sessions[0].Signals)
	}
}

func hasMonitor(rep kickReport) bool {
	for _, sg := range rep.Sessions[0].Signals {
		if sg.Role == "monitor" {
			return true
		}
	}
	return false
}

// TestKickUnsafeAuditLog is issue 8 item 7: an audit log a user can
// redirect or hold is refused with a clear error, and nothing is
// signalled — nor does a FIFO hang the kick.
func TestKickUnsafeAuditLog(t *testing.T) {
	s := sshdtest.Start(t)
	alice := s.AddUser(t)
	a := s.Login(t, alice, true, "")
	sess := waitTTYSessions(t, 1, alice.Name, "--utmp", s.Utmp)[0]

	secret := filepath.Join(t.TempDir(), "root-only")
	if err := os.WriteFile(secret, []byte("root's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// What alice can make in a directory of hers.
	hers := filepath.Join(alice.Home, "logs")
	mkdir := func(dir string) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkdir(hers)
	os.Chown(hers, alice.UID, alice.GID)
	link := filepath.Join(hers, "audit.jsonl")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	os.Lchown(link, alice.UID, alice.GID)
	rootDir := t.TempDir()
	os.Chmod(rootDir, 0o755)
	owned := filepath.Join(rootDir, "owned.jsonl")
	os.WriteFile(owned, nil, 0o644)
	os.Chown(owned, alice.UID, alice.GID)
	fifo := filepath.Join(rootDir, "fifo.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(t.TempDir(), "open")
	mkdir(open)
	os.Chmod(open, 0o777)

	for _, path := range []string{link, owned, fifo, filepath.Join(open, "audit.jsonl")} {
		// A deadline only to turn a hang into a failure (the bug being
		// tested hung for ever); no timing is asserted.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, bin, "kick", "--yes", "--utmp", s.Utmp, "--audit-log", path, sess.TTY)
		r := runCmd(t, cmd)
		hung := ctx.Err() == context.DeadlineExceeded
		cancel()
		if hung {
			t.Fatalf("kick --audit-log %s hung", path)
		}
		if r.code != 1 || !strings.Contains(r.stderr, "audit") || !strings.Contains(r.stderr, "nothing was done") {
			t.Errorf("kick --audit-log %s: exit %d, stderr %q; want exit 1 and a clear error", path, r.code, r.stderr)
		}
		if !answers(t, a, "after-"+filepath.Base(path)) {
			t.Fatalf("the session did not survive a kick refused for its audit log %s", path)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "root's\n" {
		t.Errorf("root's file was written through alice's symlink: %q", b)
	}
	if fi, _ := os.Stat(owned); fi != nil && fi.Size() != 0 {
		t.Errorf("alice's file received the audit record")
	}
}
