package kick

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// Errors a caller decides on.
var (
	// ErrGone means the process had already exited: nothing to signal.
	ErrGone = errors.New("process is gone")
	// ErrIdentityChanged means the PID now names another process than the
	// one discovery saw (reused PID), or the process changed (uid, session,
	// terminal): it is refused, never signalled.
	ErrIdentityChanged = errors.New("process is not the one discovery saw")
	// ErrNoPidfd means the kernel cannot signal through pidfds (Linux
	// older than 5.3, or a seccomp filter); sshkick then refuses to signal
	// rather than fall back to racy kill(pid).
	ErrNoPidfd = errors.New("this kernel cannot signal through pidfds (pidfd_open needs Linux 5.3 or later); sshkick does not fall back to racy kill(PID)")
)

// Handle is a pidfd on one process, verified to be the process discovery
// saw. Signals go through it only, so a PID reused after the check is never
// hit.
type Handle struct {
	fd     int
	Member session.Member
}

// CheckPidfd reports ErrNoPidfd when this kernel has no usable pidfds.
func CheckPidfd() error {
	fd, err := unix.PidfdOpen(unix.Getpid(), 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return ErrNoPidfd
		}
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, 0, nil, 0); err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return ErrNoPidfd
		}
		return fmt.Errorf("pidfd_send_signal: %w", err)
	}
	return nil
}

// Open opens a pidfd on m's PID and verifies, after the open, that it names
// the process discovery saw: same start time, uid, session and terminal.
// Reading /proc after the pidfd is held and then checking the pidfd is
// still alive is systemd's pidref_verify pattern: if the PID had been
// reused between the open and the read, the pidfd's process is dead and
// the read is discarded.
func Open(procRoot string, m session.Member) (*Handle, error) {
	if m.PID <= 1 {
		return nil, fmt.Errorf("pid %d: %w", m.PID, ErrIdentityChanged)
	}
	fd, err := unix.PidfdOpen(m.PID, 0)
	if err != nil {
		// EINVAL also comes back for a PID that is being reaped.
		if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EINVAL) {
			return nil, ErrGone
		}
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			return nil, ErrNoPidfd
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", m.PID, err)
	}
	h := &Handle{fd: fd, Member: m}
	p, err := proc.Read(procRoot, m.PID)
	if err != nil {
		h.Close()
		if errors.Is(err, proc.ErrGone) {
			return nil, ErrGone
		}
		return nil, err
	}
	if !h.alive() {
		h.Close()
		return nil, ErrGone
	}
	if p.Zombie() {
		h.Close()
		return nil, ErrGone
	}
	if why := differs(m, p); why != "" {
		h.Close()
		return nil, fmt.Errorf("pid %d %s: %w", m.PID, why, ErrIdentityChanged)
	}
	return h, nil
}

// differs says how p is not the process m describes, or "".
func differs(m session.Member, p *proc.Process) string {
	switch {
	case p.Start != m.Start:
		return "was started after discovery (PID reused)"
	case p.KernelThread():
		return "is a kernel thread"
	case m.UID >= 0 && p.UID != m.UID:
		return fmt.Sprintf("now runs as uid %d, not %d", p.UID, m.UID)
	case p.SID != m.SID:
		return fmt.Sprintf("moved to session %d from %d", p.SID, m.SID)
	case p.TTY != m.TTY:
		return "changed its terminal"
	}
	return ""
}

// Signal sends sig through the pidfd. A process that exited meanwhile
// gives ErrGone.
func (h *Handle) Signal(sig unix.Signal) error {
	err := unix.PidfdSendSignal(h.fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return ErrGone
	}
	return err
}

func (h *Handle) alive() bool {
	return unix.PidfdSendSignal(h.fd, 0, nil, 0) == nil
}

// Exited reports whether the process has exited (a zombie counts: it runs
// nothing any more).
func (h *Handle) Exited() bool {
	fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// Close releases the pidfd.
func (h *Handle) Close() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}

// waitExit polls the handles until every one has exited or d has passed,
// and returns those still running. A pidfd becomes readable when its
// process exits, so no sleep-and-kill(pid, 0) loop is needed.
func waitExit(hs []*Handle, d time.Duration) []*Handle {
	deadline := time.Now().Add(d)
	for {
		var left []*Handle
		for _, h := range hs {
			if !h.Exited() {
				left = append(left, h)
			}
		}
		if len(left) == 0 {
			return nil
		}
		rem := time.Until(deadline)
		if rem <= 0 {
			return left
		}
		fds := make([]unix.PollFd, len(left))
		for i, h := range left {
			fds[i] = unix.PollFd{Fd: int32(h.fd), Events: unix.POLLIN}
		}
		ms := int(rem / time.Millisecond)
		if ms > 200 {
			ms = 200
		}
		if ms < 1 {
			ms = 1
		}
		unix.Poll(fds, ms)
		hs = left
	}
}
