package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

type msgResult struct {
	ID     string `json:"id"`
	User   string `json:"user"`
	TTY    string `json:"tty"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

func msgJSON(t testing.TB, stdin string, args ...string) ([]msgResult, result) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"msg", "--json"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	r := runCmd(t, cmd)
	var out []msgResult
	if r.stdout != "" {
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("msg --json: %v: %s", err, r.stdout)
		}
	}
	return out, r
}

// barrier writes marker straight to the terminal tty (as root: past mesg
// n) and waits until the client c shows it; it returns what c received
// before it. Terminal output arrives in order, so whatever was written to
// tty before the barrier has arrived by then: "nothing arrived" is
// checked without a sleep.
func barrier(t testing.TB, c *sshdtest.Session, tty, marker string) []byte {
	t.Helper()
	f, err := os.OpenFile("/dev/"+tty, os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(marker + "\r\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !c.WaitFor(marker, 60*time.Second) {
		t.Fatalf("the barrier %q never reached %s: %q", marker, tty, c.Out.Bytes())
	}
	out := c.Out.Bytes()
	return out[:bytes.Index(out, []byte(marker))]
}

// waitStopped waits until the terminal's output is stopped (Ctrl-S): a
// pty that is stopped accepts no write, so a non-blocking write of a
// probe byte fails with EAGAIN. The probes written before are NULs,
// which a terminal shows as nothing.
func waitStopped(t testing.TB, tty string) {
	t.Helper()
	fd, err := syscall.Open("/dev/"+tty, syscall.O_WRONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if !sshdtest.Poll(60*time.Second, func() bool {
		_, err := syscall.Write(fd, []byte{0})
		return err == syscall.EAGAIN
	}) {
		t.Fatalf("Ctrl-S did not stop %s", tty)
	}
}

// ttyOf returns the terminal of the user's session whose command is cmd.
func ttyOf(t testing.TB, s *sshdtest.Server, user, cmd string) string {
	t.Helper()
	var tty string
	if !sshdtest.Poll(60*time.Second, func() bool {
		for _, x := range ofUser(listJSON(t, "--utmp", s.Utmp), user) {
			if x.TTY != "" && x.Command == cmd {
				tty = x.TTY
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no terminal session of %s running %q", user, cmd)
	}
	return tty
}

// hostile is every kind of byte that must never reach a terminal raw.
const hostile = "OSC\x1b]0;pwned\x07 clip\x1b]52;c;QUJD\x07 clear\x1b[2J\x1b[H query\x1b[c\x1b[6n enq\x05 " +
	"c1\x9b2J\x9d0;x\x9c utf8c1\xc2\x9b bidi\u202e zw\u200b bad\xff\xfe trunc\xe2\x82 nul\x00 del\x7f cr\rPassword: end"

// checkClean asserts no control byte but CR LF, no C1, bidi or zero-width
// rune reached the client's terminal.
func checkClean(t testing.TB, got []byte) {
	t.Helper()
	for i := 0; i < len(got); i++ {
		c := got[i]
		if c == '\r' || c == '\n' {
			continue
		}
		if c < 0x20 || c == 0x7f {
			t.Errorf("control byte %#x reached the terminal at %d: %q", c, i, got)
			return
		}
	}
	for _, bad := range []string{"\xc2\x9b", "\u202e", "\u200b", "\x9b", "\x9d"} {
		if bytes.Contains(got, []byte(bad)) {
			t.Errorf("%q reached the terminal: %q", bad, got)
		}
	}
	if bytes.Contains(got, []byte("\rPassword")) {
		t.Errorf("a bare CR reached the terminal: %q", got)
	}
}

// TestMsgDeliveryAndSafety: the message reaches the targeted terminal only,
// hostile bytes never arrive, mesg n is honoured unless --force, --all
// reaches everyone, and a stopped terminal delays nobody.
func TestMsgDeliveryAndSafety(t *testing.T) {
	s := sshdtest.Start(t)
	alice, bob := s.AddUser(t), s.AddUser(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	a1 := s.Login(t, alice, true, "sleep 601")
	a2 := s.Login(t, alice, true, "sleep 602")
	b1 := s.Login(t, bob, true, "mesg n; exec sleep 603")
	b2 := s.Login(t, bob, false, "sleep 604")
	t1 := ttyOf(t, s, alice.Name, "sleep 601")
	t2 := ttyOf(t, s, alice.Name, "sleep 602")
	tb := ttyOf(t, s, bob.Name, "sleep 603")
	common := []string{"--utmp", s.Utmp, "--audit-log", audit}

	// One terminal, hostile text on the command line.
	res, r := msgJSON(t, "", append(common, t1, "--message", "hello from the admin "+strings.ReplaceAll(hostile, "\x00", ""))...)
	if r.code != 0 || len(res) != 1 || res[0].Status != "delivered" {
		t.Fatalf("msg %s: exit %d %+v %s", t1, r.code, res, r.stderr)
	}
	if !a1.WaitFor("end", 5*time.Second) {
		t.Fatalf("the message did not arrive: %q", a1.Out.Bytes())
	}
	got := a1.Out.Bytes()
	if !bytes.Contains(got, []byte("Message from the administrator")) || !bytes.Contains(got, []byte("hello from the admin")) || !bytes.Contains(got, []byte("OSC^[]0;pwned")) {
		t.Errorf("message as received: %q", got)
	}
	checkClean(t, got)
	// b2 has no terminal: nothing can be written to it but through its
	// own processes.
	if before, before2 := barrier(t, a2, t2, "barrier-1"), barrier(t, b1, tb, "barrier-1"); len(before) != 0 || len(before2) != 0 || len(b2.Out.Bytes()) != 0 {
		t.Errorf("other sessions received output: %q %q %q", before, before2, b2.Out.Bytes())
	}

	// The same text on standard input is sanitized the same way.
	res, r = msgJSON(t, "from stdin "+hostile, append(common, "--user", alice.Name)...)
	// alice has two terminal sessions: both get it.
	if r.code != 0 || len(res) != 2 {
		t.Fatalf("msg --user alice: exit %d %+v", r.code, res)
	}
	if !a2.WaitFor("from stdin", 5*time.Second) {
		t.Fatalf("stdin message did not arrive: %q", a2.Out.Bytes())
	}
	a2.WaitFor("end", 2*time.Second)
	checkClean(t, a2.Out.Bytes())

	// mesg n: refused, then delivered with --force.
	res, r = msgJSON(t, "", append(common, tb, "-m", "are you there")...)
	if r.code != 1 || len(res) != 1 || res[0].Status != "refused" {
		t.Errorf("msg to mesg n: exit %d %+v", r.code, res)
	}
	if bytes.Contains(barrier(t, b1, tb, "barrier-2"), []byte("are you there")) {
		t.Errorf("mesg n was not honoured")
	}
	res, r = msgJSON(t, "", append(common, tb, "-m", "are you there", "--force")...)
	if r.code != 0 || res[0].Status != "delivered" || !b1.WaitFor("are you there", 5*time.Second) {
		t.Errorf("msg --force to mesg n: exit %d %+v %q", r.code, res, b1.Out.Bytes())
	}

	// A session without a terminal, named by user: said so.
	res, r = msgJSON(t, "", append(common, bob.Name, "-m", "x", "--force")...)
	noTTY := 0
	for _, x := range res {
		if x.Status == "no-terminal" {
			noTTY++
		}
	}
	if noTTY != 1 || r.code != 0 {
		t.Errorf("msg to bob's sessions (one delivered, one without a terminal): exit %d %+v", r.code, res)
	}
	res, r = msgJSON(t, "", append(common, "--kind", "ssh-notty", "--user", bob.Name, "-m", "x")...)
	if len(res) != 1 || res[0].Status != "no-terminal" || r.code != 1 {
		t.Errorf("msg to a session without a terminal only: exit %d %+v", r.code, res)
	}

	// Stop alice's first terminal's output (Ctrl-S): --all still reaches
	// everyone else, and the stopped one times out instead of hanging.
	a1.Stdin.Write([]byte{0x13})
	waitStopped(t, t1)
	res, r = msgJSON(t, "", append(common, "--all", "--force", "--timeout", "1s", "-m", "to everyone")...)
	status := map[string]string{}
	for _, x := range res {
		status[x.TTY] = x.Status
	}
	if status[t1] != "timed-out" || r.code != 1 {
		t.Errorf("stopped terminal: exit %d %+v", r.code, res)
	}
	for _, c := range []*sshdtest.Session{a2, b1} {
		if !c.WaitFor("to everyone", 5*time.Second) {
			t.Errorf("--all did not reach a session: %q", c.Out.Bytes())
		}
	}
	if bytes.Contains(b2.Out.Bytes(), []byte("to everyone")) {
		t.Errorf("--all wrote to a session without a terminal")
	}
	a1.Stdin.Write([]byte{0x11})

	evs := auditEvents(t, audit)
	if countEvents(evs, "msg") < 8 {
		t.Errorf("audit: %d msg records", countEvents(evs, "msg"))
	}
}

// TestKickWithWarning: warn, wait, then end; reminders; a session that
// ends by itself during the delay; Ctrl-C cancels and tells the user.
func TestKickWithWarning(t *testing.T) {
	s := sshdtest.Start(t)
	alice := s.AddUser(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	a := s.Login(t, alice, true, "sleep 611")
	quick := s.Login(t, alice, true, "sleep 6")
	notty := s.Login(t, alice, false, "sleep 613")
	ttyOf(t, s, alice.Name, "sleep 611")
	tq := ttyOf(t, s, alice.Name, "sleep 6")

	start := time.Now()
	r := run(t, "kick", "--utmp", s.Utmp, "--audit-log", audit, alice.Name, "--message", "maintenance\x1b[2J: save your work", "--delay", "12s")
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("kick --message --delay: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if took < 12*time.Second {
		t.Errorf("the kick did not wait the delay: %v", took)
	}
	got := a.Out.Bytes()
	for _, want := range []string{"Message from the administrator", "maintenance^[[2J: save your work", "will be ended by the administrator in 12 seconds", "Reminder: this session will be ended by the administrator in 10 seconds"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("the user's terminal lacks %q: %q", want, got)
		}
	}
	checkClean(t, got)
	if !a.Ended(5*time.Second) || !notty.Ended(5*time.Second) {
		t.Errorf("sessions not ended after the delay")
	}
	if !strings.Contains(r.stderr, tq+" ended by itself during the delay") {
		t.Errorf("the session that ended by itself is not reported: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, "no-terminal") {
		t.Errorf("the session without a terminal is not reported as such: %s", r.stderr)
	}
	_ = quick

	// Ctrl-C during the delay: nothing is kicked, the user is told.
	b := s.Login(t, alice, true, "sleep 614")
	tb := ttyOf(t, s, alice.Name, "sleep 614")
	cmd := exec.Command(bin, "kick", "--utmp", s.Utmp, "--audit-log", audit, tb, "-m", "going down", "--delay", "60s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !b.WaitFor("going down", 10*time.Second) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no warning arrived: %q", b.Out.Bytes())
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "cancelled") {
		t.Errorf("Ctrl-C during the delay: %v %s", err, stderr.String())
	}
	if !b.WaitFor("cancelled the end of this session", 5*time.Second) {
		t.Errorf("the user was not told of the cancel: %q", b.Out.Bytes())
	}
	if b.Ended(time.Second) {
		t.Errorf("a cancelled kick ended the session")
	}
	evs := auditEvents(t, audit)
	if countEvents(evs, "cancel") != 1 || countEvents(evs, "kick") < 2 || countEvents(evs, "ended-during-delay") != 1 {
		t.Errorf("audit: cancel %d kick %d ended-during-delay %d", countEvents(evs, "cancel"), countEvents(evs, "kick"), countEvents(evs, "ended-during-delay"))
	}
}
