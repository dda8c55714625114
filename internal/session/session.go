// Package session joins what utmp, /proc and logind each say about login
// sessions into one list: one Session per login, whichever sources saw it.
//
// The join (Join) is a pure function of its Input, so it is tested on
// fixtures without root; Discover fills an Input from the running system.
// session never signals, never writes to a terminal and never decides
// policy: kick, termmsg and policy do, with the sessions found here.
package session

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sshkick/sshkick/internal/logind"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/utmp"
)

// Kind tells login sessions apart by how they were made.
type Kind string

// Kinds of session.
const (
	SSH      Kind = "ssh"       // an SSH login with a terminal
	SSHNoTTY Kind = "ssh-notty" // SSH without a terminal: sftp, scp, `ssh host cmd`, forwards
	Console  Kind = "console"   // a login on a virtual console (ttyN)
	Pane     Kind = "pane"      // a multiplexer pane that wrote utmp (tmux, screen)
	Mosh     Kind = "mosh"      // a mosh-server terminal
	Local    Kind = "local"     // another local terminal with a utmp record (xterm, login on a pty…)
)

// Kinds lists every Kind, for validating --kind.
var Kinds = []Kind{SSH, SSHNoTTY, Console, Pane, Mosh, Local}

// Names of the sources, in the order they are listed in Session.Sources.
const (
	SourceLogind = "logind"
	SourceUtmp   = "utmp"
	SourceProc   = "proc"
)

// Where an address came from (Session.HostSource).
const (
	HostSocket = "socket"
	HostLogind = "logind"
	HostUtmp   = "utmp"
	HostEnv    = "env"
)

// Member is one process of a session, with what it does there.
type Member struct {
	proc.Ident
	UID  int    `json:"uid"`
	SID  int    `json:"sid"`
	TTY  uint64 `json:"-"`
	Comm string `json:"comm"`
	Role Role   `json:"role"`
}

// Role is what a process does in a session; kick signals each role at its
// own moment.
type Role string

// Roles of session members.
const (
	RoleMonitor Role = "monitor" // sshd's root [priv] monitor: writes the logout record
	RoleSSHD    Role = "sshd"    // the user's sshd process of the connection
	RoleLeader  Role = "leader"  // a session leader: the login shell or command
	RoleMember  Role = "member"  // any other process of the session
	RoleLogin   Role = "login"   // login(1) or another root login process utmp names
	// RoleServer is a multiplexer or mosh server that utmp names for a
	// pane: it serves other panes and sessions too, so kick never signals it.
	RoleServer Role = "server"
	// RoleScope is a process kick found in the session's logind scope
	// (cgroup) that discovery had not listed: only root can put a process
	// into a session's scope, so it is the session's.
	RoleScope Role = "scope"
)

// Session is one login session. Its published JSON form (README, "JSON
// keys") is built by the cli package, which sanitizes every string.
type Session struct {
	ID   string
	User string
	UID  int
	// TTY is "pts/3", or "" for a session without a terminal.
	TTY string
	// Host is where the session comes from as the source recorded it (utmp's
	// ut_host, which may be a name; else the peer address of sshd's socket).
	Host string
	// Addr and Port are the client's address and port when known.
	Addr string
	Port int
	// HostSource says where Host and Addr came from: HostSocket (the TCP
	// peer of sshd's socket), HostLogind (logind's RemoteHost, which sshd
	// gave PAM), HostUtmp (a utmp record), HostEnv (SSH_CONNECTION in the
	// session leader's environment), "" when there is no address.
	HostSource string
	// HostVerified is true when the address cannot have been chosen by the
	// session's user: the socket, logind, or a utmp record whose process
	// is root's (sshd's monitor, login). A user can write a utmp record
	// naming any host through the setgid utempter helper, and rewrite
	// their own environment; those addresses are listed, unverified.
	HostVerified bool
	Login        time.Time
	IdleSeconds  *int64
	// PID is the PID `who -u` shows: utmp's ut_pid; for SSH that is the
	// sshd [priv] monitor of non-root users.
	PID         int
	Kind        Kind
	Stale       bool
	StaleReason string
	Sources     []string
	Command     string
	Processes   int
	PIDs        []int
	LogindID    string

	// Members are the session's processes with their identities, for
	// kick to verify before it signals anything.
	Members []Member
	// SIDs are the kernel session ids of the session's leaders: processes
	// that keep one after the leader exits (nohup jobs) are swept by it.
	SIDs []int
	// TTYDev is the terminal's device number, 0 for none.
	TTYDev uint64
	// Idle is the idle time, valid when IdleSeconds is not nil.
	Idle time.Duration
	// IdleSource says what Idle was measured from: IdleTTY (the
	// terminal's atime, as w and logind's StopIdleSessionSec do) or
	// IdleLogind (logind's IdleHint/IdleSinceHint, for graphical sessions
	// and sessions logind reports idle without a terminal); "" when idle
	// time is unknown (no terminal).
	IdleSource string

	// LogindIdleHint and LogindIdleSince are logind's IdleHint and
	// IdleSinceHint for the session (when LogindID is set): evidence for
	// `why`; idle time uses them only without a terminal (see IdleSource).
	LogindIdleHint  bool
	LogindIdleSince time.Time
	logindType      string
}

// Idle sources.
const (
	IdleTTY    = "tty"
	IdleLogind = "logind"
)

// Alive reports whether the session is still there: its leader (the login
// shell or command) is still the process discovery saw; for a session
// without one (forwards only), its sshd or login process.
func (s *Session) Alive(procRoot string) bool {
	for _, role := range []Role{RoleLeader, RoleSSHD, RoleMonitor, RoleLogin} {
		had := false
		for _, m := range s.Members {
			if m.Role != role {
				continue
			}
			had = true
			p, err := proc.Read(procRoot, m.PID)
			if err == nil && !p.Zombie() && p.Start == m.Start {
				return true
			}
		}
		if had {
			return false
		}
	}
	return false
}

// HasSource reports whether src saw the session.
func (s *Session) HasSource(src string) bool { return slices.Contains(s.Sources, src) }

// Input is everything Join needs; Discover fills it from the system.
type Input struct {
	Now    time.Time
	Proc   *proc.Snapshot
	Utmp   []utmp.Record
	Logind []logind.Session
	// Peer returns the client address of an sshd process's connection,
	// from the socket it holds.
	Peer func(pid int) (netip.AddrPort, bool)
	// Env returns the SSH_CONNECTION client address in a session leader's
	// environment (a fallback where sockets cannot be read: not root).
	Env func(pid int) (netip.AddrPort, bool)
	// Exe returns the program a process runs (/proc/PID/exe); ok is false
	// when it cannot be read.
	Exe func(pid int) (string, bool)
	// Scope returns the logind session whose cgroup scope holds a process.
	Scope func(pid int) (string, bool)
	// TTYAtime returns the access time of a terminal ("pts/3"): the last
	// time its user's input was read, which is what idle means (w, who -u).
	TTYAtime func(tty string) (time.Time, bool)
	// UserName and UserID look up the password database.
	UserName func(uid int) string
	UserID   func(name string) (int, bool)
}

// Join builds the session list. It never drops a utmp USER_PROCESS record:
// a record that the process table does not back is listed with Stale set.
//
// Every process belongs to at most one session. A session's processes are
// its leader's descendants — a descendant that called setsid() is still
// the session's, not a login of its own — minus the subtrees of nested
// logins that have a session of their own (a screen or tmux pane with its
// utmp record), plus the processes that still carry the leader's session
// id (nohup jobs whose parent is gone) and, where logind has scopes, the
// user's processes in the session's scope (setsid -f jobs). The tree is
// laid out once; every process is walked once: linear in the process
// table, whatever its shape.
func Join(in Input) []Session {
	j := &joiner{in: in, sidIndex: map[int][]*proc.Process{}, out: make([]Session, 0, len(in.Utmp)+len(in.Logind)+8)}
	if in.Proc != nil {
		for _, p := range in.Proc.Procs {
			if !p.Zombie() {
				j.sidIndex[p.SID] = append(j.sidIndex[p.SID], p)
			}
		}
		j.claim = make(map[int]int32, len(in.Proc.Procs))
		j.reserved = map[int]bool{}
	}
	conns := j.sshConns()
	logins := j.loginLeaders()
	j.reserveUtmpLeaders()
	for _, c := range conns {
		for _, l := range c.leaders {
			j.reserved[l.PID] = true
		}
	}
	for _, l := range logins {
		j.reserved[l.leader.PID] = true
	}
	j.readForeground(conns)
	for _, c := range conns {
		j.sshSessions(c)
	}
	j.fromLogin(logins)
	j.fromUtmp()
	j.fromLogind()
	j.fromScopes()
	j.finish()
	return j.out
}

type joiner struct {
	in       Input
	out      []Session
	sidIndex map[int][]*proc.Process
	byTTY    map[string][]int
	// claim maps a process to the index in out of the session it belongs
	// to; reserved marks the leaders of sessions of their own, which the
	// walk of an enclosing session leaves to them.
	claim    map[int]int32
	reserved map[int]bool
	// utmpLeader is the leader each live utmp record was validated to.
	utmpLeader map[int]*proc.Process
	// addrOf says how to find the client address of an SSH session,
	// resolved at the end, only where no verified address was found.
	addrOf map[int]sshAddr
}

// sshAddr: the sshd processes holding the socket, and the leader whose
// environment may say SSH_CONNECTION.
type sshAddr struct {
	sshd   []*proc.Process
	leader *proc.Process
}

func (j *joiner) procs() map[int]*proc.Process {
	if j.in.Proc == nil {
		return nil
	}
	return j.in.Proc.Procs
}

func (j *joiner) cmdline(pid int) string {
	if j.in.Proc == nil {
		return ""
	}
	return j.in.Proc.Cmdline(pid)
}

// add makes p a member of session idx in role, unless a session holds it
// already (a member of a role stays in every session that names it: a
// multiplexer server serves several panes).
func (j *joiner) add(idx int, p *proc.Process, role Role) {
	if p == nil || p.Zombie() {
		return
	}
	s := &j.out[idx]
	if _, taken := j.claim[p.PID]; taken {
		if role == RoleMember || role == RoleLeader || s.hasMember(p.PID) {
			return
		}
	} else {
		j.claim[p.PID] = int32(idx)
	}
	s.Members = append(s.Members, member(p, role))
}

// walk makes root and its descendants members of session idx, leaving out
// what another session holds and the subtrees of other sessions' leaders.
// It reports whether root itself was free.
func (j *joiner) walk(idx int, root *proc.Process, role Role) bool {
	snap := j.in.Proc
	lo, hi, ok := snap.Subtree(root.PID)
	if !ok {
		return false
	}
	if _, taken := j.claim[root.PID]; taken {
		return false
	}
	order := snap.InOrder()
	s := &j.out[idx]
	for k := lo; k < hi; {
		p := order[k]
		_, taken := j.claim[p.PID]
		if taken || (k != lo && j.reserved[p.PID]) {
			_, end, _ := snap.Subtree(p.PID)
			k = end
			continue
		}
		j.claim[p.PID] = int32(idx)
		if !p.Zombie() {
			r := RoleMember
			if k == lo {
				r = role
			}
			s.Members = append(s.Members, member(p, r))
		}
		k++
	}
	return true
}

// addLeader adds a session leader, its descendants and every process that
// still carries its session id (nohup jobs whose parent is gone).
func (j *joiner) addLeader(idx int, l *proc.Process) {
	if !j.walk(idx, l, RoleLeader) {
		return
	}
	for _, p := range j.sidIndex[l.SID] {
		if _, taken := j.claim[p.PID]; !taken {
			j.walk(idx, p, RoleMember)
		}
	}
	s := &j.out[idx]
	s.SIDs = append(s.SIDs, l.SID)
}

// owner returns the session that holds pid, or nil.
func (j *joiner) owner(pid int) (int, bool) {
	i, ok := j.claim[pid]
	return int(i), ok
}

// sshdTitle is what sshd's process title says about a process.
type sshdTitle struct {
	user  string
	priv  bool     // "sshd: USER [priv]": the root monitor
	ttys  []string // "sshd: USER@pts/0,pts/1": the user's sshd process
	notty bool     // "…@notty"
}

// parseSSHDTitle reads the titles OpenSSH sets with setproctitle, under both
// the old name "sshd" and the "sshd-session" of OpenSSH 9.8 and later. The
// listener ("sshd: /usr/sbin/sshd -D [listener] …") and pre-authentication
// processes ("[net]", "[preauth]", "[accepted]") are not sessions.
func parseSSHDTitle(title string) (sshdTitle, bool) {
	rest, ok := strings.CutPrefix(title, "sshd: ")
	if !ok {
		if rest, ok = strings.CutPrefix(title, "sshd-session: "); !ok {
			return sshdTitle{}, false
		}
	}
	rest = strings.TrimSpace(rest)
	if u, ok := strings.CutSuffix(rest, " [priv]"); ok {
		if u == "" || strings.ContainsAny(u, " [@") {
			return sshdTitle{}, false
		}
		return sshdTitle{user: u, priv: true}, true
	}
	if rest == "" || strings.ContainsAny(rest, " [") {
		return sshdTitle{}, false
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		if strings.Contains(rest, "/") {
			return sshdTitle{}, false
		}
		// A connection with no session channel: only forwards (ssh -N).
		return sshdTitle{user: rest}, true
	}
	t := sshdTitle{user: rest[:at]}
	if t.user == "" {
		return sshdTitle{}, false
	}
	for _, c := range strings.Split(rest[at+1:], ",") {
		if c == "notty" {
			t.notty = true
		} else if _, ok := proc.TTYDevice(c); ok {
			t.ttys = append(t.ttys, c)
		} else {
			return sshdTitle{}, false
		}
	}
	return t, true
}

// sshConn is one SSH connection: sshd's root monitor and the user's sshd
// process (either may be missing: root logins before OpenSSH 9.8 have no
// separate monitor, and a monitor briefly has no child), and the logins it
// started: one per session channel.
type sshConn struct {
	user           string
	monitor, child *proc.Process
	leaders        []*proc.Process
}

// isSSHDComm: the names sshd's processes have.
func isSSHDComm(c string) bool { return c == "sshd" || c == "sshd-session" || c == "sshd-auth" }

// sshConns finds the SSH connections from sshd's process titles. Anyone
// can call a process "sshd: root@pts/0", so a title counts only from a
// process that really is sshd:
//   - the monitor ("USER [priv]"), and root's own sshd before OpenSSH 9.8,
//     run as root (real and effective uid 0): no user can make one;
//   - the user's sshd ("USER@pts/0", "USER@notty", "USER") is a child of
//     such a monitor, runs the same program (/proc/PID/exe, where it can
//     be read) and runs as the user its title names;
//   - the name in the title is a user of the password database (a title
//     naming "rооt" with Cyrillic o's, or a bare uid, is nobody's login).
func (j *joiner) sshConns() []*sshConn {
	procs := j.procs()
	if procs == nil {
		return nil
	}
	monitors := map[int]*sshConn{}
	var conns []*sshConn
	var children []*proc.Process
	titles := map[int]sshdTitle{}
	// A connection still authenticating already has a monitor titled
	// "USER [priv]"; its unprivileged child is titled "USER [net]" (run as
	// sshd-auth since OpenSSH 10). Such a monitor is no login.
	preauth := map[int]bool{}
	var sshds []int
	for _, p := range procs {
		if !p.Zombie() && isSSHDComm(p.Comm) {
			sshds = append(sshds, p.PID)
		}
	}
	j.in.Proc.ReadCmdlines(sshds)
	for _, p := range procs {
		if p.Zombie() || !isSSHDComm(p.Comm) {
			continue
		}
		title := j.cmdline(p.PID)
		t, ok := parseSSHDTitle(title)
		if !ok {
			if strings.HasSuffix(title, " [net]") {
				preauth[p.PPID] = true
			}
			continue
		}
		root := p.UID == 0 && p.EUID == 0
		if t.priv && !root {
			continue
		}
		if j.in.UserID != nil {
			uid, ok := j.in.UserID(t.user)
			if !ok || (!t.priv && uid != p.UID) {
				continue
			}
		}
		titles[p.PID] = t
		if t.priv {
			c := &sshConn{user: t.user, monitor: p}
			monitors[p.PID] = c
			conns = append(conns, c)
		} else {
			children = append(children, p)
		}
	}
	slices.SortFunc(children, func(a, b *proc.Process) int { return a.PID - b.PID })
	for _, p := range children {
		t := titles[p.PID]
		if c := monitors[p.PPID]; c != nil {
			if c.user == t.user && c.child == nil && j.sameProgram(p, c.monitor) {
				c.child = p
			}
			continue
		}
		// No monitor: only root's own sshd (before OpenSSH 9.8) is a
		// connection by itself; a user's "sshd" without one is forged.
		if p.UID == 0 && p.EUID == 0 {
			if parent := procs[p.PPID]; parent != nil && parent.UID == 0 {
				conns = append(conns, &sshConn{user: t.user, child: p})
			}
		}
	}
	out := conns[:0]
	for _, c := range conns {
		if c.child == nil && c.monitor != nil && preauth[c.monitor.PID] {
			continue
		}
		if c.child != nil {
			for _, d := range j.in.Proc.Children(c.child.PID) {
				if d.SID == d.PID && !d.Zombie() {
					c.leaders = append(c.leaders, d)
				}
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *sshConn) int { return a.top().PID - b.top().PID })
	return out
}

func (c *sshConn) top() *proc.Process {
	if c.monitor != nil {
		return c.monitor
	}
	return c.child
}

// sameProgram reports whether the user's sshd runs the monitor's program.
// Where either cannot be read (not root) the parentage alone decides: no
// user can make a child of root's monitor.
func (j *joiner) sameProgram(child, monitor *proc.Process) bool {
	if j.in.Exe == nil {
		return true
	}
	a, ok1 := j.in.Exe(child.PID)
	b, ok2 := j.in.Exe(monitor.PID)
	return !ok1 || !ok2 || a == b
}

func (j *joiner) sshSessions(c *sshConn) {
	snap := j.in.Proc
	top := c.top()
	uid := -1
	switch {
	case c.child != nil && c.child.UID >= 0:
		uid = c.child.UID
	case j.in.UserID != nil:
		if id, ok := j.in.UserID(c.user); ok {
			uid = id
		}
	}
	var sshd []*proc.Process
	for _, p := range []*proc.Process{c.monitor, c.child} {
		if p != nil {
			sshd = append(sshd, p)
		}
	}
	mk := func(leader *proc.Process) {
		idx := len(j.out)
		j.out = append(j.out, Session{
			User: c.user, UID: uid, PID: top.PID, Kind: SSHNoTTY,
			Login:   snap.StartTime(top.Start),
			Sources: []string{SourceProc},
		})
		if c.monitor != nil {
			j.add(idx, c.monitor, RoleMonitor)
		}
		if c.child != nil {
			j.add(idx, c.child, RoleSSHD)
		}
		if leader != nil {
			j.addLeader(idx, leader)
			s := &j.out[idx]
			if name := proc.TTYName(leader.TTY); name != "" {
				s.TTY, s.TTYDev, s.Kind = name, leader.TTY, SSH
			}
			s.Command = j.foreground(leader)
		}
		if j.addrOf == nil {
			j.addrOf = map[int]sshAddr{}
		}
		j.addrOf[idx] = sshAddr{sshd: sshd, leader: leader}
	}
	if len(c.leaders) == 0 {
		mk(nil)
		return
	}
	for _, l := range c.leaders {
		mk(l)
	}
}

func member(p *proc.Process, role Role) Member {
	return Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: role}
}

// foreground returns what a session runs: for a terminal, the command of its
// foreground process group (what `w` shows as WHAT); else the leader's.
func (j *joiner) foreground(l *proc.Process) string {
	if fg := j.foregroundProc(l); fg != nil {
		if c := j.cmdline(fg.PID); c != "" {
			return c
		}
	}
	if c := j.cmdline(l.PID); c != "" {
		return c
	}
	return l.Comm
}

// foregroundProc is, as w does, the newest process of the foreground
// process group on the leader's terminal (`bash -c 'top'` runs top in
// bash's group); nil without a terminal or a foreground group.
func (j *joiner) foregroundProc(l *proc.Process) *proc.Process {
	if l.TTY == 0 || l.TPGID <= 0 {
		return nil
	}
	var fg *proc.Process
	for _, p := range j.sidIndex[l.SID] {
		if p.PGRP == l.TPGID && p.TTY == l.TTY && (fg == nil || p.Start > fg.Start || p.Start == fg.Start && p.PID > fg.PID) {
			fg = p
		}
	}
	return fg
}

// readForeground reads the command lines foreground will show for the
// SSH logins, side by side, before the join asks for them one by one.
func (j *joiner) readForeground(conns []*sshConn) {
	if j.in.Proc == nil {
		return
	}
	var pids []int
	for _, c := range conns {
		for _, l := range c.leaders {
			if fg := j.foregroundProc(l); fg != nil {
				pids = append(pids, fg.PID)
			} else {
				pids = append(pids, l.PID)
			}
		}
	}
	j.in.Proc.ReadCmdlines(pids)
}

// loginLeader is a login made by login(1) (consoles, telnet): a root login
// process whose child is a session leader on a terminal.
type loginLeader struct {
	login, leader *proc.Process
	tty           string
}

func (j *joiner) loginLeaders() []loginLeader {
	var out []loginLeader
	for _, p := range j.procs() {
		if p.Zombie() || p.Comm != "login" || p.UID != 0 {
			continue
		}
		for _, c := range j.in.Proc.Children(p.PID) {
			if c.SID != c.PID || c.TTY == 0 || c.Zombie() {
				continue
			}
			if name := proc.TTYName(c.TTY); name != "" {
				out = append(out, loginLeader{login: p, leader: c, tty: name})
			}
		}
	}
	slices.SortFunc(out, func(a, b loginLeader) int { return a.leader.PID - b.leader.PID })
	return out
}

func (j *joiner) fromLogin(logins []loginLeader) {
	for _, l := range logins {
		if j.liveOnTTY(l.tty) != nil {
			continue
		}
		c, p := l.leader, l.login
		idx := len(j.out)
		j.out = append(j.out, Session{
			UID: c.UID, TTY: l.tty, TTYDev: c.TTY, PID: p.PID, Kind: Local,
			Login:   j.in.Proc.StartTime(p.Start),
			Sources: []string{SourceProc},
		})
		s := &j.out[idx]
		if strings.HasPrefix(l.tty, "tty") {
			s.Kind = Console
		}
		if j.in.UserName != nil {
			s.User = j.in.UserName(c.UID)
		}
		j.add(idx, p, RoleLogin)
		j.addLeader(idx, c)
		j.out[idx].Command = j.foreground(c)
	}
}

func (j *joiner) liveOnTTY(tty string) *Session {
	for i := range j.out {
		if j.out[i].TTY == tty && !j.out[i].Stale {
			return &j.out[i]
		}
	}
	return nil
}

// startSlack allows for the clock granularity between a login process
// starting and it writing its utmp record.
const startSlack = 2 * time.Second

// reserveUtmpLeaders validates, before any session is built, the leader of
// every utmp record whose process lives, so that a login nested inside
// another (a screen pane under an SSH shell) keeps its own processes.
func (j *joiner) reserveUtmpLeaders() {
	procs := j.procs()
	if procs == nil {
		return
	}
	j.utmpLeader = map[int]*proc.Process{}
	for i, r := range j.in.Utmp {
		if r.Type != utmp.UserProcess || r.User == "" || j.in.UserID == nil {
			continue
		}
		pid := int(r.PID)
		p := procs[pid]
		dev, ok := proc.TTYDevice(r.Line)
		if p == nil || p.Zombie() || pid <= 1 || !ok || j.reused(pid, r) {
			continue
		}
		uid, ok := j.in.UserID(r.User)
		if !ok {
			continue
		}
		if l := j.leaderOn(pid, dev, uid); l != nil {
			j.utmpLeader[i] = l
			j.reserved[l.PID] = true
		}
	}
}

func (j *joiner) fromUtmp() {
	// Index the sessions found so far by terminal: matching each record
	// against every session would be quadratic in a large utmp.
	j.byTTY = map[string][]int{}
	for i := range j.out {
		if t := j.out[i].TTY; t != "" {
			j.byTTY[t] = append(j.byTTY[t], i)
		}
	}
	for i, r := range j.in.Utmp {
		if r.Type != utmp.UserProcess || r.User == "" {
			continue
		}
		j.utmpRecord(i, r)
	}
}

// recordVerified: a record's address is the login's when root's process
// wrote it (sshd's monitor, login(1)); utempter writes records naming the
// user's own process, with whatever host the user chose.
func (j *joiner) recordVerified(pid int) bool {
	p := j.procs()[pid]
	return p != nil && !p.Zombie() && p.UID == 0 && p.EUID == 0
}

// mergeRecord adds what record r says to live session s.
func (j *joiner) mergeRecord(s *Session, r utmp.Record, first bool) {
	verified := j.recordVerified(int(r.PID))
	if !s.HasSource(SourceUtmp) {
		s.Sources = append(s.Sources, SourceUtmp)
	}
	if first {
		s.PID = int(r.PID)
		if !r.Time.IsZero() {
			s.Login = r.Time
		}
		if s.Kind == SSHNoTTY {
			s.Kind = SSH
		}
	}
	// A verified record (sshd's own, which may carry the client's DNS
	// name) is shown as the host; an unverified one never replaces an
	// address, and fills one only where there is none.
	switch {
	case verified && r.Host != "" && (!s.HostVerified || s.HostSource != HostUtmp):
		s.Host = r.Host
		if r.Addr.IsValid() && (s.Addr == "" || !s.HostVerified) {
			s.Addr = r.Addr.String()
		}
		if !s.HostVerified || s.HostSource == "" {
			s.HostSource = HostUtmp
		}
		s.HostVerified = true
	case s.HostSource == "" && (r.Host != "" || r.Addr.IsValid()):
		s.Host, s.HostSource, s.HostVerified = r.Host, HostUtmp, false
		if r.Addr.IsValid() {
			s.Addr = r.Addr.String()
		}
	}
}

func (j *joiner) utmpRecord(i int, r utmp.Record) {
	pid := int(r.PID)
	// A live session the process table found: the record names its
	// terminal and one of its processes, or an ancestor of its leader.
	if idx, ok := j.owner(pid); ok {
		s := &j.out[idx]
		if s.TTY != "" && s.TTY == r.Line && s.User == r.User && !s.HasSource(SourceUtmp) && !j.reused(pid, r) {
			j.mergeRecord(s, r, true)
			return
		}
	}
	for _, k := range j.byTTY[r.Line] {
		s := &j.out[k]
		if s.TTY == r.Line && s.User == r.User && !s.HasSource(SourceUtmp) && s.PID == pid && !j.reused(pid, r) {
			j.mergeRecord(s, r, true)
			return
		}
	}
	// One session per terminal: a record whose leader a live session
	// already holds (a second record for the same pty, written through
	// utempter) adds to that session and makes no second one.
	if l := j.utmpLeader[i]; l != nil {
		if idx, ok := j.owner(l.PID); ok && !j.out[idx].Stale && j.out[idx].TTY == r.Line {
			j.mergeRecord(&j.out[idx], r, false)
			return
		}
	}
	s := Session{
		User: r.User, UID: -1, TTY: r.Line, Host: r.Host, PID: pid, Login: r.Time,
		Kind: kindOf(r, ""), Sources: []string{SourceUtmp},
	}
	if r.Addr.IsValid() {
		s.Addr = r.Addr.String()
	}
	if s.Host != "" || s.Addr != "" {
		s.HostSource = HostUtmp
	}
	_, okLine := proc.TTYDevice(r.Line)
	procs := j.procs()
	p := procs[pid]
	// The user is looked up only for records whose process lives: a host
	// with thousands of stale records (or a flooded utmp) must not cost a
	// password-database query (NSS, maybe LDAP) each.
	if p != nil && !p.Zombie() && j.in.UserID != nil {
		if id, ok := j.in.UserID(r.User); ok {
			s.UID = id
		}
	}
	leader := j.utmpLeader[i]
	switch {
	case !okLine:
		s.stale("the record's terminal name is not a terminal sshkick accepts")
	case pid <= 1:
		s.stale("the record's PID " + strconv.Itoa(pid) + " cannot be a login")
	case procs == nil:
		s.stale("the process table could not be read")
	case p == nil || p.Zombie():
		s.stale("process " + strconv.Itoa(pid) + " is gone")
	case s.UID < 0:
		s.stale("no user " + r.User + " in the password database")
	case j.reused(pid, r):
		s.stale("process " + strconv.Itoa(pid) + " started after the login record: the PID was reused")
	case leader == nil:
		s.stale("process " + strconv.Itoa(pid) + " is not a session of " + r.User + " on " + r.Line)
	default:
		if _, taken := j.owner(leader.PID); taken {
			// Held by a session on another terminal: not this login.
			s.stale("process " + strconv.Itoa(pid) + " is not a session of " + r.User + " on " + r.Line)
			break
		}
		s.TTYDev = leader.TTY
		s.Kind = kindOf(r, p.Comm)
		s.Sources = append(s.Sources, SourceProc)
		s.HostVerified = s.HostSource != "" && j.recordVerified(pid)
		idx := len(j.out)
		j.out = append(j.out, s)
		if leader.PID != pid {
			role := RoleLogin
			if s.Kind == Pane || s.Kind == Mosh || p.UID != 0 {
				role = RoleServer
			}
			j.add(idx, p, role)
		}
		j.addLeader(idx, leader)
		j.out[idx].Command = j.foreground(leader)
		j.byTTY[r.Line] = append(j.byTTY[r.Line], idx)
		return
	}
	s.TTY = r.Line
	j.out = append(j.out, s)
}

// idle sets the session's idle time: from its terminal's atime (the last
// time its user's input was read) when it has one; otherwise from logind's
// idle hint for a graphical session, or one logind reports idle.
func (j *joiner) idle(s *Session) {
	if s.Stale {
		return
	}
	var since time.Time
	switch {
	case s.TTY != "" && j.in.TTYAtime != nil:
		at, ok := j.in.TTYAtime(s.TTY)
		if !ok {
			return
		}
		since, s.IdleSource = at, IdleTTY
	case s.LogindID != "" && (s.LogindIdleHint || graphical[s.logindType]):
		// Not idle: idle since now.
		since, s.IdleSource = j.in.Now, IdleLogind
		if s.LogindIdleHint && !s.LogindIdleSince.IsZero() {
			since = s.LogindIdleSince
		}
	default:
		return
	}
	idle := max(j.in.Now.Sub(since), 0)
	secs := int64(idle / time.Second)
	s.Idle, s.IdleSeconds = idle, &secs
}

var graphical = map[string]bool{"x11": true, "wayland": true, "mir": true}

// reused reports whether the live process pid started after record r was
// written: the PID was reused, r is not about it.
func (j *joiner) reused(pid int, r utmp.Record) bool {
	p := j.procs()[pid]
	return p != nil && !r.Time.IsZero() && j.in.Proc.StartTime(p.Start).After(r.Time.Add(startSlack))
}

func (s *Session) stale(reason string) {
	s.Stale, s.StaleReason = true, reason
}

func (s *Session) hasMember(pid int) bool {
	for _, m := range s.Members {
		if m.PID == pid {
			return true
		}
	}
	return false
}

// leaderOn finds the session leader of user uid on terminal dev that is
// pid itself, its child or its grandchild: the shapes of real logins (the
// shell itself for root before OpenSSH 9.8; login(1), tmux and mosh start
// the shell; sshd's monitor starts the user's sshd, which starts the shell).
// Any deeper and every session would validate a record naming the sshd
// listener or init.
func (j *joiner) leaderOn(pid int, dev uint64, uid int) *proc.Process {
	ok := func(p *proc.Process) bool {
		return p.SID == p.PID && p.TTY == dev && p.UID == uid && !p.Zombie()
	}
	p := j.procs()[pid]
	if ok(p) {
		return p
	}
	for _, c := range j.in.Proc.Children(pid) {
		if ok(c) {
			return c
		}
		if c.SID == c.PID {
			// c leads a session of its own (the listener's child: sshd's
			// monitor, or root's sshd before 9.8): a shell below it is
			// c's login, not pid's.
			continue
		}
		for _, g := range j.in.Proc.Children(c.PID) {
			if ok(g) {
				return g
			}
		}
	}
	return nil
}

// kindOf classifies a local utmp record by what wrote it: tmux writes the
// host "tmux(PID).%N", screen ":S.N" or "…:S.N", mosh "mosh [PID]".
func kindOf(r utmp.Record, comm string) Kind {
	h := r.Host
	switch {
	case strings.HasPrefix(h, "tmux(") || comm == "tmux: server" || strings.HasPrefix(comm, "tmux"):
		return Pane
	case strings.Contains(h, ":S.") || strings.HasPrefix(strings.ToLower(comm), "screen"):
		return Pane
	case strings.HasPrefix(h, "mosh") || comm == "mosh-server":
		return Mosh
	case comm == "sshd" || comm == "sshd-session":
		return SSH
	case strings.HasPrefix(r.Line, "tty"):
		return Console
	}
	return Local
}

// ignoredClasses are logind session classes that are not logins of a
// person (coreutils who skips the same since 9.11).
var ignoredClasses = map[string]bool{
	"greeter": true, "lock-screen": true, "background": true, "background-light": true,
	"manager": true, "manager-early": true, "none": true,
}

func (j *joiner) fromLogind() {
	for _, l := range j.in.Logind {
		if ignoredClasses[l.Class] {
			continue
		}
		if s := j.matchLogind(l); s != nil {
			s.Sources = append(s.Sources, SourceLogind)
			s.LogindID = l.ID
			s.logindType, s.LogindIdleHint, s.LogindIdleSince = l.Type, l.IdleHint, l.IdleSince
			if l.RemoteHost != "" && !s.HostVerified {
				s.Host, s.HostSource, s.HostVerified = l.RemoteHost, HostLogind, true
				if a, err := netip.ParseAddr(l.RemoteHost); err == nil {
					s.Addr = a.Unmap().String()
				}
			}
			continue
		}
		s := Session{
			User: l.User, UID: int(l.UID), TTY: l.TTY, Host: l.RemoteHost, PID: int(l.Leader),
			Login: l.Timestamp, Kind: Local, Sources: []string{SourceLogind}, LogindID: l.ID,
			logindType: l.Type, LogindIdleHint: l.IdleHint, LogindIdleSince: l.IdleSince,
		}
		if l.RemoteHost != "" {
			s.HostSource, s.HostVerified = HostLogind, true
		}
		if dev, ok := proc.TTYDevice(l.TTY); ok && l.State != "closing" {
			s.TTYDev = dev
		} else {
			// A closing session's login is gone (what is left is what it
			// started: tmux, nohup jobs): its terminal is free, and may
			// already be another login's.
			s.TTY = ""
		}
		switch {
		case l.Service == "sshd" || l.Remote && strings.HasPrefix(l.Service, "ssh"):
			s.Kind = SSHNoTTY
			if l.TTY != "" {
				// A closing session keeps the kind of its login.
				s.Kind = SSH
			}
		case strings.HasPrefix(s.TTY, "tty"):
			s.Kind = Console
		}
		idx := len(j.out)
		j.out = append(j.out, s)
		if p := j.procs()[int(l.Leader)]; p != nil && !p.Zombie() && l.Leader > 1 {
			j.out[idx].Sources = append(j.out[idx].Sources, SourceProc)
			j.add(idx, p, RoleLogin)
			// The leader's children and grandchildren only, as for utmp
			// records (leaderOn): never every session under a daemon.
			var near []*proc.Process
			for _, c := range j.in.Proc.Children(p.PID) {
				near = append(near, c)
				near = append(near, j.in.Proc.Children(c.PID)...)
			}
			for _, d := range near {
				if d.SID == d.PID && !d.Zombie() {
					if _, taken := j.owner(d.PID); taken {
						continue
					}
					j.addLeader(idx, d)
					if j.out[idx].Command == "" {
						j.out[idx].Command = j.foreground(d)
					}
				}
			}
		}
	}
}

func (j *joiner) matchLogind(l logind.Session) *Session {
	if l.Leader > 1 {
		if idx, ok := j.owner(int(l.Leader)); ok {
			if s := &j.out[idx]; !s.Stale && !s.HasSource(SourceLogind) {
				return s
			}
		}
		for i := range j.out {
			s := &j.out[i]
			if !s.Stale && !s.HasSource(SourceLogind) && s.PID == int(l.Leader) {
				return s
			}
		}
	}
	if l.TTY == "" {
		return nil
	}
	for i := range j.out {
		s := &j.out[i]
		if !s.Stale && !s.HasSource(SourceLogind) && s.TTY == l.TTY && s.UID == int(l.UID) {
			return s
		}
	}
	return nil
}

// fromScopes adds to each logind session the processes of its user that
// sit in its cgroup scope and no session holds yet: jobs that left the
// process tree (setsid -f, double-forked daemons). Only processes of users
// who have a logind session are looked at, root's never, and each process
// at most once: the cgroup file is read for no one else.
func (j *joiner) fromScopes() {
	if j.in.Scope == nil || j.in.Proc == nil {
		return
	}
	byID := map[string]int{}
	uids := map[int]bool{}
	for i := range j.out {
		s := &j.out[i]
		if s.LogindID != "" && !s.Stale && s.UID > 0 {
			byID[s.LogindID] = i
			uids[s.UID] = true
		}
	}
	if len(byID) == 0 {
		return
	}
	snap := j.in.Proc
	order := snap.InOrder()
	for k := 0; k < len(order); {
		p := order[k]
		if _, taken := j.claim[p.PID]; taken {
			_, end, _ := snap.Subtree(p.PID)
			k = end
			continue
		}
		k++
		if p.Zombie() || p.KernelThread() || p.UID <= 0 || p.UID != p.EUID || !uids[p.UID] {
			continue
		}
		id, ok := j.in.Scope(p.PID)
		if !ok {
			continue
		}
		idx, ok := byID[id]
		if !ok || j.out[idx].UID != p.UID {
			continue
		}
		j.walk(idx, p, RoleMember)
		_, end, _ := snap.Subtree(p.PID)
		k = end
	}
}

// sourceOrder is the order of Session.Sources.
var sourceOrder = map[string]int{SourceLogind: 0, SourceUtmp: 1, SourceProc: 2}

// resolveAddrs finds the client address of the SSH sessions: the socket
// sshd holds (which also gives the port), else SSH_CONNECTION in the
// leader's environment (the user's word: unverified, and only where
// nothing else said). A verified host name from utmp or logind stays the
// Host shown.
func (j *joiner) resolveAddrs() {
	for idx, a := range j.addrOf {
		s := &j.out[idx]
		if j.in.Peer != nil {
			found := false
			for _, p := range a.sshd {
				if ap, ok := j.in.Peer(p.PID); ok {
					addr := ap.Addr().String()
					if !s.HostVerified || s.Host == "" {
						s.Host = addr
					}
					s.Addr, s.Port, s.HostSource, s.HostVerified = addr, int(ap.Port()), HostSocket, true
					found = true
					break
				}
			}
			if found {
				continue
			}
		}
		if s.HostSource == "" && a.leader != nil && j.in.Env != nil {
			if ap, ok := j.in.Env(a.leader.PID); ok {
				addr := ap.Addr().String()
				s.Host, s.Addr, s.Port, s.HostSource = addr, addr, int(ap.Port()), HostEnv
			}
		}
	}
}

func (j *joiner) finish() {
	j.resolveAddrs()
	ttyCount := map[string]int{}
	for i := range j.out {
		if !j.out[i].Stale && j.out[i].TTY != "" {
			ttyCount[j.out[i].TTY]++
		}
	}
	for i := range j.out {
		s := &j.out[i]
		slices.SortFunc(s.Sources, func(a, b string) int { return sourceOrder[a] - sourceOrder[b] })
		s.Sources = slices.Compact(s.Sources)
		if s.User == "" && s.UID >= 0 && j.in.UserName != nil {
			s.User = j.in.UserName(s.UID)
		}
		for _, m := range s.Members {
			s.PIDs = append(s.PIDs, m.PID)
		}
		slices.Sort(s.PIDs)
		if s.PIDs == nil {
			s.PIDs = []int{}
		}
		s.Processes = len(s.PIDs)
		switch {
		case s.LogindID != "":
			s.ID = s.LogindID
		case s.Stale:
			s.ID = "stale:" + s.TTY + ":" + strconv.Itoa(s.PID)
		case s.TTY != "" && ttyCount[s.TTY] == 1:
			s.ID = s.TTY
		default:
			s.ID = "ssh:" + strconv.Itoa(s.idPID())
			if s.Kind != SSH && s.Kind != SSHNoTTY {
				s.ID = string(s.Kind) + ":" + strconv.Itoa(s.idPID())
			}
		}
		j.idle(s)
	}
	// Sort an index, not the sessions: moving whole Session values is most
	// of the cost of sorting a large utmp.
	idx := make([]int, len(j.out))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := j.out[a].Login.Compare(j.out[b].Login); c != 0 {
			return c
		}
		return NaturalCompare(j.out[a].ID, j.out[b].ID)
	})
	sorted := make([]Session, len(j.out))
	for i, k := range idx {
		sorted[i] = j.out[k]
	}
	j.out = sorted
}

// idPID is the PID in a session id for sessions without a unique
// terminal: the leader's, else the PID who -u would show.
func (s *Session) idPID() int {
	for _, m := range s.Members {
		if m.Role == RoleLeader {
			return m.PID
		}
	}
	return s.PID
}
