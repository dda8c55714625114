package termmsg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/sanitize"
)

func TestValidTTY(t *testing.T) {
	good := []string{"pts/0", "pts/3", "pts/10", "pts/4095", "pts/1048575", "tty1", "tty2", "tty9", "tty12", "tty63"}
	bad := []string{
		"", "pts", "pts/", "pts/-1", "pts/+1", "pts/01", "pts/00", "pts/1a", "pts/ 1", "pts/1 ", " pts/1",
		"pts/1/", "pts/1/../../etc/shadow", "pts/..", "pts/1048576", "pts/99999999", "pts//1", "/dev/pts/1",
		"../etc/shadow", "..", ".", "/", "/etc/shadow", "tty", "tty0", "tty64", "tty01", "tty100", "ttyS0",
		"ttyUSB0", "tty1/", "tty/1", "ttyp0", "console", "null", "watchdog", ":0", ":0.0", "ptmx", "pts/ptmx",
		"tty\x001", "pts/1\x00", "pts/\u0661", "PTS/1", "TTY1", "vc/1", "tty1\n",
	}
	for _, s := range good {
		if !ValidTTY(s) {
			t.Errorf("ValidTTY(%q) = false, want true", s)
		}
	}
	for _, s := range bad {
		if ValidTTY(s) {
			t.Errorf("ValidTTY(%q) = true, want false", s)
		}
	}
}

func TestIsTTYDevice(t *testing.T) {
	cases := []struct {
		name         string
		major, minor uint32
		want         bool
	}{
		{"pts/3", 136, 3, true},
		{"pts/300", 136, 300, true},
		{"pts/3", 143, 3, true},
		{"pts/3", 135, 3, false},
		{"pts/3", 144, 3, false},
		{"pts/3", 5, 2, false}, // ptmx
		{"pts/3", 1, 3, false}, // null
		{"pts/3", 4, 3, false}, // a VT is not a pts
		{"tty2", 4, 2, true},
		{"tty2", 4, 3, false}, // another VT than the name says
		{"tty2", 4, 0, false},
		{"tty2", 4, 64, false}, // ttyS0
		{"tty2", 136, 2, false},
		{"tty2", 5, 0, false}, // /dev/tty
		{"tty2", 5, 1, false}, // /dev/console
	}
	for _, c := range cases {
		if got := isTTYDevice(c.name, c.major, c.minor); got != c.want {
			t.Errorf("isTTYDevice(%q, %d, %d) = %v, want %v", c.name, c.major, c.minor, got, c.want)
		}
	}
}

func TestBanner(t *testing.T) {
	at := time.Date(2025, 3, 1, 15, 4, 5, 0, time.FixedZone("CET", 3600))
	if got, want := Banner("root", "web1", at), "Message from the administrator (root@web1) at 14:04 UTC:"; got != want {
		t.Errorf("Banner = %q, want %q", got, want)
	}
	if got, want := Banner("root", "", at), "Message from the administrator (root) at 14:04 UTC:"; got != want {
		t.Errorf("Banner = %q, want %q", got, want)
	}
	got := Banner("ro\x1b]0;x\x07ot", "h\u202eost\r\n", at)
	if want := `Message from the administrator (ro\x1b]0;x\x07ot@h\u202eost\r\n) at 14:04 UTC:`; got != want {
		t.Errorf("Banner = %q, want %q", got, want)
	}
}

// msgFor builds a message the way callers must: banner + body through
// sanitize.Message.
func msgFor(body string) []byte {
	text := Banner("root", "testhost", time.Now()) + "\n" + body
	return sanitize.Message([]byte(text), 0, 0)
}

func TestSendDelivered(t *testing.T) {
	requireRoot(t)
	a, b := newPTY(t), newPTY(t)
	msg := msgFor("The system goes down in 5 minutes.\nSave your work.")
	res := Send(context.Background(), []Target{a.target(), b.target()}, msg, Options{})
	if len(res) != 2 {
		t.Fatalf("%d results", len(res))
	}
	for i, p := range []*testPTY{a, b} {
		r := res[i]
		if r.Status != Delivered || r.Err != nil || r.Bytes != len(msg) || r.Target != p.target() {
			t.Errorf("result %d = %+v", i, r)
		}
		p.expect(msg)
	}
}

// With the default termios (OPOST|ONLCR) the terminal itself turns our
// "\r\n" into "\r\r\n" — harmless, and what wall produces too.
func TestSendCookedTerminal(t *testing.T) {
	requireRoot(t)
	p := newPTY(t)
	tio := p.termios()
	tio.Oflag |= unix.OPOST | unix.ONLCR
	p.setTermios(tio)
	msg := msgFor("hello")
	res := Send(context.Background(), []Target{p.target()}, msg, Options{})
	if res[0].Status != Delivered {
		t.Fatalf("%+v", res[0])
	}
	p.expect(bytes.ReplaceAll(msg, []byte("\n"), []byte("\r\n")))
}

// Hostile payloads end to end: what arrives on the master is the sanitized
// text and contains no control besides CR LF, no C1, no Cf.
func TestSendHostileEndToEnd(t *testing.T) {
	requireRoot(t)
	payloads := []string{
		"\x1b]0;pwn\x07", "\x1b]52;c;QUJD\x07", "\x1b[2J\x1b[H", "\x1b[c", "\x1b[6n", "\x1bP$qm\x1b\\", "\x05",
		"\x9b2J", "\x9d0;x\x9c", "\xc2\x9b", "\u202e", "\u200b", "\xff\xfe", "\xe2\x82", "\x00", "\x7f",
		"Password:\rroot", "ab\b\b\b", strings.Repeat("x", 100000),
	}
	p := newPTY(t)
	for _, pl := range payloads {
		msg := msgFor("warning " + pl + " end")
		res := Send(context.Background(), []Target{p.target()}, msg, Options{})
		if res[0].Status != Delivered {
			t.Fatalf("%q: %+v", pl, res[0])
		}
		got := p.read(len(msg), 5*time.Second)
		if !bytes.Equal(got, msg) {
			t.Fatalf("%q: received %q, want %q", pl, trunc(got), trunc(msg))
		}
		if !utf8.Valid(got) {
			t.Errorf("%q: invalid UTF-8 arrived", pl)
		}
		for i, c := range got {
			if (c < 0x20 && c != '\r' && c != '\n') || c == 0x7f ||
				(c == '\r' && (i+1 == len(got) || got[i+1] != '\n')) {
				t.Errorf("%q: control byte %#x arrived at %d", pl, c, i)
			}
		}
		for _, r := range string(got) {
			if (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) {
				t.Errorf("%q: rune %U arrived", pl, r)
			}
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(got), "\r\n"), "\r\n") {
			if utf8.RuneCountInString(line) > sanitize.DefaultWidth {
				t.Errorf("%q: line too long: %q", pl, line)
			}
		}
	}
}

func TestSendMesg(t *testing.T) {
	requireRoot(t)
	msg := msgFor("mesg test")
	gid, haveTTYGroup := ttyGroup()

	t.Run("mesg n refused", func(t *testing.T) {
		p := newPTY(t)
		p.chmod(0o600)
		res := Send(context.Background(), []Target{p.target()}, msg, Options{})
		if res[0].Status != Refused || !errors.Is(res[0].Err, ErrMessagesOff) || res[0].Bytes != 0 {
			t.Errorf("%+v", res[0])
		}
		p.expectNothing()
	})
	t.Run("mesg n forced", func(t *testing.T) {
		p := newPTY(t)
		p.chmod(0o600)
		res := Send(context.Background(), []Target{p.target()}, msg, Options{Force: true})
		if res[0].Status != Delivered || res[0].Err != nil {
			t.Errorf("%+v", res[0])
		}
		p.expect(msg)
	})
	t.Run("group not tty refused", func(t *testing.T) {
		if !haveTTYGroup {
			t.Skip("no tty group on this system: mesg is judged by the mode bit only")
		}
		p := newPTY(t)
		p.chown(testUID, int(gid)+1000)
		p.chmod(0o620)
		res := Send(context.Background(), []Target{p.target()}, msg, Options{})
		if res[0].Status != Refused || !errors.Is(res[0].Err, ErrMessagesOff) {
			t.Errorf("%+v", res[0])
		}
		p.expectNothing()
		res = Send(context.Background(), []Target{p.target()}, msg, Options{Force: true})
		if res[0].Status != Delivered {
			t.Errorf("forced: %+v", res[0])
		}
		p.expect(msg)
	})
	t.Run("mesg y delivered", func(t *testing.T) {
		p := newPTY(t) // 0620, group tty
		res := Send(context.Background(), []Target{p.target()}, msg, Options{})
		if res[0].Status != Delivered {
			t.Errorf("%+v", res[0])
		}
		p.expect(msg)
	})
}

func TestSendStoppedTerminal(t *testing.T) {
	requireRoot(t)
	for _, how := range []string{"tcflow TCOOFF", "Ctrl-S with IXON"} {
		t.Run(how, func(t *testing.T) {
			stopped, ok := newPTY(t), newPTY(t)
			if how == "tcflow TCOOFF" {
				stopped.stopOutput()
			} else {
				stopped.stopWithCtrlS()
			}
			msg := msgFor("you have been idle too long")
			const timeout = 300 * time.Millisecond
			// A hang fails the test by its timeout; how long the
			// deadline takes is a benchmark's business.
			res := Send(context.Background(), []Target{stopped.target(), ok.target()}, msg, Options{Timeout: timeout})
			if r := res[0]; r.Status != TimedOut || !errors.Is(r.Err, ErrTimeout) || r.Bytes >= len(msg) {
				t.Errorf("stopped terminal: %+v", r)
			}
			if r := res[1]; r.Status != Delivered {
				t.Errorf("other terminal: %+v", r)
			}
			ok.expect(msg)
			t.Logf("stopped terminal: %v", res[0].Err)

			// Whatever was accepted before the stop is all that arrives.
			stopped.startOutput()
			if got := stopped.readFor(200 * time.Millisecond); !bytes.Equal(got, msg[:res[0].Bytes]) {
				t.Errorf("stopped terminal received %q after resuming, reported %d bytes", trunc(got), res[0].Bytes)
			}
		})
	}
}

// A pty nobody reads fills up: the write must time out as well.
func TestSendFullBuffer(t *testing.T) {
	requireRoot(t)
	p := newPTY(t)
	big := bytes.Repeat([]byte("0123456789abcdef\r\n"), 1<<16) // ~1.1 MiB, more than any pty buffer
	res := Send(context.Background(), []Target{p.target()}, big, Options{Timeout: 300 * time.Millisecond})
	if r := res[0]; r.Status != TimedOut || r.Bytes == 0 || r.Bytes >= len(big) {
		t.Errorf("%+v", r)
	}
	t.Logf("full pty buffer: %d bytes accepted before the deadline", res[0].Bytes)
}

func TestSendChecksBeforeWriting(t *testing.T) {
	requireRoot(t)
	msg := msgFor("x")
	p := newPTY(t)
	other := newPTY(t)
	cases := []struct {
		name string
		tgt  Target
		want error
	}{
		{"wrong rdev", Target{TTY: p.name, Rdev: other.rdev, UID: testUID}, ErrDeviceMismatch},
		{"wrong uid", Target{TTY: p.name, Rdev: p.rdev, UID: testUID + 1}, ErrOwnerMismatch},
		{"invalid name", Target{TTY: "../" + p.path, UID: -1}, ErrInvalidTTY},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := Send(context.Background(), []Target{c.tgt}, msg, Options{Force: true})
			if r := res[0]; r.Status != Failed || !errors.Is(r.Err, c.want) || r.Bytes != 0 {
				t.Errorf("%+v, want Failed with %v", r, c.want)
			}
			p.expectNothing()
			other.expectNothing()
		})
	}
	t.Run("unchecked rdev and uid", func(t *testing.T) {
		res := Send(context.Background(), []Target{{TTY: p.name, UID: -1}}, msg, Options{})
		if res[0].Status != Delivered {
			t.Errorf("%+v", res[0])
		}
		p.expect(msg)
	})
}

func TestSendNoTerminal(t *testing.T) {
	// Needs no root: nothing may be opened.
	res := Send(context.Background(), []Target{{TTY: "", UID: -1}, {TTY: "", Rdev: 5, UID: 0}}, []byte("x\r\n"),
		Options{DevRoot: "/nonexistent"})
	for _, r := range res {
		if r.Status != NoTerminal || !errors.Is(r.Err, ErrNoTerminal) || r.Bytes != 0 {
			t.Errorf("%+v", r)
		}
	}
	if res := Send(context.Background(), nil, []byte("x"), Options{}); len(res) != 0 {
		t.Errorf("%d results for no targets", len(res))
	}
}

// A DevRoot full of things that are named like terminals but are not.
func TestSendNotATerminal(t *testing.T) {
	requireRoot(t)
	p := newPTY(t)
	dev := t.TempDir()
	mustMkdir(t, filepath.Join(dev, "pts"))
	regular := filepath.Join(dev, "pts", "6")
	mustWrite(t, regular, nil)
	mustWrite(t, filepath.Join(dev, "tty7"), nil)
	mustSymlink(t, "/dev/null", filepath.Join(dev, "pts", "5"))
	mustSymlink(t, p.path, filepath.Join(dev, "pts", "7")) // a real, writable pty behind a symlink
	mustSymlink(t, "/dev/tty1", filepath.Join(dev, "tty1"))
	mustMkdir(t, filepath.Join(dev, "pts", "8"))
	if err := unix.Mkfifo(filepath.Join(dev, "pts", "9"), 0o666); err != nil {
		t.Fatal(err)
	}
	// A character device that is not a tty: /dev/null's numbers. (TempDir may
	// be on a nodev mount; then the open fails, which is also a failure.)
	if err := unix.Mknod(filepath.Join(dev, "pts", "10"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	names := []string{"pts/5", "pts/6", "pts/7", "pts/8", "pts/9", "pts/10", "pts/11", "tty1", "tty7"}
	var targets []Target
	for _, n := range names {
		targets = append(targets, Target{TTY: n, UID: -1})
	}
	res := Send(context.Background(), targets, msgFor("x"), Options{DevRoot: dev, Force: true})
	for i, r := range res {
		if r.Status != Failed || r.Err == nil || r.Bytes != 0 {
			t.Errorf("%s: %+v", names[i], r)
		} else {
			t.Logf("%s: %v", names[i], r.Err)
		}
	}
	if b, err := os.ReadFile(regular); err != nil || len(b) != 0 {
		t.Errorf("regular file written: %q %v", b, err)
	}
	p.expectNothing()
}

func TestSendCancelled(t *testing.T) {
	requireRoot(t)
	msg := msgFor("x")
	t.Run("before", func(t *testing.T) {
		p := newPTY(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := Send(ctx, []Target{p.target(), {TTY: ""}}, msg, Options{})
		if r := res[0]; r.Status != Failed || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("%+v", r)
		}
		if res[1].Status != NoTerminal {
			t.Errorf("%+v", res[1])
		}
		p.expectNothing()
	})
	t.Run("during a stuck write", func(t *testing.T) {
		stuck, ok := newPTY(t), newPTY(t)
		stuck.stopOutput()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(200*time.Millisecond, cancel)
		res := Send(ctx, []Target{stuck.target(), ok.target()}, msg, Options{Timeout: time.Hour})
		if r := res[0]; r.Status != Failed || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("stuck: %+v", r)
		}
		if r := res[1]; r.Status != Delivered {
			t.Errorf("other: %+v", r)
		}
		ok.expect(msg)
	})
	t.Run("context deadline", func(t *testing.T) {
		stuck := newPTY(t)
		stuck.stopOutput()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		res := Send(ctx, []Target{stuck.target()}, msg, Options{Timeout: time.Hour})
		if r := res[0]; r.Status != TimedOut || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("%+v", r)
		}
	})
}

// Many terminals, several stopped, few workers: every live terminal gets the
// message, results keep the input order, and the total time stays bounded.
func TestSendManyWithCap(t *testing.T) {
	requireRoot(t)
	const n, conc = 40, 4
	const timeout = 200 * time.Millisecond
	var ptys []*testPTY
	var targets []Target
	for i := range n {
		p := newPTY(t)
		if i%10 == 3 {
			p.stopOutput()
		}
		ptys = append(ptys, p)
		targets = append(targets, p.target())
	}
	targets = append(targets, Target{TTY: ""})
	msg := msgFor("broadcast")
	start := time.Now()
	res := Send(context.Background(), targets, msg, Options{Timeout: timeout, Concurrency: conc})
	t.Logf("Send to %d terminals, %d at once: %v", n, conc, time.Since(start))
	if len(res) != len(targets) {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if r.Target != targets[i] {
			t.Errorf("result %d is for %+v, want %+v", i, r.Target, targets[i])
		}
		want := Delivered
		switch {
		case i == n:
			want = NoTerminal
		case i%10 == 3:
			want = TimedOut
		}
		if r.Status != want {
			t.Errorf("result %d: %+v, want %s", i, r, want)
		}
	}
	for i, p := range ptys {
		if i%10 != 3 {
			p.expect(msg)
		}
	}
}

// Writing must never give the writer a controlling terminal.
func TestNoControllingTTY(t *testing.T) {
	requireRoot(t)
	before := ttyNR(t)
	p := newPTY(t)
	res := Send(context.Background(), []Target{p.target()}, msgFor("x"), Options{})
	if res[0].Status != Delivered {
		t.Fatalf("%+v", res[0])
	}
	if after := ttyNR(t); after != before {
		t.Errorf("tty_nr changed from %d to %d", before, after)
	}

	// The test process is normally not a session leader, so the check above
	// cannot catch an O_RDWR open. Re-run in a new session with no
	// controlling tty (like a daemon), where an open without O_NOCTTY would
	// acquire one; the child also shows that an O_RDWR open is detected.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSessionLeader$", "-test.v")
	cmd.Env = append(os.Environ(), "SSHKICK_TERMMSG_HELPER=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "HELPER OK") {
		t.Fatalf("helper did not finish:\n%s", out)
	}
	t.Logf("helper:\n%s", out)
}

// TestHelperSessionLeader runs only as TestNoControllingTTY's child.
func TestHelperSessionLeader(t *testing.T) {
	if os.Getenv("SSHKICK_TERMMSG_HELPER") != "1" {
		return // not a test by itself
	}
	if sid, _ := unix.Getsid(0); sid != os.Getpid() {
		t.Fatalf("not a session leader: sid %d pid %d", sid, os.Getpid())
	}
	if n := ttyNR(t); n != 0 {
		t.Fatalf("already has a controlling tty: %d", n)
	}
	p := newPTY(t)
	res := Send(context.Background(), []Target{p.target()}, msgFor("x"), Options{Force: true})
	if res[0].Status != Delivered {
		t.Fatalf("%+v", res[0])
	}
	if n := ttyNR(t); n != 0 {
		t.Fatalf("Send acquired a controlling tty: tty_nr %d", n)
	}
	fmt.Println("after Send: tty_nr 0")
	// Control: the mistake the check exists for. Acquiring the pty as
	// controlling tty means closing its master at cleanup hangs up this
	// session: ignore the SIGHUP.
	signal.Ignore(syscall.SIGHUP)
	fd, err := unix.Open(p.path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	n := ttyNR(t)
	if n == 0 {
		t.Fatal("control failed: O_RDWR without O_NOCTTY did not set tty_nr, so the check proves nothing")
	}
	if uint64(n) != p.rdev {
		t.Errorf("tty_nr %d, want the pty's rdev %d", n, p.rdev)
	}
	fmt.Printf("control: O_RDWR without O_NOCTTY set tty_nr to %d\nHELPER OK\n", n)
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o666); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}
