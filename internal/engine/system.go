package engine

import (
	"context"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/sshkick/sshkick/internal/audit"
	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// SystemOptions say where the real system's sources are; zero values are
// the real paths.
type SystemOptions struct {
	UtmpPath string // session.DefaultUtmp
	ProcRoot string // "/proc"
	DevRoot  string // "/dev"
	NoLogind bool
}

// NewSystem makes an Engine over the running system: discovery of utmp,
// /proc and logind; kicks through pidfds; termmsg; the audit trail.
func NewSystem(o SystemOptions) (*Engine, error) {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	env := SystemEnv()
	return New(Config{
		Discoverer: newSystemDiscoverer(o, env),
		Signaller:  pidfdSignaller{procRoot: o.ProcRoot},
		Messenger:  termMessenger{devRoot: o.DevRoot},
		Clock:      SystemClock{},
		Env:        env,
		OpenAuditor: func(path string) (Auditor, string, error) {
			l, err := audit.Open(path)
			if err != nil {
				return nil, "", err
			}
			return l, l.Where, nil
		},
	})
}

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemEnv is the calling process's identity and the password database
// (through NSS, so LDAP users too).
func SystemEnv() Env {
	env := Env{EUID: os.Geteuid(), PID: os.Getpid(), SudoUser: os.Getenv("SUDO_USER"), SudoUID: os.Getenv("SUDO_UID")}
	env.Hostname, _ = os.Hostname()
	env.Sender = env.SudoUser
	if env.Sender == "" {
		env.Sender = "root"
		if u, err := user.Current(); err == nil {
			env.Sender = u.Username
		}
	}
	users := &userCache{byName: map[string]userEntry{}, byUID: map[int]userEntry{}}
	env.LookupUser, env.LookupUID = users.lookupName, users.lookupUID
	return env
}

type userEntry struct {
	name     string
	uid, gid int
	ok       bool
}

// userCache memoizes password database look-ups for a long-lived engine.
type userCache struct {
	mu     sync.Mutex
	byName map[string]userEntry
	byUID  map[int]userEntry
}

func entryOf(u *user.User) userEntry {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err2 != nil {
		gid = uid
	}
	return userEntry{name: u.Username, uid: uid, gid: gid, ok: err1 == nil}
}

func (c *userCache) lookupName(name string) (int, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, hit := c.byName[name]
	if !hit {
		if u, err := user.Lookup(name); err == nil {
			e = entryOf(u)
		}
		c.byName[name] = e
	}
	return e.uid, e.gid, e.ok
}

func (c *userCache) lookupUID(uid int) (string, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, hit := c.byUID[uid]
	if !hit {
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			e = entryOf(u)
		}
		c.byUID[uid] = e
	}
	return e.name, e.gid, e.ok
}

// systemDiscoverer is discovery of the running system: a long-lived
// session.Discoverer, which keeps its logind connection (for kicks too)
// and reconnects when the bus goes away.
type systemDiscoverer struct {
	o SystemOptions
	d *session.Discoverer
}

func newSystemDiscoverer(o SystemOptions, env Env) *systemDiscoverer {
	so := session.Options{UtmpPath: o.UtmpPath, ProcRoot: o.ProcRoot, DevRoot: o.DevRoot, NoLogind: o.NoLogind}
	if env.LookupUser != nil && env.LookupUID != nil {
		so.UserID = func(name string) (int, bool) { uid, _, ok := env.LookupUser(name); return uid, ok }
		so.UserName = func(uid int) string {
			if n, _, ok := env.LookupUID(uid); ok {
				return n
			}
			return strconv.Itoa(uid)
		}
	}
	return &systemDiscoverer{o: o, d: session.NewDiscoverer(so)}
}

// NewSystemDiscoverer is discovery of the running system (or of fixture
// trees under o's roots), looking users up through env.
func NewSystemDiscoverer(o SystemOptions, env Env) Discoverer {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	return newSystemDiscoverer(o, env)
}

func (d *systemDiscoverer) Discover(ctx context.Context) (*session.Result, error) {
	res, err := d.d.Discover(ctx)
	if err != nil {
		return nil, err
	}
	res.Logind = nil // the Discoverer's: Logind() hands it to kicks
	return res, nil
}

func (d *systemDiscoverer) Alive(s *session.Session) bool { return s.Alive(d.o.ProcRoot) }

func (d *systemDiscoverer) LastInput(s *session.Session) (time.Time, bool) {
	if s.TTY == "" || s.Stale {
		return time.Time{}, false
	}
	return session.TTYAtime(d.o.DevRoot, s.TTY)
}

func (d *systemDiscoverer) Logind() kick.Logind {
	if c := d.d.Logind(); c != nil {
		return c
	}
	return nil
}

func (d *systemDiscoverer) Close() error { return d.d.Close() }

// pidfdSignaller is the kick package.
type pidfdSignaller struct{ procRoot string }

func (p pidfdSignaller) Check() error { return kick.CheckPidfd() }

func (p pidfdSignaller) Kick(ctx context.Context, sessions []session.Session, o kick.Options) ([]kick.Outcome, error) {
	o.ProcRoot = p.procRoot
	return kick.Kick(ctx, sessions, o)
}

func (p pidfdSignaller) KillUser(ctx context.Context, name string, uid, gid int, o kick.Options) kick.UserOutcome {
	o.ProcRoot = p.procRoot
	return kick.KillUser(ctx, name, uid, gid, o)
}

// termMessenger is termmsg.
type termMessenger struct{ devRoot string }

func (m termMessenger) Send(ctx context.Context, targets []termmsg.Target, msg []byte, opt termmsg.Options) []termmsg.Result {
	opt.DevRoot = m.devRoot
	return termmsg.Send(ctx, targets, msg, opt)
}
