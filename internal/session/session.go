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
	Addr        string
	Port        int
	Login       time.Time
	IdleSeconds *int64
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
}

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
	// Peer returns the client address of an sshd process's connection.
	Peer func(pid int) (netip.AddrPort, bool)
	// TTYAtime returns the access time of a terminal ("pts/3"): the last
	// time its user's input was read, which is what idle means (w, who -u).
	TTYAtime func(tty string) (time.Time, bool)
	// UserName and UserID look up the password database.
	UserName func(uid int) string
	UserID   func(name string) (int, bool)
}

// Join builds the session list. It never drops a utmp USER_PROCESS record:
// a record that the process table does not back is listed with Stale set.
func Join(in Input) []Session {
	j := &joiner{in: in, sidIndex: map[int][]*proc.Process{}, out: make([]Session, 0, len(in.Utmp)+len(in.Logind)+8)}
	if in.Proc != nil {
		for _, p := range in.Proc.Procs {
			if !p.Zombie() {
				j.sidIndex[p.SID] = append(j.sidIndex[p.SID], p)
			}
		}
	}
	j.fromSSHD()
	j.fromLogin()
	j.fromUtmp()
	j.fromLogind()
	j.finish()
	return j.out
}

type joiner struct {
	in       Input
	out      []Session
	sidIndex map[int][]*proc.Process
	byTTY    map[string][]int
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
// separate monitor, and a monitor briefly has no child).
type sshConn struct {
	user           string
	monitor, child *proc.Process
}

func (j *joiner) fromSSHD() {
	procs := j.procs()
	if procs == nil {
		return
	}
	monitors := map[int]*sshConn{}
	var conns []*sshConn
	var children []*proc.Process
	titles := map[int]sshdTitle{}
	// A connection still authenticating already has a monitor titled
	// "USER [priv]"; its unprivileged child is titled "USER [net]" (run as
	// sshd-auth since OpenSSH 10). Such a monitor is no login.
	preauth := map[int]bool{}
	for _, p := range procs {
		if p.Zombie() || (p.Comm != "sshd" && p.Comm != "sshd-session" && p.Comm != "sshd-auth") {
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
		// Anyone can name a process "sshd: root@pts/0": a title counts
		// only from a process of the right owner — the monitor is root,
		// the user's sshd runs as the user it names.
		if t.priv && p.UID != 0 {
			continue
		}
		if !t.priv && p.UID != 0 && j.in.UserID != nil {
			// A name the password database does not know (a deleted
			// user still logged in, NSS down) cannot be checked: kept.
			if uid, ok := j.in.UserID(t.user); ok && uid != p.UID {
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
	for _, p := range children {
		t := titles[p.PID]
		if c := monitors[p.PPID]; c != nil && c.user == t.user && c.child == nil {
			c.child = p
			continue
		}
		conns = append(conns, &sshConn{user: t.user, child: p})
	}
	for _, c := range conns {
		if c.child == nil && c.monitor != nil && preauth[c.monitor.PID] {
			continue
		}
		j.sshSessions(c)
	}
}

func (j *joiner) sshSessions(c *sshConn) {
	snap := j.in.Proc
	top := c.monitor
	if top == nil {
		top = c.child
	}
	uid := -1
	switch {
	case c.child != nil && c.child.UID >= 0:
		uid = c.child.UID
	case j.in.UserID != nil:
		if id, ok := j.in.UserID(c.user); ok {
			uid = id
		}
	}
	var base []Member
	if c.monitor != nil {
		base = append(base, member(c.monitor, RoleMonitor))
	}
	if c.child != nil {
		base = append(base, member(c.child, RoleSSHD))
	}
	var leaders []*proc.Process
	if c.child != nil {
		for _, d := range snap.Descendants(c.child.PID) {
			if d.SID == d.PID && !d.Zombie() {
				leaders = append(leaders, d)
			}
		}
	}
	addr, hasAddr := netip.AddrPort{}, false
	if j.in.Peer != nil {
		for _, p := range []*proc.Process{c.monitor, c.child} {
			if p != nil {
				if addr, hasAddr = j.in.Peer(p.PID); hasAddr {
					break
				}
			}
		}
	}
	mk := func(leader *proc.Process) Session {
		s := Session{
			User: c.user, UID: uid, PID: top.PID, Kind: SSHNoTTY,
			Login:   snap.StartTime(top.Start),
			Sources: []string{SourceProc},
		}
		if hasAddr {
			s.Addr, s.Port, s.Host = addr.Addr().String(), int(addr.Port()), addr.Addr().String()
		}
		s.Members = append(s.Members, base...)
		if leader != nil {
			s.addLeader(j, leader)
			if name := proc.TTYName(leader.TTY); name != "" {
				s.TTY, s.TTYDev, s.Kind = name, leader.TTY, SSH
			}
			s.Command = j.foreground(leader)
		}
		return s
	}
	if len(leaders) == 0 {
		j.out = append(j.out, mk(nil))
		return
	}
	slices.SortFunc(leaders, func(a, b *proc.Process) int { return a.PID - b.PID })
	for _, l := range leaders {
		j.out = append(j.out, mk(l))
	}
}

// addLeader adds a session leader, its descendants and every process that
// still carries its session id (nohup jobs whose parent is gone).
func (s *Session) addLeader(j *joiner, l *proc.Process) {
	seen := map[int]bool{}
	for _, m := range s.Members {
		seen[m.PID] = true
	}
	add := func(p *proc.Process, role Role) {
		if !seen[p.PID] && !p.Zombie() {
			seen[p.PID] = true
			s.Members = append(s.Members, member(p, role))
		}
	}
	add(l, RoleLeader)
	for _, d := range j.in.Proc.Descendants(l.PID) {
		add(d, RoleMember)
	}
	for _, p := range j.sidIndex[l.SID] {
		add(p, RoleMember)
		for _, d := range j.in.Proc.Descendants(p.PID) {
			add(d, RoleMember)
		}
	}
	s.SIDs = append(s.SIDs, l.SID)
}

func member(p *proc.Process, role Role) Member {
	return Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: role}
}

// foreground returns what a session runs: for a terminal, the command of its
// foreground process group (what `w` shows as WHAT); else the leader's.
func (j *joiner) foreground(l *proc.Process) string {
	if l.TTY != 0 && l.TPGID > 0 {
		// As w does: the newest process of the foreground process group on
		// the terminal (`bash -c 'top'` runs top in bash's group).
		var fg *proc.Process
		for _, p := range j.sidIndex[l.SID] {
			if p.PGRP == l.TPGID && p.TTY == l.TTY && (fg == nil || p.Start > fg.Start || p.Start == fg.Start && p.PID > fg.PID) {
				fg = p
			}
		}
		if fg != nil {
			if c := j.cmdline(fg.PID); c != "" {
				return c
			}
		}
	}
	if c := j.cmdline(l.PID); c != "" {
		return c
	}
	return l.Comm
}

// fromLogin finds logins made by login(1) (consoles, telnet): a root login
// process whose child is a session leader on a terminal.
func (j *joiner) fromLogin() {
	for _, p := range j.procs() {
		if p.Zombie() || p.Comm != "login" || p.UID != 0 {
			continue
		}
		for _, c := range j.in.Proc.Children(p.PID) {
			if c.SID != c.PID || c.TTY == 0 || c.Zombie() {
				continue
			}
			name := proc.TTYName(c.TTY)
			if name == "" || j.liveOnTTY(name) != nil {
				continue
			}
			s := Session{
				UID: c.UID, TTY: name, TTYDev: c.TTY, PID: p.PID, Kind: Local,
				Login:   j.in.Proc.StartTime(p.Start),
				Sources: []string{SourceProc},
				Members: []Member{member(p, RoleLogin)},
			}
			if strings.HasPrefix(name, "tty") {
				s.Kind = Console
			}
			if j.in.UserName != nil {
				s.User = j.in.UserName(c.UID)
			}
			s.addLeader(j, c)
			s.Command = j.foreground(c)
			j.out = append(j.out, s)
		}
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

func (j *joiner) fromUtmp() {
	// Index the sessions found so far by terminal: matching each record
	// against every session would be quadratic in a large utmp.
	j.byTTY = map[string][]int{}
	for i := range j.out {
		if t := j.out[i].TTY; t != "" {
			j.byTTY[t] = append(j.byTTY[t], i)
		}
	}
	for _, r := range j.in.Utmp {
		if r.Type != utmp.UserProcess || r.User == "" {
			continue
		}
		j.utmpRecord(r)
	}
}

func (j *joiner) utmpRecord(r utmp.Record) {
	pid := int(r.PID)
	// A live session the process table found: the record names its
	// terminal and one of its processes, or an ancestor of its leader.
	for _, i := range j.byTTY[r.Line] {
		s := &j.out[i]
		if s.TTY == "" || s.TTY != r.Line || s.User != r.User || s.HasSource(SourceUtmp) {
			continue
		}
		if !s.hasMember(pid) || j.reused(pid, r) {
			continue
		}
		s.Sources = append(s.Sources, SourceUtmp)
		s.PID = pid
		if !r.Time.IsZero() {
			s.Login = r.Time
		}
		if r.Host != "" {
			s.Host = r.Host
		}
		if s.Addr == "" && r.Addr.IsValid() {
			s.Addr = r.Addr.String()
		}
		if s.Kind == SSHNoTTY {
			s.Kind = SSH
		}
		return
	}
	s := Session{
		User: r.User, UID: -1, TTY: r.Line, Host: r.Host, PID: pid, Login: r.Time,
		Kind: kindOf(r, ""), Sources: []string{SourceUtmp},
	}
	if r.Addr.IsValid() {
		s.Addr = r.Addr.String()
	}
	dev, okLine := proc.TTYDevice(r.Line)
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
	default:
		leader := j.leaderOn(pid, dev, s.UID)
		if leader == nil {
			s.stale("process " + strconv.Itoa(pid) + " is not a session of " + r.User + " on " + r.Line)
			break
		}
		s.TTYDev = dev
		s.Kind = kindOf(r, p.Comm)
		s.Sources = append(s.Sources, SourceProc)
		if leader.PID != pid {
			role := RoleLogin
			if s.Kind == Pane || s.Kind == Mosh || p.UID != 0 {
				role = RoleServer
			}
			s.Members = append(s.Members, member(p, role))
		}
		s.addLeader(j, leader)
		s.Command = j.foreground(leader)
	}
	if s.Stale {
		s.TTY = r.Line
	}
	j.out = append(j.out, s)
}

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
			if s.Host == "" && l.RemoteHost != "" {
				s.Host = l.RemoteHost
			}
			continue
		}
		s := Session{
			User: l.User, UID: int(l.UID), TTY: l.TTY, Host: l.RemoteHost, PID: int(l.Leader),
			Login: l.Timestamp, Kind: Local, Sources: []string{SourceLogind}, LogindID: l.ID,
		}
		if dev, ok := proc.TTYDevice(l.TTY); ok {
			s.TTYDev = dev
		} else {
			s.TTY = ""
		}
		switch {
		case l.Service == "sshd" || l.Remote && strings.HasPrefix(l.Service, "ssh"):
			s.Kind = SSHNoTTY
			if s.TTY != "" {
				s.Kind = SSH
			}
		case strings.HasPrefix(s.TTY, "tty"):
			s.Kind = Console
		}
		if p := j.procs()[int(l.Leader)]; p != nil && !p.Zombie() && l.Leader > 1 {
			s.Sources = append(s.Sources, SourceProc)
			s.Members = append(s.Members, member(p, RoleLogin))
			// The leader's children and grandchildren only, as for utmp
			// records (leaderOn): never every session under a daemon.
			var near []*proc.Process
			for _, c := range j.in.Proc.Children(p.PID) {
				near = append(near, c)
				near = append(near, j.in.Proc.Children(c.PID)...)
			}
			for _, d := range near {
				if d.SID == d.PID && !d.Zombie() && !s.hasMember(d.PID) {
					s.addLeader(j, d)
					if s.Command == "" {
						s.Command = j.foreground(d)
					}
				}
			}
		}
		j.out = append(j.out, s)
	}
}

func (j *joiner) matchLogind(l logind.Session) *Session {
	for i := range j.out {
		s := &j.out[i]
		if s.Stale || s.HasSource(SourceLogind) {
			continue
		}
		if l.Leader > 1 && (s.PID == int(l.Leader) || s.hasMember(int(l.Leader))) {
			return s
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

// sourceOrder is the order of Session.Sources.
var sourceOrder = map[string]int{SourceLogind: 0, SourceUtmp: 1, SourceProc: 2}

func (j *joiner) finish() {
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
		if s.TTY != "" && !s.Stale && j.in.TTYAtime != nil {
			if at, ok := j.in.TTYAtime(s.TTY); ok {
				idle := j.in.Now.Sub(at)
				if idle < 0 {
					idle = 0
				}
				secs := int64(idle / time.Second)
				s.Idle, s.IdleSeconds = idle, &secs
			}
		}
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
