// Package termmsg is the only package that writes to another user's
// terminal. Nothing else in sshkick opens a user's tty.
//
// It does not decide which bytes are safe: that is internal/sanitize's job,
// and Send expects a message that already went through sanitize.Message. What
// termmsg does decide is which device may be written and how (see the
// project's security notes, §1 "Escape-sequence injection"):
//
//   - the tty name from utmp/logind must pass ValidTTY before anything is
//     opened, so a forged ut_line such as "../etc/shadow", "watchdog" or
//     "console" is never opened;
//   - the device is opened O_WRONLY|O_NOCTTY|O_NONBLOCK|O_CLOEXEC|O_NOFOLLOW:
//     never O_RDWR (a session leader would acquire it as controlling tty),
//     never TIOCSTI, never a read;
//   - after the open, fstat must show a character device with a tty major
//     (136–143 for pts/N, 4 with minor N in 1–63 for ttyN), the device number
//     and owner discovery saw, and TCGETS must succeed;
//   - `mesg n` (group write bit clear, or group not "tty") is honoured unless
//     Options.Force is set;
//   - every write has a deadline, so a terminal whose output is stopped
//     (Ctrl-S) or a full pty buffer cannot hang the caller, and terminals are
//     written concurrently with a cap.
package termmsg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/sanitize"
)

// Status is the outcome of writing to one terminal.
type Status string

const (
	Delivered  Status = "delivered"   // the whole message was written
	Refused    Status = "refused"     // the user said `mesg n` and Force was off
	NoTerminal Status = "no-terminal" // the session has no terminal; nothing was opened
	TimedOut   Status = "timed-out"   // the write did not complete by the deadline
	Failed     Status = "failed"      // anything else; Result.Err says what
)

// Defaults for Options.
const (
	DefaultDevRoot     = "/dev"
	DefaultTimeout     = 2 * time.Second
	DefaultConcurrency = 32
)

// Errors wrapped by Result.Err, for errors.Is.
var (
	ErrNoTerminal     = errors.New("session has no terminal")
	ErrInvalidTTY     = errors.New("invalid tty name")
	ErrNotTTY         = errors.New("not a terminal device")
	ErrDeviceMismatch = errors.New("tty device number differs from the one discovered")
	ErrOwnerMismatch  = errors.New("tty owner differs from the session user")
	ErrMessagesOff    = errors.New("user has messages disabled (mesg n)")
	ErrTimeout        = errors.New("write did not complete before the deadline (terminal output stopped?)")
	ErrShortWrite     = errors.New("partial write")
)

// Target is one terminal to write to.
type Target struct {
	TTY  string // "pts/3" or "tty2" as discovery found it; "" = the session has no terminal
	Rdev uint64 // device number discovery saw for this tty (from stat st_rdev or /proc stat tty_nr); 0 = not checked
	UID  int    // expected owner of the tty device; -1 = not checked
}

// Result is the outcome for one Target.
type Result struct {
	Target Target
	Status Status
	Err    error // nil when Delivered; says why otherwise
	Bytes  int   // bytes written (less than len(msg) unless Delivered)
}

// Options tune Send. The zero value is usable.
type Options struct {
	DevRoot     string        // "/dev" unless tests say otherwise
	Timeout     time.Duration // per terminal write deadline; 0 means 2s
	Force       bool          // write even when the user said `mesg n`
	Concurrency int           // terminals written at once; 0 means 32
}

// Send writes msg to every target concurrently, each write bounded by
// opt.Timeout, and returns one Result per target in the same order.
//
// msg must already be sanitized by the caller with sanitize.Message (banner
// included): Send writes the bytes as they are and does not re-sanitize.
//
// Targets without a terminal get NoTerminal and nothing is opened for them.
// When ctx is cancelled, writes in progress are interrupted and targets not
// yet started are not opened; their Result has Status Failed (TimedOut if
// ctx's deadline passed) and Err wrapping ctx.Err(). Send never returns
// before every write has finished or been abandoned and its fd closed.
func Send(ctx context.Context, targets []Target, msg []byte, opt Options) []Result {
	if opt.DevRoot == "" {
		opt.DevRoot = DefaultDevRoot
	}
	opt.DevRoot = strings.TrimRight(opt.DevRoot, "/")
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = DefaultConcurrency
	}
	results := make([]Result, len(targets))
	workers := min(opt.Concurrency, len(targets))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				results[i] = sendOne(ctx, targets[i], msg, &opt)
			}
		})
	}
	for i := range targets {
		next <- i
	}
	close(next)
	wg.Wait()
	return results
}

// ValidTTY reports whether a tty name from utmp/logind is acceptable:
// only "pts/N" (N decimal 0–1048575, no sign, no leading zero, as the kernel
// names them) and "ttyN" (a virtual console, N decimal 1–63). Everything
// else — "", "..", anything with another "/", absolute paths, "console",
// "tty", "tty0" (the current VT, whoever owns it), "ttyS0", "null", ":0" —
// is rejected.
func ValidTTY(name string) bool {
	if rest, ok := strings.CutPrefix(name, "pts/"); ok {
		_, ok := decimal(rest, 0, 1<<20-1)
		return ok
	}
	if rest, ok := strings.CutPrefix(name, "tty"); ok {
		_, ok := decimal(rest, 1, 63)
		return ok
	}
	return false
}

// decimal parses a canonical non-negative decimal number in [lo, hi].
func decimal(s string, lo, hi int) (int, bool) {
	if len(s) == 0 || len(s) > 7 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= lo && n <= hi
}

// Banner returns the first line of a message to users, without a line end:
//
//	Message from the administrator (root@host) at 15:04 UTC:
//
// sender and host are passed through sanitize.Field; an empty host is left
// out. The caller joins the banner and the body with "\n" and passes the
// whole text through sanitize.Message before Send.
func Banner(sender, host string, at time.Time) string {
	var b strings.Builder
	b.WriteString("Message from the administrator (")
	b.WriteString(sanitize.Field(sender))
	if host != "" {
		b.WriteByte('@')
		b.WriteString(sanitize.Field(host))
	}
	b.WriteString(") at ")
	b.WriteString(at.UTC().Format("15:04 MST"))
	b.WriteByte(':')
	return b.String()
}

// ttyGroup returns the gid of the "tty" group, looked up once per process.
// ok is false when the system has no such group; mesg is then judged by the
// group write bit alone.
var ttyGroup = sync.OnceValues(func() (gid uint32, ok bool) {
	g, err := user.LookupGroup("tty")
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
})

// ctxResult turns a context error into a Result.
func ctxResult(r Result, err error) Result {
	r.Status = Failed
	if errors.Is(err, context.DeadlineExceeded) {
		r.Status = TimedOut
	}
	r.Err = fmt.Errorf("not delivered: %w", err)
	return r
}

// isTTYDevice reports whether major:minor is a terminal matching the name's
// kind: a Unix98 pty slave for pts/N, virtual console N for ttyN.
func isTTYDevice(name string, major, minor uint32) bool {
	if strings.HasPrefix(name, "pts/") {
		return major >= 136 && major <= 143
	}
	n, ok := decimal(strings.TrimPrefix(name, "tty"), 1, 63)
	return ok && major == 4 && minor == uint32(n)
}

func sendOne(ctx context.Context, t Target, msg []byte, opt *Options) Result {
	r := Result{Target: t, Status: Failed}
	fail := func(err error) Result {
		r.Err = err
		return r
	}
	if t.TTY == "" {
		r.Status = NoTerminal
		return fail(ErrNoTerminal)
	}
	if !ValidTTY(t.TTY) {
		return fail(fmt.Errorf("%w: %q", ErrInvalidTTY, sanitize.Field(t.TTY)))
	}
	if err := ctx.Err(); err != nil {
		return ctxResult(r, err)
	}
	path := opt.DevRoot + "/" + t.TTY
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_WRONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fail(&os.PathError{Op: "open", Path: path, Err: err})
	}
	if err := checkFD(fd, path, t, opt.Force); err != nil {
		unix.Close(fd)
		if errors.Is(err, ErrMessagesOff) {
			r.Status = Refused
		}
		return fail(err)
	}

	// The fd is non-blocking, so os.NewFile registers it with the runtime
	// poller and SetWriteDeadline works: Write parks on EAGAIN (stopped
	// output, full buffer) until the terminal drains or the deadline passes.
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := f.SetWriteDeadline(time.Now().Add(opt.Timeout)); err != nil {
		return fail(fmt.Errorf("%s: cannot bound the write, not writing: %w", path, err))
	}
	stop := context.AfterFunc(ctx, func() {
		f.SetWriteDeadline(time.Unix(1, 0)) // in the past: interrupts Write
	})
	n, err := f.Write(msg)
	stop()
	r.Bytes = n
	switch {
	case err != nil && ctx.Err() != nil:
		return ctxResult(r, ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.Status = TimedOut
		return fail(fmt.Errorf("%s: %w: wrote %d of %d bytes within %v", path, ErrTimeout, n, len(msg), opt.Timeout))
	case err != nil:
		return fail(fmt.Errorf("%s: wrote %d of %d bytes: %w", path, n, len(msg), err))
	case n != len(msg):
		return fail(fmt.Errorf("%s: %w: %d of %d bytes", path, ErrShortWrite, n, len(msg)))
	}
	r.Status = Delivered
	return r
}

// checkFD validates an opened fd before anything is written to it.
func checkFD(fd int, path string, t Target, force bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return fmt.Errorf("%s: %w: not a character device (mode %#o)", path, ErrNotTTY, st.Mode)
	}
	rdev := uint64(st.Rdev)
	major, minor := unix.Major(rdev), unix.Minor(rdev)
	if !isTTYDevice(t.TTY, major, minor) {
		return fmt.Errorf("%s: %w: device %d:%d", path, ErrNotTTY, major, minor)
	}
	if t.Rdev != 0 && t.Rdev != rdev {
		return fmt.Errorf("%s: %w: device %d:%d, expected %d:%d", path, ErrDeviceMismatch,
			major, minor, unix.Major(t.Rdev), unix.Minor(t.Rdev))
	}
	if t.UID >= 0 && uint64(st.Uid) != uint64(t.UID) {
		return fmt.Errorf("%s: %w: owner uid %d, expected %d", path, ErrOwnerMismatch, st.Uid, t.UID)
	}
	if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
		return fmt.Errorf("%s: %w: TCGETS: %v", path, ErrNotTTY, err)
	}
	if !force {
		if st.Mode&unix.S_IWGRP == 0 {
			return fmt.Errorf("%s: %w: mode %#o has no group write", path, ErrMessagesOff, st.Mode&0o7777)
		}
		if gid, ok := ttyGroup(); ok && st.Gid != gid {
			return fmt.Errorf("%s: %w: group %d is not the tty group %d", path, ErrMessagesOff, st.Gid, gid)
		}
	}
	return nil
}
