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
//
// A kick of thousands of processes cannot hold a pidfd on each (the
// descriptor limit), so a handle may be detached: it keeps the identity
// (PID and start time) it verified, and every signal opens a fresh pidfd,
// checks that it still names that identity, sends and closes (see
// reattach). Its exit is seen by re-reading /proc instead of polling.
type Handle struct {
	fd       int
	procRoot string
	detached bool
	exited   bool
	budget   *fdBudget
	Member   session.Member
	// aliveAt is a tick (bootTicks) at which the process was provably not
	// yet reaped: sampled just before a signal to it succeeded. Until a
	// process is reaped its PID, and a session id equal to it, belong to
	// it, so a process of its session that started before aliveAt is the
	// session's (see sweep). 0: never proved.
	aliveAt uint64
}

// noteAlive records that the process was not reaped at tick t.
func (h *Handle) noteAlive(t uint64) {
	h.aliveAt = max(h.aliveAt, t)
}

// probe proves, if it can, that the process has not been reaped yet, and
// notes when (aliveAt). A zombie counts: it still holds its PID.
func (h *Handle) probe() {
	t := bootTicks()
	switch {
	case h.detached:
		if h.signalDetached(0) == nil {
			h.noteAlive(t)
		}
	case h.fd >= 0:
		if unix.PidfdSendSignal(h.fd, 0, nil, 0) == nil {
			h.noteAlive(t)
		}
	}
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
	h := &Handle{fd: fd, procRoot: procRoot, Member: m}
	t := bootTicks()
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
	h.noteAlive(t)
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
	t := bootTicks()
	if h.detached {
		err := h.signalDetached(sig)
		if err == nil {
			h.noteAlive(t)
		}
		return err
	}
	err := unix.PidfdSendSignal(h.fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		h.exited = true
		return ErrGone
	}
	if err == nil {
		h.noteAlive(t)
	}
	return err
}

// signalDetached opens a pidfd for this one signal. The PID may have been
// reused since the handle was verified, so the fresh pidfd must name the
// same identity: same start time, not a zombie, not a kernel thread, same
// uid. Session and terminal are not compared again: the process was
// verified once, and one that called setsid() since is still the one.
func (h *Handle) signalDetached(sig unix.Signal) error {
	if h.exited {
		return ErrGone
	}
	fd, err := unix.PidfdOpen(h.Member.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EINVAL) {
			h.exited = true
			return ErrGone
		}
		return fmt.Errorf("pidfd_open %d: %w", h.Member.PID, err)
	}
	defer unix.Close(fd)
	p, err := proc.Read(h.procRoot, h.Member.PID)
	if err != nil || p.Zombie() || p.Start != h.Member.Start || unix.PidfdSendSignal(fd, 0, nil, 0) != nil {
		h.exited = true
		return ErrGone
	}
	if p.KernelThread() || (h.Member.UID >= 0 && p.UID != h.Member.UID) {
		return fmt.Errorf("pid %d now runs as uid %d: %w", h.Member.PID, p.UID, ErrIdentityChanged)
	}
	err = unix.PidfdSendSignal(fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		h.exited = true
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
	if h.exited {
		return true
	}
	if h.detached {
		// PID and start time name the process for its whole life: another
		// start time under the PID means ours is gone.
		p, err := proc.Read(h.procRoot, h.Member.PID)
		h.exited = err != nil || p.Zombie() || p.Start != h.Member.Start
		return h.exited
	}
	fds := []unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	h.exited = err == nil && n > 0
	return h.exited
}

// Detached reports whether the handle holds no pidfd between signals.
func (h *Handle) Detached() bool { return h.detached }

// detach closes the pidfd, keeping the verified identity.
func (h *Handle) detach() {
	h.closeFD()
	h.detached = true
}

// Close releases the pidfd.
func (h *Handle) Close() { h.closeFD() }

func (h *Handle) closeFD() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
		if h.budget != nil {
			h.budget.release()
			h.budget = nil
		}
	}
}

// fdBudget bounds the pidfds a kick holds at once, so that no count of
// processes makes pidfd_open (or anything else) fail with EMFILE.
type fdBudget struct{ slots chan struct{} }

func newFDBudget(n int) *fdBudget {
	if n < 0 {
		n = 0
	}
	return &fdBudget{slots: make(chan struct{}, n)}
}

func (b *fdBudget) tryAcquire() bool {
	select {
	case b.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (b *fdBudget) release() { <-b.slots }

// pidfdBudget is how many pidfds a kick may hold: half of the descriptor
// limit, less what each of the concurrent sessions needs transiently (a
// pidfd being verified, a /proc file being read), capped so a huge limit
// does not mean a huge poll set.
func pidfdBudget(concurrency int) int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	n := int(min(rl.Cur, 1<<20))/2 - 4*concurrency - 64
	return max(0, min(n, 16384))
}

// detachedPoll is how often waitExit re-reads /proc for detached handles.
const detachedPoll = 20 * time.Millisecond

// waitExit waits until every handle has exited or d has passed, and
// returns those still running. A pidfd becomes readable when its process
// exits, so one poll(2) over all of them wakes at the first exit and says
// which ones: no sleep-and-kill(pid, 0) loop, no per-handle system call
// per wake. Detached handles are re-read from /proc every detachedPoll.
func waitExit(hs []*Handle, d time.Duration) []*Handle {
	deadline := time.Now().Add(d)
	var fds []unix.PollFd
	var polled []*Handle
	nextRead := time.Time{}
	for {
		now := time.Now()
		readDetached := !now.Before(nextRead)
		if readDetached {
			nextRead = now.Add(detachedPoll)
		}
		left := hs[:0:0]
		fds, polled = fds[:0], polled[:0]
		for _, h := range hs {
			switch {
			case h.exited:
			case h.detached:
				if !readDetached || !h.Exited() {
					left = append(left, h)
				}
			default:
				left = append(left, h)
				fds = append(fds, unix.PollFd{Fd: int32(h.fd), Events: unix.POLLIN})
				polled = append(polled, h)
			}
		}
		if len(left) == 0 {
			return nil
		}
		rem := time.Until(deadline)
		wait := min(max(rem, 0), 200*time.Millisecond)
		if len(fds) < len(left) {
			wait = min(wait, time.Until(nextRead))
		}
		// Round up: poll(0) would spin until the deadline.
		ms := max(0, int((wait+time.Millisecond-1)/time.Millisecond))
		if len(fds) > 0 {
			n, err := unix.Poll(fds, ms)
			for i := 0; err == nil && n > 0 && i < len(fds); i++ {
				if fds[i].Revents != 0 {
					polled[i].exited = true
				}
			}
		} else if ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		if rem <= 0 {
			// One last look (the poll above had a zero timeout).
			out := left[:0:0]
			for _, h := range left {
				if !h.exited && !(h.detached && h.Exited()) {
					out = append(out, h)
				}
			}
			if len(out) == 0 {
				return nil
			}
			return out
		}
		hs = left
	}
}
