package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
	"github.com/sshkick/sshkick/internal/utmp"
)

// TestListMatchesWhoAndFindsSessionsWithoutUtmp opens real sessions — with a
// terminal, without one, forward-only, and root's — and checks that `list`
// agrees with `who -u` on the same utmp file, then finds the same sessions
// with no utmp at all.
func TestListMatchesWhoAndFindsSessionsWithoutUtmp(t *testing.T) {
	s := sshdtest.Start(t)
	alice, bob := s.AddUser(t), s.AddUser(t)
	s.Login(t, alice, true, "")
	s.Login(t, alice, false, "sleep 300")
	s.Login(t, alice, false, "") // no pty, no command: a shell on pipes
	s.Login(t, bob, true, "")
	// Forward-only: a connection with no session channel at all (ssh -N).
	s.Dial(t, bob)

	aliceS := waitSessions(t, 3, alice.Name, "--utmp", s.Utmp)
	bobS := waitSessionsAndForward(t, 2, bob.Name, "--utmp", s.Utmp)

	who := whoU(t, s.Utmp)
	var whoMine []whoLine
	for _, w := range who {
		if w.user == alice.Name || w.user == bob.Name {
			whoMine = append(whoMine, w)
		}
	}
	if len(whoMine) != 2 {
		t.Fatalf("who -u shows %d sessions of the test users, want 2: %+v", len(whoMine), who)
	}
	all := append(append([]jsonSession{}, aliceS...), bobS...)
	for _, w := range whoMine {
		var got *jsonSession
		for i := range all {
			if all[i].TTY == w.line {
				got = &all[i]
			}
		}
		if got == nil {
			t.Fatalf("who -u shows %s on %s; list does not: %+v", w.user, w.line, all)
		}
		if got.User != w.user || strconv.Itoa(got.PID) != w.pid || got.Host != w.host {
			t.Errorf("who -u: %s %s pid %s (%s); list: %s %s pid %d (%s)", w.user, w.line, w.pid, w.host, got.User, got.TTY, got.PID, got.Host)
		}
		if got.Kind != "ssh" || got.Stale || !contains(got.Sources, "utmp") || !contains(got.Sources, "proc") {
			t.Errorf("session on %s: kind %s stale %v sources %v", w.line, got.Kind, got.Stale, got.Sources)
		}
		if got.IdleSeconds == nil || *got.IdleSeconds < 0 || *got.IdleSeconds > 60 {
			t.Errorf("session on %s: idle_seconds %v", w.line, got.IdleSeconds)
		}
		if got.ID != w.line || got.Login == nil || got.UID < 1000 || got.Addr != "127.0.0.1" || got.Port == 0 {
			t.Errorf("session on %s: %+v", w.line, *got)
		}
	}
	var notty, shellNoPty, forward int
	for _, x := range all {
		if x.TTY != "" {
			continue
		}
		if x.Kind != "ssh-notty" || x.IdleSeconds != nil || x.Host != "127.0.0.1" || !strings.HasPrefix(x.ID, "ssh:") {
			t.Errorf("session without terminal: %+v", x)
		}
		switch {
		case x.Command == "sleep 300":
			notty++
		case strings.Contains(x.Command, "bash"):
			shellNoPty++
		case x.Command == "" && x.User == bob.Name:
			forward++
		}
	}
	if notty != 1 || shellNoPty != 1 || forward != 1 {
		t.Errorf("sessions without terminal: exec %d, shell %d, forward-only %d; want 1 each: %+v", notty, shellNoPty, forward, all)
	}

	// The same sessions without utmp: found from /proc alone, with the
	// PIDs who -u showed.
	missing := filepath.Join(t.TempDir(), "no-such-utmp")
	r := run(t, "list", "--json", "--utmp", missing)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("list with a missing utmp: exit %d, stderr %q", r.code, r.stderr)
	}
	noUtmp := waitSessions(t, 3, alice.Name, "--utmp", missing)
	noUtmp = append(noUtmp, waitSessionsAndForward(t, 2, bob.Name, "--utmp", missing)...)
	for _, w := range whoMine {
		found := false
		for _, x := range noUtmp {
			if x.TTY == w.line && strconv.Itoa(x.PID) == w.pid && x.User == w.user && x.Host == "127.0.0.1" {
				found = true
				if len(x.Sources) != 1 || x.Sources[0] != "proc" {
					t.Errorf("without utmp, sources %v", x.Sources)
				}
			}
		}
		if !found {
			t.Errorf("without utmp, %s on %s (pid %s) is missing: %+v", w.user, w.line, w.pid, noUtmp)
		}
	}
}

// TestListRootLogin: before OpenSSH 9.8, root logins have no [priv]
// monitor and utmp's PID is the shell; list must agree with who -u.
func TestListRootLogin(t *testing.T) {
	s := sshdtest.Start(t)
	root := s.Root(t)
	sess := s.Login(t, root, true, "")
	defer sess.Client.Close()
	if !sshdtest.Poll(60*time.Second, func() bool {
		var w *whoLine
		for _, l := range whoU(t, s.Utmp) {
			if l.user == "root" {
				w = &l
			}
		}
		if w != nil {
			for _, x := range listJSON(t, "--utmp", s.Utmp, "--user", "root") {
				if x.TTY == w.line {
					if strconv.Itoa(x.PID) != w.pid || x.Kind != "ssh" || x.Stale || x.Host != w.host {
						t.Fatalf("who -u: %+v; list: %+v", *w, x)
					}
					return true
				}
			}
		}
		return false
	}) {
		t.Fatalf("root's session never showed in who -u and list alike")
	}
}

// TestListFiltersAndStaleRecords checks the selectors, forged and stale
// utmp records, sanitizing and the usage errors.
func TestListFiltersAndStaleRecords(t *testing.T) {
	s := sshdtest.Start(t)
	alice, bob := s.AddUser(t), s.AddUser(t)
	s.Login(t, alice, true, "")
	// argv[0] with a terminal escape: OSC title, BEL, and a bidi override.
	s.Login(t, bob, false, "exec -a $'evil\\e]0;pwned\\a\\xe2\\x80\\xae' sleep 300")
	waitSessions(t, 1, alice.Name, "--utmp", s.Utmp)
	waitSessions(t, 1, bob.Name, "--utmp", s.Utmp)

	if got := ofUser(listJSON(t, "--utmp", s.Utmp, "--user", bob.Name), alice.Name); len(got) != 0 {
		t.Errorf("--user %s lists %s's sessions", bob.Name, alice.Name)
	}
	if got := listJSON(t, "--utmp", s.Utmp, "--kind", "ssh-notty", "--user", alice.Name); len(got) != 0 {
		t.Errorf("--kind ssh-notty lists alice's terminal session: %+v", got)
	}
	if got := listJSON(t, "--utmp", s.Utmp, "--from", "127.0.0.0/8", "--user", alice.Name); len(got) != 1 {
		t.Errorf("--from 127.0.0.0/8: %d sessions, want 1", len(got))
	}
	if got := listJSON(t, "--utmp", s.Utmp, "--from", "10.0.0.0/8", "--user", alice.Name); len(got) != 0 {
		t.Errorf("--from 10.0.0.0/8: %+v", got)
	}
	if got := listJSON(t, "--utmp", s.Utmp, "--idle", "1h", "--user", alice.Name); len(got) != 0 {
		t.Errorf("--idle 1h lists a fresh session: %+v", got)
	}

	// The hostile command line is escaped in the table and in JSON.
	r := run(t, "list", "--utmp", s.Utmp, "--user", bob.Name)
	if r.code != 0 || strings.ContainsAny(r.stdout, "\x1b\x07\u202e") || !strings.Contains(r.stdout, `evil\x1b]0;pwned\x07\u202e 300`) {
		t.Errorf("hostile argv[0] in the table: exit %d %q", r.code, r.stdout)
	}
	rj := run(t, "list", "--json", "--utmp", s.Utmp, "--user", bob.Name)
	if strings.Contains(rj.stdout, "\u202e") || strings.Contains(rj.stdout, `\u001b`) || !strings.Contains(rj.stdout, `evil\\x1b]0;pwned\\x07\\u202e 300`) {
		t.Errorf("hostile argv[0] in JSON: %s", rj.stdout)
	}

	// Forged and stale records: one that names the sshd listener (a real,
	// unrelated root process) as alice's login on her terminal, one whose
	// process is gone, one with a path for a terminal.
	aliceS := ofUser(listJSON(t, "--utmp", s.Utmp), alice.Name)[0]
	data, err := os.ReadFile(s.Utmp)
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(t.TempDir(), "utmp")
	now := time.Now()
	for _, r := range []utmp.Record{
		{Type: utmp.UserProcess, PID: int32(s.PID()), Line: aliceS.TTY, ID: "fk1", User: alice.Name, Host: "forged\x1b[2J", Time: now},
		{Type: utmp.UserProcess, PID: 4000000, Line: "pts/77", ID: "fk2", User: alice.Name, Host: "gone", Time: now},
		{Type: utmp.UserProcess, PID: int32(os.Getpid()), Line: "../../etc/shadow", ID: "fk3", User: "root", Host: "path", Time: now},
	} {
		data = append(data, utmp.Encode(r, utmp.Native)...)
	}
	if err := os.WriteFile(forged, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got := listJSON(t, "--utmp", forged)
	stale := map[string]jsonSession{}
	for _, x := range got {
		if x.Stale {
			stale[x.Host] = x
		}
	}
	if x, ok := stale[`forged\x1b[2J`]; !ok || !strings.Contains(x.StaleReason, "not a session of") || x.Processes != 0 {
		t.Errorf("forged record (the listener as alice's login): %+v", x)
	}
	if x, ok := stale["gone"]; !ok || !strings.Contains(x.StaleReason, "gone") {
		t.Errorf("record of a dead process: %+v", x)
	}
	if x, ok := stale["path"]; !ok || !strings.Contains(x.StaleReason, "terminal name") {
		t.Errorf("record with a path as terminal: %+v", x)
	}
	// Alice's real session is still there, untouched by the forgery.
	live := 0
	for _, x := range ofUser(got, alice.Name) {
		if !x.Stale && x.TTY == aliceS.TTY && x.PID == aliceS.PID {
			live++
		}
	}
	if live != 1 {
		t.Errorf("alice's real session with a forged record beside it: %d live", live)
	}

	for _, bad := range [][]string{
		{"list", "--idle", "30"},
		{"list", "--idle", "soon"},
		{"list", "--from", "not-an-address"},
		{"list", "--kind", "telnet"},
		{"list", "--no-such-flag"},
		{"list", "extra-arg"},
	} {
		r := run(t, bad...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "sshkick: ") || r.stdout != "" {
			t.Errorf("sshkick %v: exit %d, stderr %q; want exit 2 with a clear error", bad, r.code, r.stderr)
		}
	}
}

// TestListAsNormalUser: a user without root lists what they can read and
// is told what they could not see.
func TestListAsNormalUser(t *testing.T) {
	s := sshdtest.Start(t)
	alice, bob := s.AddUser(t), s.AddUser(t)
	s.Login(t, alice, false, "sleep 300")
	s.Login(t, bob, false, "sleep 301")
	waitSessions(t, 1, alice.Name, "--utmp", s.Utmp)
	waitSessions(t, 1, bob.Name, "--utmp", s.Utmp)

	cmd := exec.Command(bin, "list", "--json", "--utmp", s.Utmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(bob.UID), Gid: uint32(bob.GID)}}
	cmd.Dir = "/"
	r := runCmd(t, cmd)
	if r.code != 0 {
		t.Fatalf("list as %s: exit %d: %s", bob.Name, r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `"sleep 301"`) || !strings.Contains(r.stdout, `"sleep 300"`) {
		t.Errorf("list as a normal user misses sessions: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "needs root") {
		t.Errorf("list as a normal user does not say what it could not see: %q", r.stderr)
	}
}
