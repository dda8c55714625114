package engine

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sshkick/sshkick/internal/audit"
	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// MinUserUID is the lowest uid --all-processes acts on without Force
// (UID_MIN in login.defs): lower uids are system accounts.
const MinUserUID = kick.MinUserUID

// maxLeftovers bounds the leftover processes a report lists.
const maxLeftovers = 200

// KickRequest asks for sessions (and, with AllProcesses, users) to end.
type KickRequest struct {
	// Targets are session ids, terminals, PIDs or user names; Filter
	// narrows them or selects on its own.
	Targets []string
	Filter  session.Filter
	// Signal is the first signal (SIGHUP when 0).
	Signal syscall.Signal
	// Wait is how long a session has to end after the first signal
	// before SIGKILL.
	Wait       time.Duration
	NoEscalate bool
	// EndMultiplexers also ends the tmux/screen servers started from the
	// sessions (kept by default, as a logout keeps them).
	EndMultiplexers bool
	// AllProcesses also ends every other process of the users named.
	AllProcesses bool
	DryRun       bool
	// Force allows the caller's own session and system accounts.
	Force bool
	// Message warns the sessions before the kick; Delay waits after the
	// warning (with reminders at 1m and 10s left). Cancelling ctx during
	// the delay calls the kick off and tells the users.
	Message    string
	Delay      time.Duration
	MsgTimeout time.Duration
	// SpareOnInput spares a warned session whose terminal reads input
	// before the deadline (idle logouts).
	SpareOnInput bool
	AuditLog     string
	// Confirm, when set, is asked once the targets are known and before
	// anything is done; false cancels (ErrCancelled).
	Confirm func(ctx context.Context, c Confirmation) bool
	// Notify gets progress notes for a person, already sanitized.
	Notify func(note string)
	// By names who asks, for the audit trail (e.g. a policy rule).
	By string
}

// Confirmation is what a kick is about to end.
type Confirmation struct {
	Sessions []Ref
	Users    []UserRef
}

// UserRef names a user whose every process is to end.
type UserRef struct {
	Name string `json:"name"`
	UID  int    `json:"uid"`
}

// KickReport is what a kick did (the published form of `kick --json`).
type KickReport struct {
	DryRun    bool            `json:"dry_run"`
	Sessions  []KickedSession `json:"sessions"`
	Refused   []Refusal       `json:"refused"`
	Skipped   []Refusal       `json:"skipped"`
	Unmatched []string        `json:"unmatched"`
	Users     []KickedUser    `json:"users"`
	Warnings  []Delivery      `json:"warnings"`
	// Leftovers are processes of a kicked user that no session holds
	// (`setsid -f` jobs): a session kick does not reach them.
	Leftovers []Leftover `json:"leftovers"`
	Notes     []string   `json:"notes"`
	// Failed says something could not be done: a target refused, a
	// session or user survived.
	Failed bool `json:"-"`
}

func (r KickRequest) validate() error {
	switch {
	case r.Wait < 0:
		return badRequest("--wait must not be negative")
	case r.Delay < 0:
		return badRequest("--delay must not be negative")
	case (r.Message != "" || r.Delay > 0) && r.MsgTimeout <= 0:
		return badRequest("--msg-timeout must be positive")
	case len(r.Targets) == 0 && r.Filter.Empty():
		return badRequest("nothing to kick: name a session, terminal, PID or user, or select with --user, --idle, --from or --kind")
	}
	if err := checkTargets(r.Targets); err != nil {
		return err
	}
	if r.AllProcesses && !hasUserTarget(r.Targets, r.Filter) {
		return badRequest("--all-processes needs a user: 'sshkick kick alice --all-processes' or --user alice")
	}
	return nil
}

// Kick ends the selected sessions: it resolves the targets, refuses what
// must not be touched, audits its intent, warns and waits when asked, then
// has the Signaller end each session (verify, signal, wait, escalate,
// sweep) and audits each outcome.
//
// A kick is never half done silently: once the first signal is sent the
// kick runs to its end whatever happens to ctx, and its records are
// written; if the intent cannot be recorded, nothing is signalled.
func (e *Engine) Kick(ctx context.Context, r KickRequest) (*KickReport, error) {
	if r.Signal == 0 {
		r.Signal = syscall.SIGHUP
	}
	if r.MsgTimeout == 0 {
		r.MsgTimeout = termmsg.DefaultTimeout
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if !r.DryRun {
		if e.c.Env.EUID != 0 {
			return nil, ErrNotRoot
		}
		if err := e.c.Signaller.Check(); err != nil {
			return nil, err
		}
	}
	res, err := e.discover(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.checkUsers(r.Filter, res.Sessions); err != nil {
		return nil, err
	}
	rep := &KickReport{DryRun: r.DryRun, Sessions: []KickedSession{}, Users: []KickedUser{}, Warnings: []Delivery{},
		Leftovers: []Leftover{}, Notes: cleanStrings(res.Notes)}
	me := SelfFrom(res.Proc, e.c.Env.PID)
	sel := Resolve(r.Targets, r.Filter, res.Sessions, me, r.Force, e.lookupUID)
	var users []UserTarget
	if r.AllProcesses {
		for _, u := range e.userTargets(sel, r.Filter) {
			if why := e.userRefusal(u.UID, r.Force); why != "" {
				sel.Refused = append(sel.Refused, Refusal{Target: u.Name, Reason: why})
				continue
			}
			users = append(users, u)
		}
	}
	rep.Refused, rep.Skipped, rep.Unmatched = cleanRefusals(sel.Refused), cleanRefusals(sel.Skipped), cleanStrings(sel.Unmatched)

	trail, err := e.openTrail(r.AuditLog, r.DryRun, &rep.Notes)
	if err != nil {
		return rep, err
	}
	defer trail.Close()
	if err := auditRefusals(trail, rep.Refused, rep.Skipped, r.DryRun); err != nil && !r.DryRun {
		return rep, &AuditError{Err: err}
	}
	if len(sel.Sessions) == 0 && len(users) == 0 {
		if len(sel.Refused) > 0 {
			rep.Failed = true
			return rep, nil
		}
		return rep, ErrNoMatch
	}
	sessions := sel.Sessions
	if r.Confirm != nil {
		c := Confirmation{Sessions: refs(sessions)}
		for _, u := range users {
			c.Users = append(c.Users, UserRef{Name: clean(u.Name), UID: u.UID})
		}
		if !r.Confirm(ctx, c) {
			return rep, fmt.Errorf("cancelled: nothing was done")
		}
	}
	intent := IntentEvent{Action: "kick", DryRun: r.DryRun, Sessions: refs(sessions), Signal: SignalName(r.Signal), DelayMS: r.Delay.Milliseconds()}
	for _, u := range users {
		intent.Users = append(intent.Users, clean(u.Name))
	}
	if err := trail.Record(intent); err != nil {
		if !r.DryRun {
			return rep, &AuditError{Err: err}
		}
		rep.Notes = append(rep.Notes, clean("dry run not audited: "+err.Error()))
	}
	var auditErr error
	keep := func(err error) {
		if err != nil && auditErr == nil {
			auditErr = err
		}
	}

	if r.Message != "" || r.Delay > 0 {
		if r.DryRun {
			rep.Warnings = wouldSend(sessions, "warning")
		} else {
			cd := &countdown{e: e, trail: trail, text: r.Message, delay: r.Delay,
				// The user is about to lose the session: telling them is in
				// their interest, so the warning goes through 'mesg n'.
				opt:          termmsg.Options{Timeout: r.MsgTimeout, Force: true},
				spareOnInput: r.SpareOnInput, notify: r.Notify}
			cr := cd.run(ctx, sessions)
			rep.Warnings = cr.deliveries
			keep(cr.auditErr)
			if cr.cancelled {
				if auditErr != nil {
					return rep, &AuditError{Err: auditErr, Done: true}
				}
				return rep, ErrCancelled
			}
			sessions = cr.due
		}
	}

	// From the first signal on, the kick runs to its end.
	kctx := context.WithoutCancel(ctx)
	opts := kick.Options{Signal: r.Signal, Wait: r.Wait, NoEscalate: r.NoEscalate, DryRun: r.DryRun,
		EndMultiplexers: r.EndMultiplexers, Logind: e.c.Discoverer.Logind()}
	rep.Failed = len(sel.Refused) > 0
	if len(sessions) > 0 {
		outcomes, err := e.c.Signaller.Kick(kctx, sessions, opts)
		if err != nil {
			rep.Failed = true
			return rep, err
		}
		for i := range outcomes {
			ks := viewOutcome(&sessions[i], &outcomes[i])
			rep.Sessions = append(rep.Sessions, ks)
			keep(trail.Record(KickEvent{DryRun: r.DryRun, Target: ks.Ref, Signal: SignalName(r.Signal), WaitMS: r.Wait.Milliseconds(),
				NoEscalate: r.NoEscalate, Outcome: ks.Result, Reason: ks.Reason, Signals: ks.Signals, Gone: ks.Gone,
				Survivors: ks.Survivors, Refused: ks.Refused, Scope: ks.Scope, Actions: ks.Actions, Kept: ks.Kept,
				EndMultiplexers: r.EndMultiplexers, By: clean(r.By)}))
			if ks.Result != Ended && ks.Result != DryRun {
				rep.Failed = true
			}
		}
	}
	found := 0
	for _, u := range users {
		uo := e.c.Signaller.KillUser(kctx, u.Name, u.UID, e.primaryGID(u.UID), opts)
		ku := viewUser(&uo)
		found += len(ku.Found)
		rep.Users = append(rep.Users, ku)
		keep(trail.Record(KickUserEvent{DryRun: r.DryRun, KickedUser: ku}))
		if ku.Result != Ended && ku.Result != DryRun {
			rep.Failed = true
		}
	}
	if len(sel.Users) > 0 && !r.AllProcesses {
		rep.Leftovers = e.leftovers(kctx, sel.Users, res, r.DryRun)
		if len(rep.Leftovers) > 0 {
			keep(trail.Record(LeftoverEvent{Processes: rep.Leftovers}))
			rep.Notes = append(rep.Notes, leftoverNotes(rep.Leftovers)...)
		}
	}
	if auditErr != nil && !r.DryRun {
		return rep, &AuditError{Err: auditErr, Done: true}
	}
	if len(rep.Sessions) == 0 && len(users) > 0 && found == 0 && len(sel.Sessions) == 0 {
		return rep, fmt.Errorf("%w: no session, and no process of %s", ErrNoMatch, userNames(users))
	}
	return rep, nil
}

func userNames(us []UserTarget) string {
	names := make([]string, len(us))
	for i, u := range us {
		names[i] = u.Name
	}
	return strings.Join(names, ", ")
}

// leftovers lists the processes of the named users that belong to no
// session after the kick (before it, in a dry run): jobs that left their
// session with `setsid -f` and were reparented, which no session kick can
// reach. Where a cgroup tracks sessions (logind), there are none.
func (e *Engine) leftovers(ctx context.Context, users []UserTarget, before *session.Result, dryRun bool) []Leftover {
	res := before
	if !dryRun {
		after, err := e.discover(ctx)
		if err != nil {
			return nil
		}
		res = after
	}
	if res.Proc == nil {
		return nil
	}
	inSession := map[int]bool{}
	for i := range res.Sessions {
		for _, p := range res.Sessions[i].PIDs {
			inSession[p] = true
		}
	}
	byUID := map[int]string{}
	for _, u := range users {
		if u.UID > 0 {
			byUID[u.UID] = u.Name
		}
	}
	var out []Leftover
	for _, p := range res.Proc.Procs {
		name, ok := byUID[p.UID]
		if !ok || inSession[p.PID] || p.Zombie() || p.KernelThread() || p.PID == e.c.Env.PID {
			continue
		}
		cmd := res.Proc.Cmdline(p.PID)
		if cmd == "" {
			cmd = p.Comm
		}
		out = append(out, Leftover{User: clean(name), UID: p.UID, PID: p.PID, Command: clean(cmd)})
	}
	slices.SortFunc(out, func(a, b Leftover) int { return a.PID - b.PID })
	if len(out) > maxLeftovers {
		out = out[:maxLeftovers]
	}
	return out
}

func leftoverNotes(ls []Leftover) []string {
	count := map[string]int{}
	var order []string
	for _, l := range ls {
		if count[l.User] == 0 {
			order = append(order, l.User)
		}
		count[l.User]++
	}
	var out []string
	for _, u := range order {
		out = append(out, fmt.Sprintf("%d process(es) of %s outside any session remain; 'sshkick kick %s --all-processes' ends them", count[u], u, u))
	}
	return out
}

func hasUserTarget(args []string, flt session.Filter) bool {
	if len(flt.Users) > 0 {
		return true
	}
	for _, a := range args {
		if _, err := strconv.Atoi(a); err != nil && !strings.ContainsAny(a, "/:") {
			return true
		}
	}
	return false
}

// userTargets are the users named as targets or with --user.
func (e *Engine) userTargets(sel Selection, flt session.Filter) []UserTarget {
	seen := map[int]bool{}
	var out []UserTarget
	add := func(u UserTarget) {
		if !seen[u.UID] {
			seen[u.UID] = true
			out = append(out, u)
		}
	}
	for _, u := range sel.Users {
		add(u)
	}
	for _, name := range flt.Users {
		if uid, err := strconv.Atoi(name); err == nil {
			n, _, ok := e.c.Env.LookupUID(uid)
			if !ok {
				n = name
			}
			add(UserTarget{Name: n, UID: uid})
			continue
		}
		if uid, ok := e.lookupUID(name); ok {
			add(UserTarget{Name: name, UID: uid})
		}
	}
	return out
}

// userRefusal says why every process of uid must not be ended, or "".
func (e *Engine) userRefusal(uid int, force bool) string {
	switch {
	case uid == 0:
		return "uid 0 is root: every process of root is never killed"
	case uid < MinUserUID && !force:
		return fmt.Sprintf("uid %d is a system account (below %d): use --force if you really mean it", uid, MinUserUID)
	case uid == e.c.Env.EUID && !force:
		return "this is the user sshkick runs as: use --force to end your own processes"
	case e.c.Env.SudoUID != "" && e.c.Env.SudoUID == strconv.Itoa(uid) && !force:
		return "this is your own user (you ran sudo as it): use --force to end your own processes"
	}
	return ""
}

func (e *Engine) primaryGID(uid int) int {
	if _, gid, ok := e.c.Env.LookupUID(uid); ok {
		return gid
	}
	return uid
}

// openTrail opens the audit trail. Without one nothing is done: every
// action must leave a record. A dry run goes on, with a note.
func (e *Engine) openTrail(path string, dryRun bool, notes *[]string) (Auditor, error) {
	a, _, err := e.c.OpenAuditor(path)
	if err != nil {
		if !dryRun {
			return nil, &AuditError{Err: err}
		}
		*notes = append(*notes, clean("dry run not audited: "+err.Error()))
		return nopAuditor{}, nil
	}
	return a, nil
}

// Discard is an audit trail that keeps nothing: for dry runs whose trail
// cannot be opened (they are said not to be audited).
var Discard Auditor = nopAuditor{}

type nopAuditor struct{}

func (nopAuditor) Record(audit.Event) error { return nil }
func (nopAuditor) Close() error             { return nil }

func auditRefusals(trail Auditor, refused, skipped []Refusal, dryRun bool) error {
	var first error
	for _, list := range []struct {
		rs      []Refusal
		skipped bool
	}{{refused, false}, {skipped, true}} {
		for _, r := range list.rs {
			if err := trail.Record(RefuseEvent{Target: r.Target, PID: r.PID, Reason: r.Reason, DryRun: dryRun, Skipped: list.skipped}); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
