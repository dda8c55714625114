// Package logind talks to systemd-logind (org.freedesktop.login1) over the
// D-Bus system bus.
//
// It does two things. It lists login sessions with the properties sshkick
// shows and matches on, and it forwards kill/terminate requests to logind's
// Manager object. It never decides policy: it does not choose which session
// to kick, which signal to use, or whether a session is idle. Only the kick
// package calls the Kill* and Terminate* methods; everything else uses
// Sessions.
//
// The package uses github.com/godbus/dbus/v5 directly rather than
// go-systemd's login1, because login1 drops the D-Bus error of
// TerminateSession/TerminateUser, has no KillSession and cannot be given a
// connection. Every D-Bus error is returned here, wrapped with the method
// and its argument, so errors.As(err, &dbus.Error{}) still works.
//
// Tests use package logindtest, which runs a private dbus-daemon and exports
// a fake org.freedesktop.login1 on it.
package logind

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// D-Bus names used by logind.
const (
	BusName          = "org.freedesktop.login1"
	ManagerPath      = dbus.ObjectPath("/org/freedesktop/login1")
	ManagerInterface = "org.freedesktop.login1.Manager"
	SessionInterface = "org.freedesktop.login1.Session"

	// ErrorNoSuchSession is the D-Bus error name logind uses for an
	// unknown session ID.
	ErrorNoSuchSession = "org.freedesktop.login1.NoSuchSession"
	// ErrorNoSuchUser is the D-Bus error name logind uses for a UID that
	// has no sessions and is not lingering.
	ErrorNoSuchUser = "org.freedesktop.login1.NoSuchUser"
	// errorUnknownObject is what sd-bus answers for a path that no longer
	// has an object behind it (a session that has just gone away).
	errorUnknownObject = "org.freedesktop.DBus.Error.UnknownObject"
)

// ConnectTimeout bounds Connect when its context has no deadline. A system
// bus that accepts the connection but never answers must not hang sshkick.
const ConnectTimeout = 5 * time.Second

// getAllConcurrency is the number of Properties.GetAll calls Sessions keeps in
// flight. It is a variable so that the benchmark can compare settings.
var getAllConcurrency = 16

// ErrUnavailable means that logind cannot be used: there is no system bus, the
// bus cannot be reached, or nobody owns org.freedesktop.login1 (no systemd,
// or a container). Errors returned by Connect wrap it.
var ErrUnavailable = errors.New("logind is not available")

// Session is one logind session. The fields mirror the properties of the
// org.freedesktop.login1.Session interface of the same name. Properties that
// logind does not report stay zero.
type Session struct {
	ID   string
	UID  uint32
	User string // user name ("Name" property)
	Seat string // seat ID, "" for sessions without a seat (ssh)
	Path dbus.ObjectPath

	TTY        string
	RemoteHost string
	RemoteUser string
	Service    string // PAM service, e.g. "sshd", "login"
	Type       string // "tty", "x11", "wayland", "mir", "unspecified"
	Class      string // "user", "greeter", "lock-screen", "background", ...
	State      string // "online", "active", "closing"
	Scope      string // systemd scope unit, e.g. "session-4.scope"
	Display    string

	Remote bool
	Leader uint32 // PID of the session leader
	VTNr   uint32

	Timestamp time.Time // session creation (Timestamp, µs since the epoch); zero if unknown
	IdleHint  bool
	IdleSince time.Time // IdleSinceHint (µs since the epoch); zero if not idle/unknown
}

// Client is a connection to logind. It is safe for concurrent use.
type Client struct {
	conn   *dbus.Conn
	owned  bool
	cancel context.CancelFunc // cancels the connection's context (owned only)
	once   sync.Once
}

// Connect opens a private connection to the system bus and checks that
// org.freedesktop.login1 has an owner. Like godbus it honours
// DBUS_SYSTEM_BUS_ADDRESS and otherwise uses /run/dbus/system_bus_socket.
//
// A missing bus, a missing or refusing socket, a failed authentication or a
// bus on which nobody owns org.freedesktop.login1 all give an error that wraps
// ErrUnavailable. The whole attempt is bounded by ctx, and by ConnectTimeout
// if ctx has no deadline. When ctx ends first, the error also wraps ctx.Err().
//
// Only ownership is checked, not activation: a bus that could start logind on
// demand but has not done so counts as unavailable.
func Connect(ctx context.Context) (*Client, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ConnectTimeout)
		defer cancel()
	}

	// The connection lives on its own context so that it outlives ctx;
	// cancelling connCtx closes it (godbus watches it), which unblocks a
	// stuck Auth or Hello.
	connCtx, connCancel := context.WithCancel(context.Background())
	type result struct {
		conn *dbus.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		conn, err := dbus.ConnectSystemBus(dbus.WithContext(connCtx))
		ch <- result{conn, err}
	}()

	var conn *dbus.Conn
	select {
	case r := <-ch:
		if r.err != nil {
			connCancel()
			return nil, fmt.Errorf("%w: system bus: %w", ErrUnavailable, r.err)
		}
		conn = r.conn
	case <-ctx.Done():
		// Closing connCtx makes the pending ConnectSystemBus fail soon; the
		// goroutine then exits on its own (ch is buffered).
		connCancel()
		return nil, fmt.Errorf("%w: connecting to the system bus: %w", ErrUnavailable, ctx.Err())
	}

	c := &Client{conn: conn, owned: true, cancel: connCancel}
	var has bool
	err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, BusName).Store(&has)
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: NameHasOwner(%s): %w", ErrUnavailable, BusName, ctx.Err())
		}
		return nil, fmt.Errorf("%w: NameHasOwner(%s): %w", ErrUnavailable, BusName, err)
	}
	if !has {
		c.Close()
		return nil, fmt.Errorf("%w: nobody owns %s on the system bus", ErrUnavailable, BusName)
	}
	return c, nil
}

// New returns a Client that uses conn, which must already be authenticated
// (dbus.Connect does that). The Client does not own conn: Close leaves it
// open. New does not check that logind is present.
func New(conn *dbus.Conn) *Client {
	return &Client{conn: conn}
}

// Close closes the connection if Connect opened it. It is safe to call more
// than once.
func (c *Client) Close() error {
	var err error
	c.once.Do(func() {
		if c.owned {
			err = c.conn.Close()
			c.cancel()
		}
	})
	return err
}

func (c *Client) manager() dbus.BusObject {
	return c.conn.Object(BusName, ManagerPath)
}

// listEntry is one element of ListSessions' a(susso).
type listEntry struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

// Sessions lists logind's sessions with their properties.
//
// It calls Manager.ListSessions once and then
// org.freedesktop.DBus.Properties.GetAll("org.freedesktop.login1.Session")
// once per session. Hosts may have thousands of sessions, so the GetAll
// calls run with bounded concurrency (16 in flight) instead of one after the
// other; the bus and logind serialise them anyway, but pipelining hides the
// round trips. The result keeps ListSessions' order.
//
// A session that goes away between ListSessions and its GetAll (logind
// answers org.freedesktop.login1.NoSuchSession or
// org.freedesktop.DBus.Error.UnknownObject) is left out, not reported as an
// error. Any other error aborts the listing and is returned.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var list []listEntry
	if err := c.manager().CallWithContext(ctx, ManagerInterface+".ListSessions", 0).Store(&list); err != nil {
		return nil, fmt.Errorf("logind ListSessions: %w", err)
	}
	if len(list) == 0 {
		return nil, nil
	}

	parent := ctx
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	type result struct {
		s    Session
		gone bool
		err  error
	}
	results := make([]result, len(list))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(getAllConcurrency, len(list))) {
		wg.Go(func() {
			for i := range next {
				s, gone, err := c.session(ctx, list[i])
				results[i] = result{s, gone, err}
				if err != nil {
					cancel() // no point in asking for the rest
				}
			}
		})
	}
	sent := 0
feed:
	for sent < len(list) {
		select {
		case next <- sent:
			sent++
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()

	// Report the first real error; errors caused by our own cancel() come
	// after it in time but maybe not in order.
	var ctxErr error
	for _, r := range results[:sent] {
		if r.err == nil {
			continue
		}
		if errors.Is(r.err, context.Canceled) || errors.Is(r.err, context.DeadlineExceeded) {
			if ctxErr == nil {
				ctxErr = r.err
			}
			continue
		}
		return nil, r.err
	}
	if err := parent.Err(); err != nil {
		return nil, fmt.Errorf("logind Sessions: %w", err)
	}
	if ctxErr != nil {
		return nil, ctxErr
	}
	out := make([]Session, 0, len(list))
	for _, r := range results {
		if !r.gone {
			out = append(out, r.s)
		}
	}
	return out, nil
}

// session reads one session's properties. gone reports that it vanished.
func (c *Client) session(ctx context.Context, e listEntry) (s Session, gone bool, err error) {
	s = Session{ID: e.ID, UID: e.UID, User: e.User, Seat: e.Seat, Path: e.Path}
	call := c.conn.Object(BusName, e.Path).
		CallWithContext(ctx, "org.freedesktop.DBus.Properties.GetAll", 0, SessionInterface)
	// Take the a{sv} from the body as decoded; dbus.Store would copy it
	// through reflection (and re-derive each variant's signature).
	props, ok := bodyProps(call)
	if !ok && call.Err == nil {
		err = call.Store(&props)
	} else {
		err = call.Err
	}
	if err != nil {
		switch dbusErrorName(err) {
		case ErrorNoSuchSession, errorUnknownObject:
			return s, true, nil
		}
		return s, false, fmt.Errorf("logind GetAll session %s: %w", e.ID, err)
	}
	decodeProps(&s, props)
	return s, false, nil
}

func bodyProps(call *dbus.Call) (map[string]dbus.Variant, bool) {
	if call.Err != nil || len(call.Body) != 1 {
		return nil, false
	}
	p, ok := call.Body[0].(map[string]dbus.Variant)
	return p, ok
}

// decodeProps fills s from a GetAll answer. A property that is missing or has
// an unexpected type leaves the field as it was.
func decodeProps(s *Session, p map[string]dbus.Variant) {
	str := func(name string, dst *string) {
		if v, ok := p[name].Value().(string); ok {
			*dst = v
		}
	}
	u32 := func(name string, dst *uint32) {
		if v, ok := p[name].Value().(uint32); ok {
			*dst = v
		}
	}
	boolean := func(name string, dst *bool) {
		if v, ok := p[name].Value().(bool); ok {
			*dst = v
		}
	}
	usec := func(name string, dst *time.Time) {
		if v, ok := p[name].Value().(uint64); ok && v != 0 && v <= 1<<63-1 {
			*dst = time.UnixMicro(int64(v))
		}
	}

	str("Id", &s.ID)
	str("Name", &s.User)
	// User is (uo): the UID and the user's object path.
	if v, ok := p["User"].Value().([]any); ok && len(v) == 2 {
		if uid, ok := v[0].(uint32); ok {
			s.UID = uid
		}
	}
	// Seat is (so): the seat ID ("" for none) and its object path.
	if v, ok := p["Seat"].Value().([]any); ok && len(v) == 2 {
		if seat, ok := v[0].(string); ok {
			s.Seat = seat
		}
	}
	str("TTY", &s.TTY)
	str("RemoteHost", &s.RemoteHost)
	str("RemoteUser", &s.RemoteUser)
	str("Service", &s.Service)
	str("Type", &s.Type)
	str("Class", &s.Class)
	str("State", &s.State)
	str("Scope", &s.Scope)
	str("Display", &s.Display)
	boolean("Remote", &s.Remote)
	u32("Leader", &s.Leader)
	u32("VTNr", &s.VTNr)
	usec("Timestamp", &s.Timestamp)
	boolean("IdleHint", &s.IdleHint)
	usec("IdleSinceHint", &s.IdleSince)
}

// dbusErrorName returns the D-Bus error name inside err, or "".
func dbusErrorName(err error) string {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	var pe *dbus.Error
	if errors.As(err, &pe) && pe != nil {
		return pe.Name
	}
	return ""
}

// IsNoSuchSession reports whether err is logind's answer for an unknown
// session ID (the session ended before the call reached logind).
func IsNoSuchSession(err error) bool {
	return dbusErrorName(err) == ErrorNoSuchSession
}

// IsNoSuchUser reports whether err is logind's answer for a UID that has no
// sessions.
func IsNoSuchUser(err error) bool {
	return dbusErrorName(err) == ErrorNoSuchUser
}

// KillSession sends sig to the processes of session id: whom is "leader"
// (only the session leader) or "all" (every process in the session scope).
// It calls Manager.KillSession(s id, s who, i signal).
func (c *Client) KillSession(ctx context.Context, id, whom string, sig syscall.Signal) error {
	err := c.manager().CallWithContext(ctx, ManagerInterface+".KillSession", 0, id, whom, int32(sig)).Err
	if err != nil {
		return fmt.Errorf("logind KillSession %s: %w", id, err)
	}
	return nil
}

// TerminateSession asks logind to terminate session id: it stops the
// session's scope, which kills all its processes (Manager.TerminateSession).
func (c *Client) TerminateSession(ctx context.Context, id string) error {
	err := c.manager().CallWithContext(ctx, ManagerInterface+".TerminateSession", 0, id).Err
	if err != nil {
		return fmt.Errorf("logind TerminateSession %s: %w", id, err)
	}
	return nil
}

// KillUser sends sig to all processes of user uid (Manager.KillUser(u, i)).
func (c *Client) KillUser(ctx context.Context, uid uint32, sig syscall.Signal) error {
	err := c.manager().CallWithContext(ctx, ManagerInterface+".KillUser", 0, uid, int32(sig)).Err
	if err != nil {
		return fmt.Errorf("logind KillUser %d: %w", uid, err)
	}
	return nil
}

// TerminateUser asks logind to terminate all sessions and processes of user
// uid (Manager.TerminateUser).
func (c *Client) TerminateUser(ctx context.Context, uid uint32) error {
	err := c.manager().CallWithContext(ctx, ManagerInterface+".TerminateUser", 0, uid).Err
	if err != nil {
		return fmt.Errorf("logind TerminateUser %d: %w", uid, err)
	}
	return nil
}
