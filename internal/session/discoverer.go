package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sshkick/sshkick/internal/logind"
)

// Discoverer discovers sessions again and again, for a daemon: it keeps
// its logind connection and its password-database cache between calls,
// and connects again when the bus went away. Safe for one caller at a time
// per call; Close ends it.
type Discoverer struct {
	mu     sync.Mutex
	o      Options
	users  *userCache
	client *logind.Client
}

// NewDiscoverer returns a Discoverer with o (see Options).
func NewDiscoverer(o Options) *Discoverer {
	return &Discoverer{o: o, users: newUserCache()}
}

// Logind returns the current logind client, or nil when there is none.
// It belongs to the Discoverer: never close it.
func (d *Discoverer) Logind() *logind.Client {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.client
}

// Close closes the logind connection.
func (d *Discoverer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client == nil {
		return nil
	}
	err := d.client.Close()
	d.client = nil
	return err
}

// Discover reads utmp, /proc and logind once more and joins them.
func (d *Discoverer) Discover(ctx context.Context) (*Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.o
	if o.Now.IsZero() && o.Clock != nil {
		o.Now = o.Clock()
	}
	if o.UserName == nil {
		o.UserName = d.users.name
	}
	if o.UserID == nil {
		o.UserID = d.users.id
	}
	return discover(ctx, o, d.logindSessions)
}

// logindSessions lists logind's sessions on the kept connection; when the
// bus went away it connects once more.
func (d *Discoverer) logindSessions(ctx context.Context) ([]logind.Session, *logind.Client, []string) {
	var notes []string
	for attempt := 0; attempt < 2; attempt++ {
		if d.client == nil {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			c, err := logind.Connect(cctx)
			cancel()
			if errors.Is(err, logind.ErrUnavailable) {
				if bootedWithSystemd() {
					// systemd runs this host, so logind should answer: it is
					// stopped, restarting, or the bus is down.
					return nil, nil, []string{fmt.Sprintf("systemd runs this host but logind does not answer (%v); sessions are listed from utmp and /proc", err)}
				}
				return nil, nil, nil
			}
			if err != nil {
				return nil, nil, []string{fmt.Sprintf("cannot reach logind (%v); sessions are listed from utmp and /proc", err)}
			}
			d.client = c
		}
		sessions, err := d.client.Sessions(ctx)
		if err == nil {
			return sessions, d.client, nil
		}
		// The bus may have gone away: drop the connection, try afresh.
		d.client.Close()
		d.client = nil
		notes = []string{fmt.Sprintf("logind did not list its sessions (%v); sessions are listed from utmp and /proc", err)}
	}
	return nil, nil, notes
}

// systemdBooted is sd_booted(3)'s test: systemd, as PID 1, creates it.
// A host booted with systemd is expected to run logind; a host that merely
// has the package installed (its /run/systemd/sessions may exist) is not.
var systemdBooted = "/run/systemd/system"

func bootedWithSystemd() bool {
	st, err := os.Stat(systemdBooted)
	return err == nil && st.IsDir()
}
