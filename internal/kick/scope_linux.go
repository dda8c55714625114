package kick

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/cgroup"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// Action is a step taken on a whole session or user rather than on one
// verified process: a logind call or a cgroup.kill.
type Action struct {
	Via    string    `json:"via"`    // "logind" or "cgroup"
	Target string    `json:"target"` // "session 5", "/user.slice/user-1000.slice"
	Signal string    `json:"signal"`
	At     time.Time `json:"at"`
	Result string    `json:"result"` // "done", "would do" (dry run) or the error
}

// Kept is a process of the session that the kick leaves running on
// purpose: a detached multiplexer server and what runs under it.
type Kept struct {
	PID    int    `json:"pid"`
	Comm   string `json:"comm"`
	Reason string `json:"reason"`
}

// maxKept bounds the kept processes an outcome lists.
const maxKept = 200

// multiplexers are the programs whose servers outlive the login that
// started them on purpose ("detach").
var multiplexers = map[string]bool{"tmux": true, "screen": true}

// multiplexerServer reports whether m is a tmux or screen server: a
// session leader (servers daemonize) whose executable is a root-owned
// tmux or screen binary in a system directory that nobody else can write.
// Its name is only a first filter: a user can call anything "tmux: server",
// but cannot make a root-owned /usr/bin/tmux run their own code.
func multiplexerServer(procRoot string, m session.Member) bool {
	if m.PID != m.SID || m.Role == session.RoleServer || m.Role == session.RoleMonitor || m.Role == session.RoleSSHD || m.Role == session.RoleLogin {
		return false
	}
	// The server, not a client: tmux names its server "tmux: server";
	// screen's server rewrites its argv[0] to SCREEN.
	switch m.Comm {
	case "tmux: server":
	case "screen":
		if !strings.HasPrefix(proc.ReadCmdline(procRoot, m.PID), "SCREEN") {
			return false
		}
	default:
		return false
	}
	exe, err := proc.Exe(procRoot, m.PID)
	if err != nil || !multiplexers[filepath.Base(exe)] {
		return false
	}
	switch filepath.Dir(exe) {
	case "/usr/bin", "/bin", "/usr/local/bin":
	default:
		return false
	}
	for _, p := range []string{exe, filepath.Dir(exe)} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil || st.Uid != 0 || st.Mode&0o022 != 0 {
			return false
		}
	}
	return true
}

// keepMultiplexers splits the session's members into those the kick ends
// and the multiplexer servers it keeps, with everything that runs under
// them (their panes). With EndMultiplexers nothing is kept.
func (r *runner) keepMultiplexers(s *session.Session) []session.Member {
	if r.o.EndMultiplexers {
		return s.Members
	}
	var candidates []session.Member
	for _, m := range s.Members {
		if multiplexerServer(r.o.ProcRoot, m) {
			candidates = append(candidates, m)
		}
	}
	if len(candidates) == 0 {
		return s.Members
	}
	member := make(map[int]bool, len(s.Members))
	parent := make(map[int]int, len(s.Members))
	for _, m := range s.Members {
		member[m.PID] = true
		if p, err := proc.Read(r.o.ProcRoot, m.PID); err == nil && p.Start == m.Start {
			parent[m.PID] = p.PPID
		}
	}
	// A server detaches from the login that started it: its parent is
	// no member. A client (the login's own `tmux attach`, its leader) is
	// the login's child and ends with it.
	serverOf := map[int]session.Member{}
	for _, m := range candidates {
		if pp, ok := parent[m.PID]; ok && !member[pp] {
			serverOf[m.PID] = m
			r.keptIdent[m.Ident] = true
		}
	}
	if len(serverOf) == 0 {
		return s.Members
	}
	under := func(pid int) (session.Member, bool) {
		for range 4096 {
			if srv, ok := serverOf[pid]; ok {
				return srv, true
			}
			pp, ok := parent[pid]
			if !ok || pp <= 1 {
				break
			}
			pid = pp
		}
		return session.Member{}, false
	}
	var rest []session.Member
	for _, m := range s.Members {
		srv, ok := under(m.PID)
		if !ok {
			rest = append(rest, m)
			continue
		}
		r.keptIdent[m.Ident] = true
		reason := fmt.Sprintf("runs under the multiplexer server %d (%s) started in this session: kept, as a logout keeps it; --end-multiplexers ends it", srv.PID, srv.Comm)
		if m.PID == srv.PID {
			reason = "multiplexer server started in this session: kept, as a logout keeps it; --end-multiplexers ends it"
		}
		r.keep(m.PID, m.Comm, reason)
	}
	return rest
}

func (r *runner) keep(pid int, comm, reason string) {
	if len(r.oc.Kept) < maxKept {
		r.oc.Kept = append(r.oc.Kept, Kept{PID: pid, Comm: comm, Reason: reason})
	}
}

func (r *runner) action(via, target string, sig unix.Signal, err error) {
	res := "done"
	if err != nil {
		res = err.Error()
	}
	r.oc.Actions = append(r.oc.Actions, Action{Via: via, Target: target, Signal: SignalName(sig), At: time.Now(), Result: res})
}

// hierarchy is the cgroup v2 hierarchy, looked up once per kick.
var hierarchy = sync.OnceValues(func() (cgroup.Hierarchy, error) { return cgroup.Find("/proc") })

func findHierarchy(procRoot string) (cgroup.Hierarchy, bool) {
	if procRoot != "/proc" {
		h, err := cgroup.Find(procRoot)
		return h, err == nil
	}
	h, err := hierarchy()
	return h, err == nil
}

// groupDir is the directory of cgroup path in the hierarchy, when that
// group exists.
func groupDir(procRoot, path string) (string, bool) {
	h, ok := findHierarchy(procRoot)
	if !ok {
		return "", false
	}
	dir, err := h.Dir(path)
	if err != nil {
		return "", false
	}
	st, err := os.Stat(dir)
	return dir, err == nil && st.IsDir()
}

// findScope sets the session's scope: its logind session's
// session-ID.scope under the user's slice, when that group exists.
func (r *runner) findScope(s *session.Session) {
	if s.LogindID == "" || s.UID <= 0 {
		return
	}
	path, ok := cgroup.SessionScope(s.UID, s.LogindID)
	if !ok {
		return
	}
	if dir, ok := groupDir(r.o.ProcRoot, path); ok {
		r.scopePath, r.scopeDir = path, dir
		r.oc.Scope = path
	}
}

// lateScope looks the scope up again when discovery found none: a
// session caught while it was being born, listed by logind before systemd
// had made its scope (sshd's monitor waits in pam_systemd for it), has one
// once the kick has run, holding whatever the login started meanwhile.
func (r *runner) lateScope() {
	if r.scopeDir == "" && r.oc.Result == "" {
		r.findScope(r.oc.Session)
	}
}

// inScope reports whether pid is in the session's logind scope.
func (r *runner) inScope(pid int) bool {
	if r.scopeDir == "" {
		return false
	}
	id, ok := proc.LogindSession(r.o.ProcRoot, pid)
	return ok && id == r.oc.Session.LogindID
}

// killSession asks logind to signal every process of the session's scope
// (the multiplexer servers included) and records it.
func (r *runner) killSession(ctx context.Context, sig unix.Signal) {
	id := r.oc.Session.LogindID
	if r.o.Logind == nil || id == "" {
		return
	}
	err := r.o.Logind.KillSession(ctx, id, "all", syscall.Signal(sig))
	r.action("logind", "session "+id, sig, err)
}

// scopeMember returns pid as a member of the scope, verified through a
// pidfd: it is in the scope after the pidfd was opened, so it is not a
// reused PID.
func (r *runner) scopeMember(pid int) (*Handle, *proc.Process, error) {
	p, err := proc.Read(r.o.ProcRoot, pid)
	if err != nil {
		return nil, nil, ErrGone
	}
	if p.Zombie() || p.KernelThread() || p.PID <= 1 {
		return nil, p, ErrGone
	}
	m := session.Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: session.RoleScope}
	h, err := Open(r.o.ProcRoot, m)
	if err != nil {
		return nil, p, err
	}
	if id, ok := proc.LogindSession(r.o.ProcRoot, pid); id != r.oc.Session.LogindID {
		h.Close()
		if !ok {
			return nil, p, ErrGone
		}
		return nil, p, fmt.Errorf("pid %d moved to session %s: %w", pid, id, ErrIdentityChanged)
	}
	if !h.alive() {
		h.Close()
		return nil, p, ErrGone
	}
	return h, p, nil
}

// keptByAncestry reports whether p runs under a kept multiplexer server.
func (r *runner) keptByAncestry(p *proc.Process) bool {
	for range 4096 {
		if r.keptIdent[p.Ident()] {
			return true
		}
		if p.PPID <= 1 {
			return false
		}
		pp, err := proc.Read(r.o.ProcRoot, p.PPID)
		if err != nil || pp.Start > p.Start {
			return false
		}
		p = pp
	}
	return false
}

// settleScope ends what is left in the session's scope once its listed
// processes are gone — everything but the kept multiplexer servers and
// what runs under them. Each process is verified (a pidfd, then its
// cgroup) before its SIGKILL; a scope is root's to fill, so a process in
// it is the session's, whoever it runs as.
func (r *runner) settleScope() {
	if r.scopeDir == "" || r.oc.Result != "" {
		return
	}
	for round := 0; round < 5; round++ {
		pids, err := cgroup.Procs(r.scopeDir)
		if err != nil {
			return // the scope is gone: logind removed it once it emptied
		}
		type found struct {
			h *Handle
			p *proc.Process
		}
		var in []found
		for _, pid := range pids {
			if pid == os.Getpid() {
				continue
			}
			h, p, err := r.scopeMember(pid)
			switch {
			case err == nil:
			case errors.Is(err, ErrGone):
				continue
			default:
				r.oc.Refused = append(r.oc.Refused, Refusal{PID: pid, Reason: err.Error()})
				continue
			}
			in = append(in, found{h, p})
		}
		inScope := make(map[int]bool, len(in))
		for _, f := range in {
			inScope[f.p.PID] = true
		}
		for _, f := range in {
			h, p := f.h, f.p
			// A server discovery did not list (it started after the
			// listing, or left the login's tree) is still a server.
			if !r.o.EndMultiplexers && !r.keptIdent[p.Ident()] && !inScope[p.PPID] && multiplexerServer(r.o.ProcRoot, h.Member) {
				r.keptIdent[p.Ident()] = true
				r.keep(p.PID, p.Comm, "multiplexer server started in this session: kept, as a logout keeps it; --end-multiplexers ends it")
			}
		}
		var hs []*Handle
		for _, f := range in {
			h, p := f.h, f.p
			if r.keptByAncestry(p) {
				if !r.keptIdent[p.Ident()] {
					r.keptIdent[p.Ident()] = true
					r.keep(p.PID, p.Comm, "runs under a multiplexer server kept in this session's scope")
				}
				h.Close()
				continue
			}
			hs = append(hs, h)
			r.all = append(r.all, h)
		}
		if len(hs) == 0 {
			return
		}
		r.signal(hs, unix.SIGKILL)
		r.wait(hs, 2*time.Second)
	}
}

// endScope ends the whole scope, multiplexers included: cgroup.kill where
// the kernel has it, logind's KillSession otherwise, and waits until the
// scope holds nothing.
func (r *runner) endScope(ctx context.Context) {
	if r.scopeDir == "" || r.oc.Result != "" {
		return
	}
	if pop, err := cgroup.Populated(r.scopeDir); err != nil || !pop {
		return
	}
	err := cgroup.Kill(r.scopeDir)
	switch {
	case errors.Is(err, cgroup.ErrNoKill) && r.o.Logind != nil:
		r.killSession(ctx, unix.SIGKILL)
	default:
		r.action("cgroup", r.scopePath, unix.SIGKILL, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for d := time.Millisecond; ; d = min(2*d, 50*time.Millisecond) {
		pop, err := cgroup.Populated(r.scopeDir)
		if err != nil || !pop {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(d)
	}
	pids, _ := cgroup.Procs(r.scopeDir)
	for _, pid := range pids {
		if p, err := proc.Read(r.o.ProcRoot, pid); err == nil && !p.Zombie() {
			r.scopeLeft = append(r.scopeLeft, pid)
		}
	}
}

// muxServersByEnv finds, where no scope ties them to the session, the
// multiplexer servers the session's user started from it: their
// environment names the session's terminal (SSH_TTY) or connection
// (SSH_CONNECTION). The environment is the user's to forge, but it only
// ever selects the user's own servers, never another user's process.
func (r *runner) muxServersByEnv(s *session.Session, scan func() (*proc.Snapshot, error)) []session.Member {
	if !r.o.EndMultiplexers || r.scopeDir != "" || s.UID <= 0 {
		return nil
	}
	snap, err := scan()
	if err != nil {
		return nil
	}
	// A server started before this login is another login's, whatever
	// its environment says: terminals and ports are reused.
	var since uint64
	have := map[int]bool{}
	for _, m := range s.Members {
		have[m.PID] = true
		if m.Role == session.RoleLeader || m.Role == session.RoleSSHD || m.Role == session.RoleMonitor {
			if since == 0 || m.Start < since {
				since = m.Start
			}
		}
	}
	if since == 0 {
		return nil
	}
	var out []session.Member
	for _, p := range snap.Procs {
		if p.UID != s.UID || p.PID != p.SID || have[p.PID] || p.Zombie() || p.Start >= r.began || p.Start < since {
			continue
		}
		m := session.Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: session.RoleMember}
		if !multiplexerServer(r.o.ProcRoot, m) || !fromSession(r.o.ProcRoot, p.PID, s) {
			continue
		}
		out = append(out, m)
		for _, d := range snap.Descendants(p.PID) {
			if !have[d.PID] && !d.Zombie() && d.UID == s.UID {
				have[d.PID] = true
				out = append(out, session.Member{Ident: d.Ident(), UID: d.UID, SID: d.SID, TTY: d.TTY, Comm: d.Comm, Role: session.RoleMember})
			}
		}
	}
	return out
}

func fromSession(procRoot string, pid int, s *session.Session) bool {
	if s.TTY != "" {
		if v, err := proc.Getenv(procRoot, pid, "SSH_TTY"); err == nil && v == "/dev/"+s.TTY {
			return true
		}
	}
	if s.Port > 0 && s.Addr != "" {
		if v, err := proc.Getenv(procRoot, pid, "SSH_CONNECTION"); err == nil {
			f := strings.Fields(v)
			if len(f) == 4 && f[0] == s.Addr && f[1] == strconv.Itoa(s.Port) {
				return true
			}
		}
	}
	return false
}

// finishScopes settles every kicked session's scope after the sweep.
func finishScopes(ctx context.Context, runners []*runner, o Options) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.Concurrency)
	for _, r := range runners {
		r.lateScope()
		if r.scopeDir == "" || r.oc.Result != "" {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if o.EndMultiplexers {
				r.endScope(ctx)
			} else {
				r.settleScope()
			}
		})
	}
	wg.Wait()
}
