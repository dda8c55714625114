package logindtest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/sshkick/sshkick/internal/logind"
)

const (
	sessionPathPrefix = "/org/freedesktop/login1/session"
	propertiesIface   = "org.freedesktop.DBus.Properties"

	errInvalidArgs     = "org.freedesktop.DBus.Error.InvalidArgs"
	errUnknownObject   = "org.freedesktop.DBus.Error.UnknownObject"
	errUnknownProperty = "org.freedesktop.DBus.Error.UnknownProperty"
	errUnknownIface    = "org.freedesktop.DBus.Error.UnknownInterface"
	errPropReadOnly    = "org.freedesktop.DBus.Error.PropertyReadOnly"
	nsig               = 65 // _NSIG on Linux; valid signals are 1..64
)

// Call is one Kill*/Terminate* call the fake received. Method is the bare
// method name ("KillSession", "TerminateSession", "KillUser",
// "TerminateUser"); Args are the decoded D-Bus arguments with their D-Bus
// types: KillSession (string, string, int32), TerminateSession (string),
// KillUser (uint32, int32), TerminateUser (uint32).
type Call struct {
	Method string
	Args   []any
}

// Fake is a fake org.freedesktop.login1 on a bus. It is safe for concurrent
// use. Hooks are called without the fake's lock held, so they may call
// SetSessions or Calls.
type Fake struct {
	conn *dbus.Conn

	mu               sync.Mutex
	sessions         []logind.Session // in ListSessions order, Path filled in
	byPath           map[dbus.ObjectPath]int
	props            []map[string]dbus.Variant // per session, built by SetSessions; read-only
	byID             map[string]int
	calls            []Call
	onKillSession    func(id, whom string, sig int32) *dbus.Error
	onKillUser       func(uid uint32, sig int32) *dbus.Error
	onTerminateSess  func(id string) *dbus.Error
	onTerminateUser  func(uid uint32) *dbus.Error
	onGetAll         func(id string) *dbus.Error
	listSessionsHits int
}

// NewFake connects to the bus at addr, exports a fake logind there and takes
// the name org.freedesktop.login1. It exports:
//
//   - org.freedesktop.login1.Manager at /org/freedesktop/login1 with
//     ListSessions, KillSession, TerminateSession, KillUser and TerminateUser;
//   - org.freedesktop.DBus.Properties (Get, GetAll, Set) for interface
//     org.freedesktop.login1.Session on /org/freedesktop/login1/session/<id>,
//     the id escaped as logind does (see SessionPath).
//
// Like logind it validates arguments: an unknown session id gives
// org.freedesktop.login1.NoSuchSession, a UID without sessions
// org.freedesktop.login1.NoSuchUser, a whom other than "leader", "all" or ""
// and a signal outside 1..64 org.freedesktop.DBus.Error.InvalidArgs. Those
// calls are still recorded. Kill*/Terminate* otherwise succeed and change
// nothing unless a hook says otherwise.
//
// A Session with an empty Path gets SessionPath(ID). The connection is closed
// by t.Cleanup.
func NewFake(t testing.TB, addr string, sessions ...logind.Session) *Fake {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("logindtest: connecting to %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })

	f := &Fake{conn: conn}
	f.SetSessions(sessions...)

	if err := conn.Export(manager{f}, logind.ManagerPath, logind.ManagerInterface); err != nil {
		t.Fatalf("logindtest: export manager: %v", err)
	}
	if err := conn.ExportSubtree(sessionProps{f}, sessionPathPrefix, propertiesIface); err != nil {
		t.Fatalf("logindtest: export sessions: %v", err)
	}
	reply, err := conn.RequestName(logind.BusName, dbus.NameFlagDoNotQueue)
	if err != nil {
		t.Fatalf("logindtest: RequestName(%s): %v", logind.BusName, err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("logindtest: RequestName(%s): %v", logind.BusName, reply)
	}
	return f
}

// Conn returns the fake's own connection (for emitting signals, say).
func (f *Fake) Conn() *dbus.Conn { return f.conn }

// SetSessions replaces the fake's sessions. ListSessions reports them in
// this order.
func (f *Fake) SetSessions(s ...logind.Session) {
	sessions := slices.Clone(s)
	byPath := make(map[dbus.ObjectPath]int, len(s))
	byID := make(map[string]int, len(s))
	props := make([]map[string]dbus.Variant, len(s))
	for i := range sessions {
		if sessions[i].Path == "" {
			sessions[i].Path = SessionPath(sessions[i].ID)
		}
		byPath[sessions[i].Path] = i
		byID[sessions[i].ID] = i
		props[i] = properties(sessions[i])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions, f.byPath, f.byID, f.props = sessions, byPath, byID, props
}

// Calls returns every Kill*/Terminate* call received so far, in order of
// arrival.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Call, len(f.calls))
	for i, c := range f.calls {
		out[i] = Call{Method: c.Method, Args: slices.Clone(c.Args)}
	}
	return out
}

// ListSessionsCalls returns how many times ListSessions was called.
func (f *Fake) ListSessionsCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listSessionsHits
}

// OnKillSession sets a hook run for a valid KillSession call on a known
// session (after it is recorded). A non-nil result is sent back as the D-Bus
// error. nil removes the hook.
func (f *Fake) OnKillSession(h func(id, whom string, sig int32) *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onKillSession = h
}

// OnKillUser is OnKillSession for KillUser.
func (f *Fake) OnKillUser(h func(uid uint32, sig int32) *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onKillUser = h
}

// OnTerminateSession is OnKillSession for TerminateSession.
func (f *Fake) OnTerminateSession(h func(id string) *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onTerminateSess = h
}

// OnTerminateUser is OnKillSession for TerminateUser.
func (f *Fake) OnTerminateUser(h func(uid uint32) *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onTerminateUser = h
}

// OnGetAll sets a hook run before a session object answers Properties.Get or
// GetAll. A non-nil result is sent back instead of the properties, which
// lets a test make a listed session "vanish" (return NoSuchSession(id)).
func (f *Fake) OnGetAll(h func(id string) *dbus.Error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onGetAll = h
}

// NoSuchSession returns the error logind sends for an unknown session id.
func NoSuchSession(id string) *dbus.Error {
	return dbus.NewError(logind.ErrorNoSuchSession, []any{fmt.Sprintf("No session '%s' known", id)})
}

// NoSuchUser returns the error logind sends for a UID that is not logged in.
func NoSuchUser(uid uint32) *dbus.Error {
	return dbus.NewError(logind.ErrorNoSuchUser, []any{fmt.Sprintf("User ID %d is not logged in or lingering", uid)})
}

// SessionPath returns the object path logind uses for session id:
// /org/freedesktop/login1/session/ followed by id escaped like sd-bus's
// bus_label_escape (letters, and digits after the first character, stay;
// everything else becomes _xx in hex; "" becomes "_"). "c1" stays "c1";
// "1" becomes "_31".
func SessionPath(id string) dbus.ObjectPath {
	return dbus.ObjectPath(sessionPathPrefix + "/" + escapeLabel(id))
}

func escapeLabel(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		if alpha || (digit && i > 0) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

func (f *Fake) record(method string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Method: method, Args: args})
}

func (f *Fake) hasSession(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.byID[id]
	return ok
}

func (f *Fake) hasUser(uid uint32) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if s.UID == uid {
			return true
		}
	}
	return false
}

func invalidArgs(format string, a ...any) *dbus.Error {
	return dbus.NewError(errInvalidArgs, []any{fmt.Sprintf(format, a...)})
}

func checkSignal(sig int32) *dbus.Error {
	if sig <= 0 || sig >= nsig {
		return invalidArgs("Invalid signal %d", sig)
	}
	return nil
}

// manager is exported as org.freedesktop.login1.Manager. Its exported
// methods are the D-Bus methods; their Go parameter types give the D-Bus
// signatures.
type manager struct{ f *Fake }

// listed is one element of ListSessions' a(susso).
type listed struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

func (m manager) ListSessions() ([]listed, *dbus.Error) {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listSessionsHits++
	out := make([]listed, len(f.sessions))
	for i, s := range f.sessions {
		out[i] = listed{s.ID, s.UID, s.User, s.Seat, s.Path}
	}
	return out, nil
}

func (m manager) KillSession(id, whom string, sig int32) *dbus.Error {
	f := m.f
	f.record("KillSession", id, whom, sig)
	if !f.hasSession(id) {
		return NoSuchSession(id)
	}
	if whom != "" && whom != "leader" && whom != "all" {
		return invalidArgs("Invalid kill parameter '%s'", whom)
	}
	if err := checkSignal(sig); err != nil {
		return err
	}
	f.mu.Lock()
	h := f.onKillSession
	f.mu.Unlock()
	if h != nil {
		return h(id, whom, sig)
	}
	return nil
}

func (m manager) TerminateSession(id string) *dbus.Error {
	f := m.f
	f.record("TerminateSession", id)
	if !f.hasSession(id) {
		return NoSuchSession(id)
	}
	f.mu.Lock()
	h := f.onTerminateSess
	f.mu.Unlock()
	if h != nil {
		return h(id)
	}
	return nil
}

func (m manager) KillUser(uid uint32, sig int32) *dbus.Error {
	f := m.f
	f.record("KillUser", uid, sig)
	if !f.hasUser(uid) {
		return NoSuchUser(uid)
	}
	if err := checkSignal(sig); err != nil {
		return err
	}
	f.mu.Lock()
	h := f.onKillUser
	f.mu.Unlock()
	if h != nil {
		return h(uid, sig)
	}
	return nil
}

func (m manager) TerminateUser(uid uint32) *dbus.Error {
	f := m.f
	f.record("TerminateUser", uid)
	if !f.hasUser(uid) {
		return NoSuchUser(uid)
	}
	f.mu.Lock()
	h := f.onTerminateUser
	f.mu.Unlock()
	if h != nil {
		return h(uid)
	}
	return nil
}

// sessionProps is exported as org.freedesktop.DBus.Properties on the whole
// /org/freedesktop/login1/session subtree; the message's path picks the
// session.
type sessionProps struct{ f *Fake }

// userRef and seatRef give the (uo) and (so) struct signatures.
type userRef struct {
	UID  uint32
	Path dbus.ObjectPath
}

type seatRef struct {
	ID   string
	Path dbus.ObjectPath
}

// lookup finds the session object msg was sent to. The returned map is
// shared and must not be modified.
func (p sessionProps) lookup(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	f := p.f
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	f.mu.Lock()
	i, ok := f.byPath[path]
	var (
		id    string
		props map[string]dbus.Variant
	)
	if ok {
		id, props = f.sessions[i].ID, f.props[i]
	}
	h := f.onGetAll
	f.mu.Unlock()
	if !ok {
		return nil, dbus.NewError(errUnknownObject, []any{fmt.Sprintf("Unknown object '%s'.", path)})
	}
	if iface != logind.SessionInterface {
		return nil, dbus.NewError(errUnknownIface, []any{fmt.Sprintf("Unknown interface '%s'.", iface)})
	}
	if h != nil {
		if err := h(id); err != nil {
			return nil, err
		}
	}
	return props, nil
}

func (p sessionProps) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	return p.lookup(msg, iface)
}

func (p sessionProps) Get(msg dbus.Message, iface, name string) (dbus.Variant, *dbus.Error) {
	props, err := p.lookup(msg, iface)
	if err != nil {
		return dbus.Variant{}, err
	}
	v, ok := props[name]
	if !ok {
		return dbus.Variant{}, dbus.NewError(errUnknownProperty, []any{fmt.Sprintf("Unknown property '%s'.", name)})
	}
	return v, nil
}

func (p sessionProps) Set(msg dbus.Message, iface, name string, _ dbus.Variant) *dbus.Error {
	if _, err := p.lookup(msg, iface); err != nil {
		return err
	}
	return dbus.NewError(errPropReadOnly, []any{fmt.Sprintf("Property '%s' is not writable.", name)})
}

// properties builds the Session interface's properties with logind's types.
func properties(s logind.Session) map[string]dbus.Variant {
	usec := func(t time.Time) uint64 {
		if t.IsZero() {
			return 0
		}
		return uint64(t.UnixMicro())
	}
	seatPath := dbus.ObjectPath("/")
	if s.Seat != "" {
		seatPath = dbus.ObjectPath("/org/freedesktop/login1/seat/" + escapeLabel(s.Seat))
	}
	userPath := dbus.ObjectPath("/org/freedesktop/login1/user/_" + strconv.FormatUint(uint64(s.UID), 10))
	ts, idle := usec(s.Timestamp), usec(s.IdleSince)
	return map[string]dbus.Variant{
		"Id":                     dbus.MakeVariant(s.ID),
		"User":                   dbus.MakeVariant(userRef{s.UID, userPath}),
		"Name":                   dbus.MakeVariant(s.User),
		"Timestamp":              dbus.MakeVariant(ts),
		"TimestampMonotonic":     dbus.MakeVariant(monotonic(ts)),
		"VTNr":                   dbus.MakeVariant(s.VTNr),
		"Seat":                   dbus.MakeVariant(seatRef{s.Seat, seatPath}),
		"TTY":                    dbus.MakeVariant(s.TTY),
		"Display":                dbus.MakeVariant(s.Display),
		"Remote":                 dbus.MakeVariant(s.Remote),
		"RemoteHost":             dbus.MakeVariant(s.RemoteHost),
		"RemoteUser":             dbus.MakeVariant(s.RemoteUser),
		"Service":                dbus.MakeVariant(s.Service),
		"Desktop":                dbus.MakeVariant(""),
		"Scope":                  dbus.MakeVariant(s.Scope),
		"Leader":                 dbus.MakeVariant(s.Leader),
		"Audit":                  dbus.MakeVariant(uint32(0)),
		"Type":                   dbus.MakeVariant(s.Type),
		"Class":                  dbus.MakeVariant(s.Class),
		"Active":                 dbus.MakeVariant(s.State == "active"),
		"State":                  dbus.MakeVariant(s.State),
		"IdleHint":               dbus.MakeVariant(s.IdleHint),
		"IdleSinceHint":          dbus.MakeVariant(idle),
		"IdleSinceHintMonotonic": dbus.MakeVariant(monotonic(idle)),
		"LockedHint":             dbus.MakeVariant(false),
	}
}

// monotonic makes up a CLOCK_MONOTONIC value for a realtime one: nothing
// reads it, but it should be 0 exactly when the realtime value is.
func monotonic(realtime uint64) uint64 {
	if realtime == 0 {
		return 0
	}
	return realtime % (1 << 40)
}
