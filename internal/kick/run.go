package kick

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
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
	// Logind, when set, is asked to signal the whole scope of the
	// sessions it knows when EndMultiplexers is set, and the user's slice
	// for KillUser; pidfds and the cgroup still verify the result.
	Logind Logind
	// EndMultiplexers ends the tmux and screen servers started from a
	// session (and their panes) with it, as logind's TerminateSession
	// does. By default they are kept, as when the user logs out: the kick
	// ends the login, its shell and jobs, and leaves detached servers.
	EndMultiplexers bool
	// Concurrency is how many sessions are ended at once (0: 32): a kick
	// of thousands of sessions runs as many goroutines, with as many
	// descriptors, as this, not as the count.
	Concurrency int
	// MaxPidfds is how many pidfds the kick holds at once (0: from the
	// descriptor limit, see pidfdBudget). Processes beyond it are verified
	// and signalled through a pidfd opened for each signal.
	MaxPidfds int
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
	if o.Concurrency <= 0 {
		o.Concurrency = 32
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
	// Scope is the session's logind scope (cgroup path), "" without one.
	Scope string `json:"scope,omitempty"`
	// Actions are steps on the whole session (logind, cgroup.kill).
	Actions []Action `json:"actions"`
	// Kept are processes left running on purpose (multiplexer servers).
	Kept []Kept        `json:"kept"`
	Took time.Duration `json:"took_ns"`
}

// Kick ends the sessions, at most Options.Concurrency at once, so a
// session that takes the whole wait delays nobody else and a kick of
// thousands of sessions stays within the descriptor limit. It returns one
// Outcome per session, in order.
func Kick(ctx context.Context, sessions []session.Session, o Options) ([]Outcome, error) {
	o.defaults()
	if err := CheckPidfd(); err != nil {
		return nil, err
	}
	// A multiplexer server that starts from now on is none of these
	// sessions' (muxServersByEnv); the sweep's proofs are its own.
	began := bootTicks()
	budget := o.MaxPidfds
	if budget <= 0 {
		budget = pidfdBudget(o.Concurrency)
	}
	fds := newFDBudget(budget)
	// One /proc scan, taken when the first session needs it, serves every
	// session that looks for its multiplexer servers without a scope.
	scan := sync.OnceValues(func() (*proc.Snapshot, error) { return proc.Scan(o.ProcRoot) })
	out := make([]Outcome, len(sessions))
	runners := make([]*runner, len(sessions))
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.Concurrency)
	for i := range sessions {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			runners[i] = kickOne(ctx, &sessions[i], o, fds, began, scan)
		})
	}
	wg.Wait()
	if !o.DryRun && !o.NoEscalate {
		sweep(ctx, runners, o)
		finishScopes(ctx, runners, o)
	}
	for i, r := range runners {
		r.finish()
		out[i] = *r.oc
	}
	return out, nil
}

// bootTicks is now in the unit of /proc/PID/stat's start time: clock
// ticks since boot, on the boot-time clock the kernel uses for it.
func bootTicks() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano()) / uint64(time.Second/proc.ClockTicks)
}

type runner struct {
	o     Options
	oc    *Outcome
	start time.Time
	all   []*Handle
	seen  map[int]bool
	fds   *fdBudget
	// began is the tick the kick began (bootTicks).
	began uint64
	// known are the identities the sweep may end: the session's members
	// as discovery saw them, and processes a sweep scan found descending
	// from one of them.
	known map[proc.Ident]bool
	// swept are the sweep's candidates already handled (signalled or
	// refused), so each is reported once.
	swept map[proc.Ident]bool
	// handles are the handles opened by kickOne, by identity.
	handles map[proc.Ident]*Handle
	gone    map[proc.Ident]bool
	// keptIdent are the multiplexer servers kept and what runs under them.
	keptIdent map[proc.Ident]bool
	// scopePath and scopeDir are the session's logind scope, if any;
	// scopeLeft what cgroup.kill could not end in it.
	scopePath, scopeDir string
	scopeLeft           []int
}

func kickOne(ctx context.Context, s *session.Session, o Options, fds *fdBudget, began uint64, scan func() (*proc.Snapshot, error)) *runner {
	r := &runner{o: o, oc: &Outcome{Session: s, Signals: []SignalRecord{}, Gone: []Exit{}, Survivors: []int{}, Refused: []Refusal{},
		Actions: []Action{}, Kept: []Kept{}},
		start: time.Now(), seen: map[int]bool{}, fds: fds, began: began,
		known: make(map[proc.Ident]bool, len(s.Members)), swept: map[proc.Ident]bool{},
		handles: map[proc.Ident]*Handle{}, gone: map[proc.Ident]bool{}, keptIdent: map[proc.Ident]bool{}}
	r.findScope(s)
	// Plan what is not kept: a copy of the session with the multiplexer
	// servers (and their panes) left out unless they are to end too.
	planned := *s
	planned.Members = append(r.keepMultiplexers(s), r.muxServersByEnv(s, scan)...)
	plan := PlanSession(&planned)
	// The sweep may end the session's own processes and what descends
	// from them — not sshd's (whose descendants are every session of the
	// connection) nor a multiplexer server's (every pane), which the plan
	// orders or refuses.
	for _, m := range plan.First {
		if m.Role == session.RoleLeader || m.Role == session.RoleMember {
			r.known[m.Ident] = true
		}
	}
	r.oc.Refused = append(r.oc.Refused, plan.Refused...)
	first := r.open(plan.First)
	logout := r.open(plan.Logout)
	last := r.open(plan.Last)
	for _, h := range r.all {
		r.handles[h.Member.Ident] = h
	}
	if len(first)+len(logout)+len(last) == 0 && r.scopeDir != "" && !o.DryRun && !o.NoEscalate {
		// Only the scope is left (a closing session: tmux, jobs): it is
		// settled, or ended, after the sweep (finishScopes).
		if o.EndMultiplexers {
			r.killSession(ctx, o.Signal)
		}
		return r
	}
	if len(first)+len(logout)+len(last) == 0 {
		if len(r.oc.Kept) > 0 && len(r.oc.Refused) == 0 {
			r.oc.Result, r.oc.Reason = Ended, onlyKept
			return r
		}
		if len(r.oc.Gone) > 0 && len(r.oc.Refused) == 0 {
			r.oc.Result = Ended
			r.oc.Reason = "the session had already ended"
		} else {
			r.oc.Result, r.oc.Reason = Refused, "no process of the session could be verified"
		}
		return r
	}
	// Nothing but the login itself: a login caught half-born (sshd's
	// monitor still in PAM, its child not forked yet) or one whose session
	// is gone without it. It gets SIGTERM at once, not a wait: sshd's
	// monitor passes it on to its child once it has one and logs the user
	// out (monitor.c, monitor_child_handler), login(1) hangs up its shell
	// and logs out; before that it simply ends the login.
	loginOnly := len(first)+len(logout) == 0
	if o.DryRun {
		for _, h := range first {
			r.record(h, o.Signal, "would send")
		}
		for _, h := range logout {
			r.record(h, unix.SIGTERM, "would send after the session's processes (it logs the user out)")
		}
		if loginOnly {
			for _, h := range last {
				r.record(h, unix.SIGTERM, "would send: the session holds nothing but its login (it logs the user out)")
			}
		}
		if !o.NoEscalate {
			for _, h := range first {
				r.record(h, unix.SIGKILL, "would send if still running after "+o.Wait.String())
			}
			for _, h := range logout {
				r.record(h, unix.SIGKILL, "would send if still running after SIGTERM")
			}
			for _, h := range last {
				if loginOnly {
					r.record(h, unix.SIGKILL, "would send if still running after SIGTERM")
				} else {
					r.record(h, unix.SIGKILL, "would send if still running after the session")
				}
			}
		}
		if o.EndMultiplexers && r.scopeDir != "" {
			r.oc.Actions = append(r.oc.Actions, Action{Via: "logind", Target: "session " + s.LogindID, Signal: SignalName(o.Signal), Result: "would do"},
				Action{Via: "cgroup", Target: r.scopePath, Signal: "KILL", Result: "would do if anything is left"})
		}
		r.oc.Result = DryRun
		return r
	}

	if o.EndMultiplexers {
		r.killSession(ctx, o.Signal)
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
	// The wait is for the session's own processes: the login processes
	// (monitor, login(1)) end after them, by themselves.
	left := r.wait(first, o.Wait)
	if len(left) > 0 && !o.NoEscalate {
		r.signal(left, unix.SIGKILL)
		r.wait(left, 2*time.Second)
	}
	if len(logout) > 0 {
		r.signal(logout, unix.SIGTERM)
		if left := r.wait(logout, 2*time.Second); len(left) > 0 && !o.NoEscalate {
			r.signal(left, unix.SIGKILL)
			r.wait(left, 2*time.Second)
		}
	}
	if len(last) > 0 {
		if loginOnly {
			r.signal(last, unix.SIGTERM)
			if left := r.wait(last, 2*time.Second); len(left) > 0 && !o.NoEscalate {
				r.signal(left, unix.SIGKILL)
				r.wait(left, 2*time.Second)
			}
			return r
		}
		// Give the monitor a moment to log the user out on its own.
		if left := r.wait(last, time.Second); len(left) > 0 && !o.NoEscalate {
			r.signal(left, unix.SIGKILL)
			r.wait(left, 2*time.Second)
		}
	}
	return r
}

// onlyKept is the reason of a session whose login is over and that holds
// only what is kept on purpose.
const onlyKept = "the login had already ended; only multiplexer servers kept on purpose are left (--end-multiplexers ends them)"

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
	if len(r.all) == 0 && len(r.oc.Actions) == 0 && len(r.scopeLeft) == 0 {
		// Nothing was signalled: a scope that held only what is kept.
		switch {
		case len(r.oc.Kept) > 0:
			// The login is over; what is left is kept by design.
			r.oc.Result, r.oc.Reason = Ended, onlyKept
		case len(r.oc.Refused) > 0:
			r.oc.Result, r.oc.Reason = Refused, "no process of the session could be verified"
		default:
			r.oc.Result, r.oc.Reason = Ended, "the session had already ended"
		}
		return
	}
	for _, h := range r.all {
		if !h.Exited() && !slices.Contains(r.oc.Survivors, h.Member.PID) {
			r.oc.Survivors = append(r.oc.Survivors, h.Member.PID)
		}
	}
	for _, pid := range r.scopeLeft {
		if !slices.Contains(r.oc.Survivors, pid) {
			r.oc.Survivors = append(r.oc.Survivors, pid)
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
			// Verified: keep the pidfd if the budget allows, else keep
			// only the identity (see Handle).
			if r.fds.tryAcquire() {
				h.budget = r.fds
			} else {
				h.detach()
			}
			hs = append(hs, h)
			r.all = append(r.all, h)
		case errors.Is(err, ErrGone):
			if !r.gone[m.Ident] {
				r.gone[m.Ident] = true
				r.oc.Gone = append(r.oc.Gone, Exit{PID: m.PID, Comm: m.Comm})
			}
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
	still := make(map[*Handle]bool, len(left))
	for _, h := range left {
		still[h] = true
	}
	for _, h := range hs {
		if !still[h] && !r.gone[h.Member.Ident] {
			r.gone[h.Member.Ident] = true
			r.oc.Gone = append(r.oc.Gone, Exit{PID: h.Member.PID, Comm: h.Member.Comm, After: time.Since(r.start)})
		}
	}
	return left
}

// sweep ends what the sessions left behind: nohup jobs and jobs that
// ignore SIGHUP and SIGTERM, found by one /proc scan per round for every
// session. A scan is only a lead, never proof: a PID, and with it a
// session id, is free again once its processes are gone, and anyone may
// take it — a root process calling setsid() under a dead leader's PID
// carries the kicked session's id (issue 8). So a process the scan finds
// is signalled only if it is provably the session's (see leftover): seen
// at discovery, or descending (in the scan's parent links) from a process
// that is, or in the session of a leader the kick verified, started while
// that leader provably held its PID (sessionLeaders). The others are
// reported as refused.
func sweep(ctx context.Context, runners []*runner, o Options) {
	var live []*runner
	bySID := map[int][]*runner{}
	for _, r := range runners {
		if r.oc.Result != "" {
			continue
		}
		live = append(live, r)
		for _, sid := range r.oc.Session.SIDs {
			if sid > 1 {
				bySID[sid] = append(bySID[sid], r)
			}
		}
	}
	if len(live) == 0 {
		return
	}
	for _, r := range live {
		// A session listed before systemd made its scope has one now.
		r.lateScope()
	}
	byIdent := map[proc.Ident][]*runner{}
	for _, r := range live {
		for id := range r.known {
			byIdent[id] = append(byIdent[id], r)
		}
	}
	for round := 0; round < 5 && ctx.Err() == nil; round++ {
		leaders := sessionLeaders(live)
		snap, err := proc.Scan(o.ProcRoot)
		if err != nil {
			for _, r := range live {
				r.oc.Reason = "sweep: " + err.Error()
			}
			return
		}
		owners := ownersOf(snap, func(p *proc.Process) []*runner {
			if rs := byIdent[p.Ident()]; len(rs) > 0 {
				return rs
			}
			return leaders.of(p)
		})
		found := map[*runner][]session.Member{}
		for _, p := range snap.Procs {
			if p.Zombie() || p.PID <= 1 || p.KernelThread() {
				continue
			}
			id := p.Ident()
			rs := owners[p.PID]
			for _, r := range bySID[p.SID] {
				if !slices.Contains(rs, r) {
					rs = append(rs, r)
				}
			}
			for _, r := range rs {
				if r.swept[id] || r.handled(id) {
					continue
				}
				if why := r.leftover(p, slices.Contains(owners[p.PID], r)); why != "" {
					r.swept[id] = true
					if r.inScope(p.PID) {
						// The scope decides (settleScope): what logind
						// put in the session's scope is the session's,
						// root's PAM helpers included.
						continue
					}
					r.oc.Refused = append(r.oc.Refused, Refusal{PID: p.PID, Reason: fmt.Sprintf(
						"pid %d (%s, uid %d, started at tick %d) is not the session's: %s; not signalled",
						p.PID, p.Comm, p.UID, p.Start, why)})
					continue
				}
				r.known[id] = true
				for _, x := range byIdent[id] {
					if x != r {
						x.known[id] = true
					}
				}
				byIdent[id] = append(byIdent[id], r)
				found[r] = append(found[r], session.Member{Ident: id, UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: session.RoleMember})
			}
		}
		if len(found) == 0 {
			return
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, o.Concurrency)
		for r, ms := range found {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				for _, m := range ms {
					r.swept[m.Ident] = true
					delete(r.seen, m.PID) // a reused PID is a new process: verify it afresh
				}
				hs := r.open(ms)
				r.signal(hs, unix.SIGKILL)
				r.wait(hs, 2*time.Second)
				// The sweep's handles are done with: give the
				// descriptors back before the next round.
				for _, h := range hs {
					if !h.detached {
						h.detach()
					}
				}
			})
		}
		wg.Wait()
	}
}

// sidLeader is a session leader the kick holds a handle on (a shell, a
// login, sshd's monitor) and the last tick it provably held its PID.
type sidLeader struct {
	ident   proc.Ident
	aliveAt uint64
	runners []*runner
}

type leaderSet map[int]*sidLeader

// sessionLeaders proves, just before a sweep scan, which of the kicked
// sessions' leaders still hold their PIDs (a signal 0 through their
// handles; a zombie holds its PID too), keyed by session id. While a
// leader holds its PID no other process can get that PID, nor create a
// session with that id, and a process joins a session only by being
// forked inside it: so a process with the leader's session id that
// started before the leader's aliveAt (or in its tick, see of) descends
// from the leader's session, even when its parent is gone — the child
// sshd's monitor forked after discovery and before its SIGTERM, orphaned
// by its end.
func sessionLeaders(runners []*runner) leaderSet {
	set := leaderSet{}
	for _, r := range runners {
		for _, h := range r.all {
			m := h.Member
			if m.PID <= 1 || m.PID != m.SID {
				continue
			}
			h.probe()
			if h.aliveAt == 0 {
				continue
			}
			l := set[m.PID]
			if l == nil || l.ident != m.Ident {
				l = &sidLeader{ident: m.Ident}
				set[m.PID] = l
			}
			l.aliveAt = max(l.aliveAt, h.aliveAt)
			if !slices.Contains(l.runners, r) {
				l.runners = append(l.runners, r)
			}
		}
	}
	return set
}

// of returns the runners whose verified leader's session p provably
// belongs to (see sessionLeaders), or nil. The leader itself is not
// included: it is a member the kick signals in order, and what it forks
// outside its session is not proven by this.
//
// Start times are clock ticks (10 ms): a process that started in the
// very tick of the proof may have started just after it. It is still the
// session's where PIDs are not reused within a tick: the kernel hands a
// freed PID out again only once its allocation has wrapped around
// pid_max, and no host forks tens of thousands of times in 10 ms (a
// monitor forks its child and gets its SIGTERM within one tick).
func (set leaderSet) of(p *proc.Process) []*runner {
	l := set[p.SID]
	if l == nil || p.Ident() == l.ident || p.Start > l.aliveAt || p.Start == l.aliveAt && !sameTickProves() {
		return nil
	}
	return l.runners
}

// sameTickProves reports whether a start in the tick of a proof counts
// (see leaderSet.of): pid_max is at least the kernel's default minimum,
// 32768. A host that lowered it below that gets the strict bound.
var sameTickProves = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && n >= 32768
})

// handled reports whether the kick already holds a handle on id (it was
// signalled, or refused, as a member).
func (r *runner) handled(id proc.Ident) bool {
	_, ok := r.handles[id]
	return ok
}

// leftover says why a process a sweep scan found must not be signalled as
// the session's, or "". It must be known (seen at discovery), or proven
// the session's (descends: from a known process through the scan's parent
// links, or in a verified leader's session, see sessionLeaders), and run
// as the session's user — never as root unless discovery listed it. A
// process the session forked during the kick (the user's sshd a monitor
// forks in the middle of a login, a job a shell that ignores SIGHUP
// starts before its SIGKILL) is the session's as much as one discovery
// saw. One forked by a leader in its last instant, after the last signal
// that reached it, is not provably so: it is refused and reported.
func (r *runner) leftover(p *proc.Process, descends bool) string {
	id := p.Ident()
	s := r.oc.Session
	switch {
	case (p.Comm == "sshd" || p.Comm == "sshd-session") && (p.UID == 0 || p.EUID == 0):
		// The listener and the monitors: the session's own end in
		// kickOne, in order; another connection's are never its.
		return "a root sshd process is never swept"
	case r.known[id]:
		return ""
	case !descends:
		return "discovery did not see it, and it descends from no process discovery saw"
	case s.UID <= 0:
		return fmt.Sprintf("discovery did not list it, and the session's user is uid %d: only listed members are signalled", s.UID)
	case p.UID != s.UID || p.EUID != s.UID:
		return fmt.Sprintf("it runs as uid %d/%d, not as the session's user %d", p.UID, p.EUID, s.UID)
	}
	return ""
}

// ownersOf maps each process of snap to the runners one of whose proven
// processes (rootOf: known, or in a verified leader's session) it is or
// descends from, by walking parent links once per process (memoized:
// linear in the table).
func ownersOf(snap *proc.Snapshot, rootOf func(*proc.Process) []*runner) map[int][]*runner {
	memo := make(map[int][]*runner, len(snap.Procs))
	done := make(map[int]bool, len(snap.Procs))
	var chain []int
	for pid := range snap.Procs {
		chain = chain[:0]
		var owners []*runner
		for cur := pid; ; {
			if done[cur] {
				owners = memo[cur]
				break
			}
			p := snap.Procs[cur]
			if p == nil || cur <= 1 || slices.Contains(chain, cur) {
				break
			}
			chain = append(chain, cur)
			if rs := rootOf(p); len(rs) > 0 {
				owners = rs
				break
			}
			// A child starts after its parent: a parent that started
			// later is a reused PID, not this process's parent.
			if pp := snap.Procs[p.PPID]; pp != nil && pp.Start > p.Start {
				break
			}
			cur = p.PPID
		}
		for _, c := range chain {
			done[c] = true
			if rs := rootOf(snap.Procs[c]); len(rs) > 0 {
				// A proven process owns itself; those below it inherit.
				memo[c] = rs
				continue
			}
			memo[c] = owners
		}
	}
	return memo
}
