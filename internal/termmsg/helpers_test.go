package termmsg

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// testUID owns the test ptys, like a logged-in user would.
const testUID = 4711

// requireRoot skips a test that needs root, unless SSHKICK_E2E=require.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SSHKICK_E2E") == "require" {
		t.Fatal("this test needs root (SSHKICK_E2E=require)")
	}
	t.Skip("needs root (set SSHKICK_E2E=require to make this a failure)")
}

// testPTY is a real pty: the test reads the master to see what the "user"
// got; Send writes to the slave through its /dev path.
type testPTY struct {
	t      *testing.T
	master *os.File
	slave  *os.File // kept open so the master never sees a hangup
	path   string   // /dev/pts/N
	name   string   // pts/N
	rdev   uint64
}

// newPTY opens a pty owned by testUID, group tty (if any), mode 0620
// (`mesg y`), with output post-processing off so that the master receives
// exactly the bytes written to the slave.
func newPTY(t *testing.T) *testPTY {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatalf("pty.Open: %v", err)
	}
	p := &testPTY{t: t, master: master, slave: slave, path: slave.Name()}
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	p.name = strings.TrimPrefix(p.path, "/dev/")
	if !strings.HasPrefix(p.name, "pts/") {
		t.Fatalf("unexpected slave path %q", p.path)
	}
	var st unix.Stat_t
	if err := unix.Stat(p.path, &st); err != nil {
		t.Fatal(err)
	}
	p.rdev = uint64(st.Rdev)
	gid, ok := ttyGroup()
	if !ok {
		gid = 0
	}
	p.chown(testUID, int(gid))
	p.chmod(0o620)
	p.setOPOST(false)
	return p
}

func (p *testPTY) target() Target {
	return Target{TTY: p.name, Rdev: p.rdev, UID: testUID}
}

func (p *testPTY) chown(uid, gid int) {
	p.t.Helper()
	if err := os.Chown(p.path, uid, gid); err != nil {
		p.t.Fatal(err)
	}
}

func (p *testPTY) chmod(mode os.FileMode) {
	p.t.Helper()
	if err := os.Chmod(p.path, mode); err != nil {
		p.t.Fatal(err)
	}
}

func (p *testPTY) termios() *unix.Termios {
	p.t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		p.t.Fatal(err)
	}
	return tio
}

func (p *testPTY) setTermios(tio *unix.Termios) {
	p.t.Helper()
	if err := unix.IoctlSetTermios(int(p.slave.Fd()), unix.TCSETS, tio); err != nil {
		p.t.Fatal(err)
	}
}

func (p *testPTY) setOPOST(on bool) {
	tio := p.termios()
	if on {
		tio.Oflag |= unix.OPOST
	} else {
		tio.Oflag &^= unix.OPOST
	}
	p.setTermios(tio)
}

// stopOutput stops the slave's output like tcflow(TCOOFF) does.
func (p *testPTY) stopOutput() {
	p.t.Helper()
	if err := unix.IoctlSetInt(int(p.slave.Fd()), unix.TCXONC, unix.TCOOFF); err != nil {
		p.t.Fatal(err)
	}
}

func (p *testPTY) startOutput() {
	p.t.Helper()
	if err := unix.IoctlSetInt(int(p.slave.Fd()), unix.TCXONC, unix.TCOON); err != nil {
		p.t.Fatal(err)
	}
}

// stopWithCtrlS turns on IXON and "types" Ctrl-S (XOFF) into the terminal,
// as a user would, then waits until the line discipline has processed it
// (input is handled asynchronously by a kernel worker): it probes with
// 1-byte non-blocking writes until one fails with EAGAIN, then drains the
// probe bytes from the master.
func (p *testPTY) stopWithCtrlS() {
	p.t.Helper()
	tio := p.termios()
	tio.Iflag |= unix.IXON
	p.setTermios(tio)
	if _, err := p.master.Write([]byte{0x13}); err != nil {
		p.t.Fatal(err)
	}
	probe, err := unix.Open(p.path, unix.O_WRONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	defer unix.Close(probe)
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := unix.Write(probe, []byte{'.'})
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			p.t.Fatal(err)
		}
		if time.Now().After(deadline) {
			p.t.Fatal("Ctrl-S did not stop the terminal's output")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.readFor(100 * time.Millisecond) // drop the probe dots
}

// read returns what arrives on the master until want bytes have arrived or
// timeout passes. (pty.Open leaves the master in blocking mode, so this polls
// the raw fd instead of using deadlines.)
func (p *testPTY) read(want int, timeout time.Duration) []byte {
	p.t.Helper()
	fd := int(p.master.Fd())
	var got []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(timeout)
	for len(got) < want {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			p.t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			p.t.Fatalf("master poll revents %#x", fds[0].Revents)
		}
		m, err := unix.Read(fd, buf)
		if err != nil {
			p.t.Fatalf("read master: %v", err)
		}
		got = append(got, buf[:m]...)
	}
	return got
}

// readFor returns everything that arrives within d.
func (p *testPTY) readFor(d time.Duration) []byte {
	return p.read(1<<30, d)
}

// expect asserts the master receives exactly want (and nothing more
// shortly after).
func (p *testPTY) expect(want []byte) {
	p.t.Helper()
	got := p.read(len(want), 5*time.Second)
	got = append(got, p.readFor(50*time.Millisecond)...)
	if !bytes.Equal(got, want) {
		p.t.Errorf("%s received %q, want %q", p.name, trunc(got), trunc(want))
	}
}

// expectNothing asserts nothing arrives on the master.
func (p *testPTY) expectNothing() {
	p.t.Helper()
	if got := p.readFor(200 * time.Millisecond); len(got) != 0 {
		p.t.Errorf("%s received %q, want nothing", p.name, trunc(got))
	}
}

func trunc(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "…"...)
	}
	return b
}

// ttyNR returns the tty_nr field of /proc/self/stat (0 = no controlling tty).
func ttyNR(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	// state ppid pgrp session tty_nr
	if len(f) < 5 {
		t.Fatalf("short /proc/self/stat: %q", s)
	}
	n, err := strconv.Atoi(f[4])
	if err != nil {
		t.Fatal(err)
	}
	return n
}
