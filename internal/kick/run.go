package kick

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// Logind is the part of logind kick uses; *logind.Client has it.
type Logind interface {
	KillSession(ctx context.Context, id, whom string, sig syscall.Signal) error
	KillUser(ctx context.Context, uid uint32, sig syscall.Signal) error
}

// Options control how sessions are ended.
type Options struct {
	ProcRoot string      // "/proc"
	Signal   unix.Signal // first signal; SIGHUP when 0
	// Wait is how long the session gets to end after the first signal
	// before SIGKILL (the CLI's default is 5s; 0 escalates at once).
	Wait       time.Duration
	NoEscalate bool // send the first signal only and report survivors
	DryRun     bool // verify and report, signal nothing
	// Logind, when set, is asked to signal sessions it knows too (its
	// KillSession reaches the whole session scope by cgroup); pidfds still
	// wait for and verify the result.
	Logind Logind
}

func (o *Options) defaults() {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Signal == 0 {
		o.Signal = unix.SIGHUP
	}
	if o.Wait < 0 {
		o.Wait = 0
	}
}

// Results of a session's kick.
const (
	Ended    = "ended"    // nothing of the session is left
	Survived = "survived" // some processes are still running (listed)
	Refused  = "refused"  // nothing was signalled
	DryRun   = "dry-run"  // nothing was signalled on purpose
)

// SignalRecord is one signal sent (or, in a dry run, that would be sent).
type SignalRecord struct {
	PID    int          `json:"pid"`
	Start  uint64       `json:"start_ticks"`
	Comm   string       `json:"comm"`
	Role   session.Role `json:"role"`
	Signal string       `json:"signal"`
	At     time.Time    `json:"at"`
	// Result: "sent", "gone" (exited before it arrived), "would send"
	// (dry run), or an error.
	Result string `json:"result"`
}

// Exit is a process of the session seen gone, and when.
type Exit struct {
	PID   int           `json:"pid"`
	Comm  string        `json:"comm"`
	After time.Duration `json:"after_ns"`
}

// Outcome is what happened to one session.
type Outcome struct {
	Session   *session.Session `json:"-"`
	Result    string           `json:"result"`
	Reason    string           `json:"reason,omitempty"`
	Signals   []SignalRecord   `json:"signals"`
	Gone      []Exit           `json:"gone"`
	Survivors []int            `json:"survivors"`
	Refused   []Refusal        `json:"refused"`
	Took      time.Duration    `json:"took_ns"`
}

// Kick ends the sessions, each in its own goroutine, so a session that
// takes the whole wait delays nobody else. It returns one Outcome per
// session, in order.
func Kick(ctx context.Context, sessions []session.Session, o Options) ([]Outcome, error) {
	o.defaults()
	if err := CheckPidfd(); err != nil {
		return nil, err
	}
	out := make([]Outcome, len(sessions))
	runners := make([]*runner, len(sessions))
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() { runners[i] = kickOne(ctx, &sessions[i], o) })
	}
	wg.Wait()
	if !o.DryRun && !o.NoEscalate {
		sweep(ctx, runners, o)
	}
	for i, r := range runners {
		r.finish()
		out[i] = *r.oc
	}
	return out, nil
}

type runner struct {
	o     Options
	oc    *Outcome
	start time.Time
	all   []*Handle
	seen  map[int]bool
}

func kickOne(ctx context.Context, s *session.Session, o Options) *runner {
	r := &runner{o: o, oc: &Outcome{Session: s, Signals: []SignalRecord{}, Gone: []Exit{}, Survivors: []int{}, Refused: []Refusal{}},
		start: time.Now(), seen: map[int]bool{}}
	plan := PlanSession(s)
	r.oc.Refused = append(r.oc.Refused, plan.Refused...)
	first := r.open(plan.First)
	last := r.open(plan.Last)
	if len(first)+len(last) == 0 {
		if len(r.oc.Gone) > 0 && len(r.oc.Refused) == 0 {
			r.oc.Result = Ended
			r.oc.Reason = "the session had already ended"
		} else {
			r.oc.Result, r.oc.Reason = Refused, "no process of the session could be verified"
		}
		return r
	}
	if o.DryRun {
		for _, h := range first {
			r.record(h, o.Signal, "would send")
		}
		if !o.NoEscalate {
			for _, h := range first {
				r.record(h, unix.SIGKILL, "would send if still running after "+o.Wait.String())
			}
			for _, h := range last {
				r.record(h, unix.SIGKILL, "would send if still running after the session")
			}
		}
		r.oc.Result = DryRun
		return r
	}

	if o.Logind != nil && s.LogindID != "" {
		if err := o.Logind.KillSession(ctx, s.LogindID, "all", syscall.Signal(o.Signal)); err != nil {
			r.oc.Reason = fmt.Sprintf("logind KillSession: %v", err)
		}
	}
	r.signal(first, o.Signal)
	if o.Signal != unix.SIGKILL && o.Signal != unix.SIGCONT {
		// bash sends SIGCONT after SIGHUP to stopped jobs for the same
		// reason: a stopped process cannot act on the signal.
		for _, h := range first {
			if !h.Exited() {
				h.Signal(unix.SIGCONT)
			}
		}
	}
	everyone := append(slices.Clone(first), last...)
	left := r.wait(everyone, o.Wait)
	if !o.NoEscalate {
		var firstLeft, lastLeft []*Handle
		for _, h := range left {
			if slices.Contains(last, h) {
				lastLeft = append(lastLeft, h)
			} else {
				firstLeft = append(firstLeft, h)
			}
		}
		if len(firstLeft) > 0 {
			r.signal(firstLeft, unix.SIGKILL)
			left = r.wait(everyone, 2*time.Second)
			lastLeft = lastLeft[:0]
			for _, h := range left {
				if slices.Contains(last, h) {
					lastLeft = append(lastLeft, h)
				}
			}
		}
		if len(lastLeft) > 0 {
			// Give the monitor a moment to log the user out on its own.
			lastLeft = r.wait(lastLeft, time.Second)
			r.signal(lastLeft, unix.SIGKILL)
			r.wait(lastLeft, 2*time.Second)
		}
	}
	return r
}

// finish closes the handles and settles the result.
func (r *runner) finish() {
	defer func() {
		for _, h := range r.all {
			h.Close()
		}
		r.oc.Took = time.Since(r.start)
	}()
	if r.oc.Result != "" {
		return
	}
	for _, h := range r.all {
		if !h.Exited() {
			r.oc.Survivors = append(r.oc.Survivors, h.Member.PID)
		}
	}
	slices.Sort(r.oc.Survivors)
	if len(r.oc.Survivors) == 0 {
		r.oc.Result = Ended
		return
	}
	r.oc.Result = Survived
	if r.oc.Reason == "" {
		r.oc.Reason = fmt.Sprintf("%d process(es) still running", len(r.oc.Survivors))
		if !r.loginAlive() {
			r.oc.Reason += fmt.Sprintf(" and the login is gone: end them with 'sshkick kick %s --all-processes'", r.oc.Session.User)
		}
	}
}

// loginAlive reports whether a process that holds the login (sshd, its
// monitor, login(1)) is still running: without one, the leftovers are no
// longer a session that discovery can find.
func (r *runner) loginAlive() bool {
	for _, h := range r.all {
		switch h.Member.Role {
		case session.RoleMonitor, session.RoleSSHD, session.RoleLogin:
			if !h.Exited() {
				return true
			}
		}
	}
	return false
}

// open verifies members and returns handles for the live ones.
func (r *runner) open(ms []session.Member) []*Handle {
	var hs []*Handle
	for _, m := range ms {
		if r.seen[m.PID] {
			continue
		}
		r.seen[m.PID] = true
		h, err := Open(r.o.ProcRoot, m)
		switch {
		case err == nil:
			hs = append(hs, h)
			r.all = append(r.all, h)
		case errors.Is(err, ErrGone):
			r.oc.Gone = append(r.oc.Gone, Exit{PID: m.PID, Comm: m.Comm})
		default:
			r.oc.Refused = append(r.oc.Refused, Refusal{PID: m.PID, Reason: err.Error()})
		}
	}
	return hs
}

func (r *runner) record(h *Handle, sig unix.Signal, result string) {
	r.oc.Signals = append(r.oc.Signals, SignalRecord{PID: h.Member.PID, Start: h.Member.Start, Comm: h.Member.Comm,
		Role: h.Member.Role, Signal: SignalName(sig), At: time.Now(), Result: result})
}

func (r *runner) signal(hs []*Handle, sig unix.Signal) {
	for _, h := range hs {
		if h.Exited() {
			continue
		}
		err := h.Signal(sig)
		switch {
		case err == nil:
			r.record(h, sig, "sent")
		case errors.Is(err, ErrGone):
			r.record(h, sig, "gone")
		default:
			r.record(h, sig, err.Error())
		}
	}
}

// wait waits for hs to exit, noting each exit, and returns the rest.
func (r *runner) wait(hs []*Handle, d time.Duration) []*Handle {
	left := waitExit(hs, d)
	for _, h := range hs {
		if !slices.Contains(left, h) && !r.noted(h.Member.PID) {
			r.oc.Gone = append(r.oc.Gone, Exit{PID: h.Member.PID, Comm: h.Member.Comm, After: time.Since(r.start)})
		}
	}
	return left
}

func (r *runner) noted(pid int) bool {
	for _, g := range r.oc.Gone {
		if g.PID == pid {
			return true
		}
	}
	return false
}

// sweep kills what the sessions left behind: processes that still carry
// one of their session ids — nohup jobs, jobs that ignore SIGHUP and
// SIGTERM, and ones started since discovery. A session id cannot be reused
// while any process still has it, so it names exactly those leftovers. One
// /proc scan per round serves every session.
func sweep(ctx context.Context, runners []*runner, o Options) {
	bySID := map[int]*runner{}
	for _, r := range runners {
		if r.oc.Result != "" {
			continue
		}
		for _, sid := range r.oc.Session.SIDs {
			if sid > 1 {
				bySID[sid] = r
			}
		}
	}
	if len(bySID) == 0 {
		return
	}
	for round := 0; round < 5 && ctx.Err() == nil; round++ {
		snap, err := proc.Scan(o.ProcRoot)
		if err != nil {
			for _, r := range runners {
				r.oc.Reason = "sweep: " + err.Error()
			}
			return
		}
		found := map[*runner][]session.Member{}
		for _, p := range snap.Procs {
			r := bySID[p.SID]
			if r == nil || p.Zombie() || p.PID <= 1 || p.KernelThread() || p.Comm == "sshd" || p.Comm == "sshd-session" {
				continue
			}
			found[r] = append(found[r], session.Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: session.RoleMember})
		}
		if len(found) == 0 {
			return
		}
		var wg sync.WaitGroup
		for r, ms := range found {
			wg.Go(func() {
				for _, m := range ms {
					delete(r.seen, m.PID) // a reused PID is a new process: verify it afresh
				}
				hs := r.open(ms)
				r.signal(hs, unix.SIGKILL)
				r.wait(hs, 2*time.Second)
			})
		}
		wg.Wait()
	}
}
