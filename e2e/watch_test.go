package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

// startWatch runs `sshkick watch` in the background until the test ends.
func startWatch(t *testing.T, args ...string) (*exec.Cmd, *sshdtest.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"watch"}, args...)...)
	logs := &sshdtest.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("watch did not stop cleanly on SIGTERM: %v\n%s", err, logs)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("watch did not stop on SIGTERM\n%s", logs)
		}
	})
	return cmd, logs
}

func waitUntil(d time.Duration, f func() bool) bool { return sshdtest.Poll(d, f) }

func ttyTimes(t *testing.T, tty string) (atime, mtime time.Time) {
	var st syscall.Stat_t
	if err := syscall.Stat("/dev/"+tty, &st); err != nil {
		t.Fatal(err)
	}
	return time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix())
}

// TestWatchIdlePolicy: with idle 20s and a warning 10s before, an idle
// session is warned (the warning moves the tty's mtime, not its atime) and
// then kicked; a session that gets input after the warning is told
// "idle logout cancelled" once and spared; a session without a terminal is
// never idle-kicked; an exempt group's session is spared; a dry-run daemon
// kicks nothing; `simulate` and `why` say what then happens.
func TestWatchIdlePolicy(t *testing.T) {
	s := sshdtest.Start(t)
	idle, typist, notty, exempt, dry := s.AddUser(t), s.AddUser(t), s.AddUser(t), s.AddUser(t), s.AddUser(t)
	group := "sktg" + exempt.Name[3:]
	if out, err := exec.Command("/usr/sbin/groupadd", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("/usr/sbin/groupdel", group).Run() })
	if out, err := exec.Command("/usr/sbin/usermod", "-aG", group, exempt.Name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v %s", err, out)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "policy.toml")
	os.WriteFile(cfg, []byte(`interval = "2s"
warn = ["10s"]

[[rule]]
name = "staff"
groups = ["`+group+`"]
exempt = true

[[rule]]
name = "e2e"
users = ["`+idle.Name+`", "`+typist.Name+`", "`+notty.Name+`", "`+exempt.Name+`"]
idle = "20s"
`), 0o644)
	dryCfg := filepath.Join(dir, "dry.toml")
	os.WriteFile(dryCfg, []byte(`interval = "2s"
warn = ["10s"]
[[rule]]
name = "dry"
users = ["`+dry.Name+`"]
idle = "20s"
`), 0o644)
	audit := filepath.Join(dir, "audit.jsonl")

	a := s.Login(t, idle, true, "sleep 600")
	b := s.Login(t, typist, true, "cat")
	c := s.Login(t, notty, false, "sleep 600")
	e := s.Login(t, exempt, true, "sleep 600")
	d := s.Login(t, dry, true, "sleep 600")
	ttyA := ttyOf(t, s, idle.Name, "sleep 600")
	ttyOf(t, s, typist.Name, "cat")
	ttyOf(t, s, exempt.Name, "sleep 600")
	ttyOf(t, s, dry.Name, "sleep 600")
	waitSessions(t, 1, notty.Name, "--utmp", s.Utmp)

	// simulate, before the daemon starts: the idle session is warned, then kicked.
	sim := run(t, "policy", "simulate", cfg, "--for", "2m", "--utmp", s.Utmp, "--state", filepath.Join(dir, "state.json"))
	if sim.code != 0 || !strings.Contains(sim.stdout, "warn "+idle.Name+" "+ttyA) || !strings.Contains(sim.stdout, "kick "+idle.Name+" "+ttyA) ||
		strings.Contains(sim.stdout, notty.Name) || strings.Contains(sim.stdout, "kick "+exempt.Name) || !strings.Contains(sim.stdout, "exempt "+exempt.Name) {
		t.Errorf("simulate: exit %d\n%s%s", sim.code, sim.stdout, sim.stderr)
	}
	why := run(t, "why", ttyA, "--config", cfg, "--utmp", s.Utmp, "--state", filepath.Join(dir, "state.json"))
	if why.code != 0 || !strings.Contains(why.stdout, "rule e2e (line") || !strings.Contains(why.stdout, "rule staff (line 4): no: groups") || !strings.Contains(why.stdout, "kick") {
		t.Errorf("why: exit %d\n%s%s", why.code, why.stdout, why.stderr)
	}
	atime0, _ := ttyTimes(t, ttyA)

	_, logs := startWatch(t, "--config", cfg, "--utmp", s.Utmp, "--state", filepath.Join(dir, "state.json"), "--audit-log", audit)
	_, dryLogs := startWatch(t, "--dry-run", "--config", dryCfg, "--utmp", s.Utmp, "--state", filepath.Join(dir, "dry.json"), "--audit-log", audit)

	if !a.WaitFor("Idle for", 60*time.Second) {
		t.Fatalf("the idle session was not warned: %q\n%s", a.Out.Bytes(), logs)
	}
	checkClean(t, a.Out.Bytes())
	atime1, mtime1 := ttyTimes(t, ttyA)
	if !atime1.Equal(atime0) {
		t.Errorf("the warning moved the tty's atime: %v -> %v", atime0, atime1)
	}
	if mtime1.Before(atime0) {
		t.Errorf("the warning did not move the tty's mtime: %v (atime %v)", mtime1, atime0)
	}

	// The typist answers the warning.
	if !b.WaitFor("Idle for", 60*time.Second) {
		t.Fatalf("the typist was not warned: %q\n%s", b.Out.Bytes(), logs)
	}
	b.Stdin.Write([]byte("here\n"))
	if !b.WaitFor("Idle logout cancelled", 30*time.Second) {
		t.Fatalf("no cancellation: %q\n%s", b.Out.Bytes(), logs)
	}

	if !a.Ended(60 * time.Second) {
		t.Fatalf("the idle session was not kicked\n%s", logs)
	}
	if n := bytes.Count(b.Out.Bytes(), []byte("Idle logout cancelled")); n != 1 {
		t.Errorf("cancellation told %d times: %q", n, b.Out.Bytes())
	}
	if b.Ended(0) || c.Ended(0) || e.Ended(0) || d.Ended(0) {
		t.Errorf("a spared session ended: typist %v notty %v exempt %v dry %v\n%s", b.Ended(0), c.Ended(0), e.Ended(0), d.Ended(0), logs)
	}
	if bytes.Contains(e.Out.Bytes(), []byte("Idle")) || bytes.Contains(c.Out.Bytes(), []byte("Idle")) {
		t.Errorf("a spared session was warned: %q %q", e.Out.Bytes(), c.Out.Bytes())
	}
	// The dry run decided to kick, and did not.
	if !waitUntil(60*time.Second, func() bool { return strings.Contains(dryLogs.String(), "outcome=would-kick") }) {
		t.Errorf("the dry run never decided a kick:\n%s", dryLogs)
	}
	if d.Ended(0) || bytes.Contains(d.Out.Bytes(), []byte("Idle")) {
		t.Errorf("the dry run acted: ended %v, output %q", d.Ended(0), d.Out.Bytes())
	}
	var auditText []byte
	waitUntil(30*time.Second, func() bool {
		auditText, _ = os.ReadFile(audit)
		return bytes.Contains(auditText, []byte(`"event":"watch-kick"`))
	})
	for _, want := range []string{`"event":"watch-warn"`, `"event":"watch-kick"`, `"event":"watch-cancel"`, `"event":"watch-exempt"`, `"rule":"e2e"`, `"rule":"staff"`, `"outcome":"would-kick"`} {
		if !bytes.Contains(auditText, []byte(want)) {
			t.Errorf("audit trail lacks %s:\n%s", want, auditText)
		}
	}
}

// TestWatchReloadKeepsPolicy: SIGHUP with a broken file keeps the old
// policy and logs FILE:LINE:COL; `policy check` reports line and column.
func TestWatchReloadKeepsPolicy(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "policy.toml")
	os.WriteFile(cfg, []byte("interval = \"1s\"\n[[rule]]\nname = \"nobody\"\nusers = [\"sktnobody\"]\nidle = \"1h\"\n"), 0o644)
	cmd, logs := startWatch(t, "--dry-run", "--config", cfg, "--state", "-", "--audit-log", filepath.Join(dir, "a.jsonl"))
	if !waitUntil(60*time.Second, func() bool { return strings.Contains(logs.String(), "msg=watching") }) {
		t.Fatalf("watch did not start:\n%s", logs)
	}
	os.WriteFile(cfg, []byte("interval = \"1s\"\n[[rule]]\nname = \"nobody\"\nidle = \"1hour\"\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	if !waitUntil(60*time.Second, func() bool { return strings.Contains(logs.String(), "policy.toml:4:8:") }) {
		t.Fatalf("no FILE:LINE:COL after SIGHUP:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "keeping the policy in force") || cmd.ProcessState != nil {
		t.Fatalf("the daemon did not keep running:\n%s", logs)
	}
	r := run(t, "policy", "check", cfg)
	if r.code != 1 || !strings.Contains(r.stderr, cfg+":4:8: idle: bad duration") {
		t.Fatalf("policy check: exit %d %s", r.code, r.stderr)
	}
	os.WriteFile(cfg, []byte("[[rule]]\nname = \"ok\"\nidle = \"1h\"\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	if !waitUntil(60*time.Second, func() bool { return strings.Contains(logs.String(), "msg=reloaded") }) {
		t.Fatalf("a valid file was not loaded:\n%s", logs)
	}
}

// TestWatchBusyHitsMaxSession: a session whose processes keep a CPU busy
// is not idle (busy_cpu) yet max_session still ends it, after its warning.
func TestWatchBusyHitsMaxSession(t *testing.T) {
	s := sshdtest.Start(t)
	busy := s.AddUser(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "policy.toml")
	os.WriteFile(cfg, []byte(`interval = "2s"
busy_cpu = "5%"
warn = ["10s"]
[[rule]]
name = "busy"
users = ["`+busy.Name+`"]
idle = "20s"
max_session = "45s"
`), 0o644)
	audit := filepath.Join(dir, "audit.jsonl")
	start := time.Now()
	sess := s.Login(t, busy, true, "exec nice -n 19 sh -c 'while :; do :; done'")
	waitSessions(t, 1, busy.Name, "--utmp", s.Utmp)
	_, logs := startWatch(t, "--config", cfg, "--utmp", s.Utmp, "--state", filepath.Join(dir, "state.json"), "--audit-log", audit)
	if !sess.WaitFor("time limit", 90*time.Second) {
		t.Fatalf("no max_session warning: %q\n%s", sess.Out.Bytes(), logs)
	}
	if !sess.Ended(60 * time.Second) {
		t.Fatalf("the busy session was not ended at max_session\n%s", logs)
	}
	// Idle alone (20s) would have ended it long before 45s.
	if took := time.Since(start); took < 30*time.Second {
		t.Errorf("ended after %v: the busy session was treated as idle\n%s", took, logs)
	}
	if strings.Contains(logs.String(), "reason=idle") {
		t.Errorf("an idle decision about a busy session:\n%s", logs)
	}
	var b []byte
	if !waitUntil(30*time.Second, func() bool {
		b, _ = os.ReadFile(audit)
		return bytes.Contains(b, []byte(`"event":"watch-kick"`)) && bytes.Contains(b, []byte(`"outcome":"ended"`))
	}) || !bytes.Contains(b, []byte(`"reason":"max_session"`)) {
		t.Errorf("audit trail: %s", b)
	}
}

// TestWatchWakesOnLogin: with an interval of an hour, a login after the
// daemon's first look is still seen (its utmp record wakes the daemon) and
// ended at its max_session.
func TestWatchWakesOnLogin(t *testing.T) {
	s := sshdtest.Start(t)
	u := s.AddUser(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "policy.toml")
	os.WriteFile(cfg, []byte(`interval = "1h"
[[rule]]
name = "short"
users = ["`+u.Name+`"]
max_session = "10s"
warn = []
`), 0o644)
	audit := filepath.Join(dir, "audit.jsonl")
	_, logs := startWatch(t, "--config", cfg, "--utmp", s.Utmp, "--state", filepath.Join(dir, "state.json"), "--audit-log", audit,
		"--metrics", "127.0.0.1:0")
	var metrics string
	if !waitUntil(60*time.Second, func() bool {
		_, after, ok := strings.Cut(logs.String(), "metrics on ")
		metrics, _, _ = strings.Cut(after, "\n")
		return ok && strings.Contains(after, "\n")
	}) {
		t.Fatalf("no metrics address:\n%s", logs)
	}
	// The first look (no session yet) is over before the login.
	if !waitUntil(60*time.Second, func() bool {
		resp, err := http.Get(strings.TrimSpace(metrics))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "sshkick_watch_evaluation_seconds_count 1")
	}) {
		t.Fatalf("no first look:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "woken by changes") || !strings.Contains(logs.String(), s.Utmp) {
		t.Errorf("utmp %s not watched:\n%s", s.Utmp, logs)
	}
	sess := s.Login(t, u, true, "exec sleep 3600")
	if !sess.Ended(120 * time.Second) {
		t.Fatalf("a login after the first look was not ended at max_session\n%s", logs)
	}
	var b []byte
	if !waitUntil(30*time.Second, func() bool {
		b, _ = os.ReadFile(audit)
		return bytes.Contains(b, []byte(`"event":"watch-kick"`))
	}) || !bytes.Contains(b, []byte(`"reason":"max_session"`)) {
		t.Errorf("audit trail: %s", b)
	}
}
