package session

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/logind"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/utmp"
)

// DefaultUtmp is where glibc systems keep the utmp database.
const DefaultUtmp = "/run/utmp"

// Options say where Discover looks. Zero values mean the real system.
type Options struct {
	UtmpPath string // DefaultUtmp
	ProcRoot string // "/proc"
	DevRoot  string // "/dev"
	// NoLogind skips logind. Without it, logind is asked when a system bus
	// with org.freedesktop.login1 is there, and silently skipped when not.
	NoLogind bool
	Now      time.Time // time.Now()
	// Clock gives the time of each discovery of a Discoverer (Now, when
	// set, wins); time.Now when nil.
	Clock func() time.Time
	// UserName and UserID look up the password database; nil means the
	// system's (os/user, cached). Tests pass a fixture database.
	UserName func(uid int) string
	UserID   func(name string) (int, bool)
}

func (o *Options) defaults() {
	if o.UtmpPath == "" {
		o.UtmpPath = DefaultUtmp
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.Now.IsZero() && o.Clock != nil {
		o.Now = o.Clock()
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
}

// Result is what Discover found, and what it could not see.
type Result struct {
	Sessions []Session
	// Notes say what could not be seen and why, for a person to read.
	Notes []string
	// Proc is the process table the sessions were built from.
	Proc *proc.Snapshot
	// Logind is connected when logind was there; the caller closes it.
	Logind *logind.Client
}

// Discover reads utmp, /proc and logind and joins them. The caller closes
// Result.Logind; a daemon uses a Discoverer instead.
func Discover(ctx context.Context, o Options) (*Result, error) {
	return discover(ctx, o, connectOnce)
}

// connectOnce connects to logind for one discovery.
func connectOnce(ctx context.Context) ([]logind.Session, *logind.Client, []string) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	c, err := logind.Connect(cctx)
	cancel()
	switch {
	case err == nil:
		sessions, err := c.Sessions(ctx)
		if err != nil {
			return nil, c, []string{fmt.Sprintf("logind did not list its sessions (%v); sessions are listed from utmp and /proc", err)}
		}
		return sessions, c, nil
	case errors.Is(err, logind.ErrUnavailable):
		// No logind here: utmp and /proc carry on.
		return nil, nil, nil
	default:
		return nil, nil, []string{fmt.Sprintf("cannot reach logind (%v); sessions are listed from utmp and /proc", err)}
	}
}

func discover(ctx context.Context, o Options, list func(context.Context) ([]logind.Session, *logind.Client, []string)) (*Result, error) {
	o.defaults()
	res := &Result{}
	in := Input{Now: o.Now}

	recs, err := utmp.ReadFile(o.UtmpPath)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		// Normal: hosts built without utmp (Debian 13) have none.
	case errors.Is(err, utmp.ErrTruncated):
		res.Notes = append(res.Notes, fmt.Sprintf("%s ends in a partial record; it was ignored", o.UtmpPath))
	default:
		res.Notes = append(res.Notes, fmt.Sprintf("cannot read %s (%v); sessions are listed from the other sources", o.UtmpPath, err))
	}
	in.Utmp = recs

	snap, err := proc.Scan(o.ProcRoot)
	if err != nil {
		return nil, err
	}
	res.Proc, in.Proc = snap, snap

	if !o.NoLogind {
		sessions, c, notes := list(ctx)
		in.Logind, res.Logind = sessions, c
		res.Notes = append(res.Notes, notes...)
	}

	// Join reads the title and the program of every sshd-named process,
	// and the sockets of the root ones titled as logins (monitors): all of
	// it in one pass, side by side, and the IPv4 TCP table alongside as
	// soon as there is a login to look for.
	var sshds []int
	for _, p := range snap.Procs {
		if !p.Zombie() && isSSHDComm(p.Comm) {
			sshds = append(sshds, p.PID)
		}
	}
	peers := &peerFinder{root: o.ProcRoot, socks: make(map[int]sockets)}
	exes := make([]string, len(sshds))
	exeOK := make([]bool, len(sshds))
	socks := make([]sockets, len(sshds))
	monitor := make([]bool, len(sshds))
	snap.ReadCmdlinesThen(sshds, func(i int, title string) {
		pid := sshds[i]
		e, err := proc.Exe(o.ProcRoot, pid)
		exes[i], exeOK[i] = e, err == nil
		// Not the listener, nor a connection still authenticating.
		if _, ok := parseSSHDTitle(title); ok && snap.Procs[pid].UID == 0 {
			peers.startTable()
			monitor[i] = true
			socks[i] = firstSocket(o.ProcRoot, pid)
		}
	})
	exeOf := make(map[int]string, len(sshds))
	for i, pid := range sshds {
		if exeOK[i] {
			exeOf[pid] = exes[i]
		}
		if monitor[i] {
			peers.socks[pid] = socks[i]
		}
	}
	in.Peer, in.Env = peers.peer, peers.env
	in.Exe = func(pid int) (string, bool) {
		if e, ok := exeOf[pid]; ok {
			return e, true
		}
		e, err := proc.Exe(o.ProcRoot, pid)
		return e, err == nil
	}
	in.Scope = func(pid int) (string, bool) { return proc.LogindSession(o.ProcRoot, pid) }
	in.TTYAtime = func(tty string) (time.Time, bool) { return TTYAtime(o.DevRoot, tty) }
	users := newUserCache()
	in.UserName, in.UserID = users.name, users.id
	if o.UserName != nil {
		in.UserName = o.UserName
	}
	if o.UserID != nil {
		in.UserID = o.UserID
	}

	res.Sessions = Join(in)
	if peers.hidden > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("the client address of %d session(s) is hidden: reading another user's sockets needs root; run with sudo to see it", peers.hidden))
	}
	if snap.Unreadable > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d process(es) in %s could not be read and were left out", snap.Unreadable, o.ProcRoot))
	}
	if snap.Denied > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d process(es) could not be read; run with sudo to see them", snap.Denied))
	}
	return res, nil
}

// TTYAtime returns the access time of a terminal under devRoot: the last
// time input from its user was read. Idle is measured from it, as w and
// who -u do; not from mtime, which output (and our own warnings) moves.
// The name must be one proc.TTYDevice accepts and the file a character
// device, so a forged utmp line never makes us stat an arbitrary path.
func TTYAtime(devRoot, tty string) (time.Time, bool) {
	if _, ok := proc.TTYDevice(tty); !ok {
		return time.Time{}, false
	}
	var st unix.Stat_t
	if err := unix.Lstat(devRoot+"/"+tty, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return time.Time{}, false
	}
	return time.Unix(st.Atim.Unix()), true
}

// peerFinder finds the client address of an SSH connection from the socket
// sshd holds, which works for every session, with a terminal or without.
// The TCP tables are read once per discovery, and the IPv6 one only when
// a socket is not in the IPv4 one: each costs the kernel a walk of its
// whole socket hash.
type peerFinder struct {
	root   string
	conns  map[uint64]proc.Conn
	tables int // how many of proc.TCPTables are in conns
	// socks holds the first socket of each monitor, read by discover.
	socks  map[int]sockets
	once   sync.Once
	first  chan struct{} // closed when the first table is in conns
	hidden int
	denied bool
}

// sockets is what proc.Sockets said of one process: the inodes of its
// sockets in descriptor order, all of them or (partial) only the first.
type sockets struct {
	inodes  []uint64
	partial bool
	err     error
}

// firstSocket reads a process's descriptors up to its first socket: a
// monitor's connection to the client is its first socket (the pipes and
// socket pairs to its children come after), so the few descriptors
// before it are all that is read, unless the table says otherwise.
func firstSocket(root string, pid int) sockets {
	var sk sockets
	sk.err = proc.Sockets(root, pid, func(ino uint64) bool {
		sk.inodes, sk.partial = []uint64{ino}, true
		return false
	})
	return sk
}

// startTable reads the first TCP table in the background, once; safe to
// call from several goroutines.
func (f *peerFinder) startTable() {
	f.once.Do(func() {
		f.first = make(chan struct{})
		go func() {
			defer close(f.first)
			f.loadTable()
		}()
	})
}

func (f *peerFinder) peer(pid int) (netip.AddrPort, bool) {
	sk, ok := f.socks[pid]
	if ok && sk.partial {
		if ap, hit := f.lookup(sk.inodes); hit {
			return ap, true
		}
		ok = false // the first socket is not the connection: read them all
	}
	if !ok {
		sk.inodes, sk.err = proc.SocketInodes(f.root, pid)
	}
	if ap, hit := f.lookup(sk.inodes); hit {
		return ap, true
	}
	if errors.Is(sk.err, fs.ErrPermission) {
		f.denied = true
	}
	return netip.AddrPort{}, false
}

// lookup finds the first of inodes in the TCP tables, reading the next
// table only when the ones read so far do not hold any.
func (f *peerFinder) lookup(inodes []uint64) (netip.AddrPort, bool) {
	if len(inodes) == 0 {
		return netip.AddrPort{}, false
	}
	f.startTable()
	<-f.first
	for {
		for _, ino := range inodes {
			if c, hit := f.conns[ino]; hit {
				return c.Remote, true
			}
		}
		if f.tables == len(proc.TCPTables) {
			return netip.AddrPort{}, false
		}
		f.loadTable()
	}
}

func (f *peerFinder) loadTable() {
	if f.tables == len(proc.TCPTables) {
		return
	}
	if f.conns == nil {
		f.conns = map[uint64]proc.Conn{}
	}
	proc.ReadTCPTable(f.root, proc.TCPTables[f.tables], f.conns)
	f.tables++
}

// env reads SSH_CONNECTION="client port server port" from the environment
// of a session leader (the direct child of a verified sshd): the only way
// without root. The user may have rewritten it; it is listed unverified.
func (f *peerFinder) env(pid int) (netip.AddrPort, bool) {
	v, err := proc.Getenv(f.root, pid, "SSH_CONNECTION")
	if err == nil && v != "" {
		if ap, ok := parseSSHConnection(v); ok {
			return ap, true
		}
	}
	if f.denied || errors.Is(err, fs.ErrPermission) {
		f.hidden++
	}
	f.denied = false
	return netip.AddrPort{}, false
}

func parseSSHConnection(v string) (netip.AddrPort, bool) {
	f := strings.Fields(v)
	if len(f) != 4 {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil {
		return netip.AddrPort{}, false
	}
	p, err := strconv.ParseUint(f[1], 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), true
}

// userCache memoizes password database look-ups: a host with thousands of
// sessions has far fewer users.
type userCache struct {
	mu    sync.Mutex
	names map[int]string
	ids   map[string]int
}

func newUserCache() *userCache {
	return &userCache{names: map[int]string{}, ids: map[string]int{}}
}

func (c *userCache) name(uid int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.names[uid]; ok {
		return n
	}
	n := strconv.Itoa(uid)
	if u, err := user.LookupId(n); err == nil {
		n = u.Username
	}
	c.names[uid] = n
	return n
}

func (c *userCache) id(name string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.ids[name]; ok {
		return id, id >= 0
	}
	id := -1
	if u, err := user.Lookup(name); err == nil {
		id, _ = strconv.Atoi(u.Uid)
	}
	c.ids[name] = id
	return id, id >= 0
}
