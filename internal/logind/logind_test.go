package logind_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/sshkick/sshkick/internal/logind"
	"github.com/sshkick/sshkick/internal/logind/logindtest"
)

// µs-precision times, as logind stores them.
var (
	t0 = time.UnixMicro(1_764_000_000_123_456)
	t1 = time.UnixMicro(1_764_000_600_000_001)
)

// threeSessions: an ssh login with a pty, an ssh session without one (scp,
// sftp, "ssh host cmd") and a console login on seat0.
var threeSessions = []logind.Session{
	{
		ID: "12", UID: 1000, User: "alice", TTY: "pts/0",
		RemoteHost: "192.0.2.10", RemoteUser: "", Service: "sshd", Type: "tty", Class: "user",
		State: "active", Scope: "session-12.scope", Remote: true, Leader: 4242,
		Timestamp: t0, IdleHint: true, IdleSince: t1,
	},
	{
		ID: "13", UID: 1001, User: "bob", TTY: "",
		RemoteHost: "2001:db8::7", RemoteUser: "bobby", Service: "sshd", Type: "unspecified", Class: "user",
		State: "online", Scope: "session-13.scope", Remote: true, Leader: 4343,
		Timestamp: t1,
	},
	{
		ID: "c1", UID: 0, User: "root", Seat: "seat0", TTY: "tty1", Display: "",
		Service: "login", Type: "tty", Class: "user", State: "active", Scope: "session-c1.scope",
		Leader: 1, VTNr: 1, Timestamp: t0,
	},
}

// withPaths returns s with the object paths the fake gives them.
func withPaths(s []logind.Session) []logind.Session {
	out := make([]logind.Session, len(s))
	for i, x := range s {
		if x.Path == "" {
			x.Path = logindtest.SessionPath(x.ID)
		}
		out[i] = x
	}
	return out
}

// setup starts a bus with a fake logind and returns a Client on its own
// connection (logind.New).
func setup(t testing.TB, sessions ...logind.Session) (*logind.Client, *logindtest.Fake, *dbus.Conn) {
	t.Helper()
	addr := logindtest.StartBus(t)
	fake := logindtest.NewFake(t, addr, sessions...)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return logind.New(conn), fake, conn
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dbusName(err error) string {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	return ""
}

func TestConnectFindsFake(t *testing.T) {
	addr := logindtest.StartBus(t)
	logindtest.NewFake(t, addr, threeSessions...)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)

	c, err := logind.Connect(ctxT(t))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	got, err := c.Sessions(ctxT(t))
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	if diff := cmp.Diff(withPaths(threeSessions), got); diff != "" {
		t.Errorf("Sessions mismatch (-want +got):\n%s", diff)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Sessions(ctxT(t)); err == nil {
		t.Error("Sessions after Close succeeded")
	}
}

func TestConnectMissingSocket(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-such-socket"))
	start := time.Now()
	c, err := logind.Connect(context.Background())
	if err == nil {
		c.Close()
		t.Fatal("Connect succeeded")
	}
	if !errors.Is(err, logind.ErrUnavailable) {
		t.Errorf("error %v does not wrap ErrUnavailable", err)
	}
	t.Logf("error: %v (%v)", err, time.Since(start))
}

func TestConnectInvalidAddress(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "nonsense")
	_, err := logind.Connect(context.Background())
	if !errors.Is(err, logind.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestConnectDefaultSocket(t *testing.T) {
	for _, p := range []string{"/var/run/dbus/system_bus_socket", "/run/dbus/system_bus_socket"} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists; this test is for hosts without a system bus", p)
		}
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	_, err := logind.Connect(context.Background())
	if !errors.Is(err, logind.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
}

func TestConnectBusWithoutLogind(t *testing.T) {
	addr := logindtest.StartBus(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	c, err := logind.Connect(ctxT(t))
	if err == nil {
		c.Close()
		t.Fatal("Connect succeeded without org.freedesktop.login1")
	}
	if !errors.Is(err, logind.ErrUnavailable) {
		t.Errorf("error %v does not wrap ErrUnavailable", err)
	}
	t.Logf("error: %v", err)
}

// A socket that accepts connections but never says anything: Connect must
// give up when its context ends.
func TestConnectHungBus(t *testing.T) {
	dir, err := os.MkdirTemp("", "sshkick-hung-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "bus")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range accepted {
			c.Close()
		}
	})

	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+sock)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = logind.Connect(ctx)
	if !errors.Is(err, logind.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Connect took %v", d)
	}
}

func TestSessionsDecodesEveryField(t *testing.T) {
	t.Parallel()
	c, _, _ := setup(t, threeSessions...)
	got, err := c.Sessions(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := withPaths(threeSessions)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sessions mismatch (-want +got):\n%s", diff)
	}
	// Spot checks that do not depend on the fake and the client agreeing.
	if got[0].Path != "/org/freedesktop/login1/session/_312" {
		t.Errorf("path of session 12 = %q", got[0].Path)
	}
	if got[2].Seat != "seat0" || got[2].VTNr != 1 || got[0].Seat != "" {
		t.Errorf("seats: %q/%d, %q", got[2].Seat, got[2].VTNr, got[0].Seat)
	}
	if !got[1].IdleSince.IsZero() || !got[0].IdleSince.Equal(t1) {
		t.Errorf("IdleSince: %v, %v", got[0].IdleSince, got[1].IdleSince)
	}
}

func TestSessionsEmpty(t *testing.T) {
	t.Parallel()
	c, _, _ := setup(t)
	got, err := c.Sessions(ctxT(t))
	if err != nil || len(got) != 0 {
		t.Fatalf("Sessions = %v, %v; want none", got, err)
	}
}

// Properties that logind does not send stay zero; ListSessions' values are
// kept when GetAll does not have them.
func TestSessionsMissingProperties(t *testing.T) {
	t.Parallel()
	addr := logindtest.StartBus(t)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	type entry struct {
		ID   string
		UID  uint32
		User string
		Seat string
		Path dbus.ObjectPath
	}
	list := func() ([]entry, *dbus.Error) {
		return []entry{{"5", 1000, "alice", "seat1", "/org/freedesktop/login1/session/_35"}}, nil
	}
	getAll := func(string) (map[string]dbus.Variant, *dbus.Error) {
		return map[string]dbus.Variant{
			"TTY":    dbus.MakeVariant("pts/3"),
			"Leader": dbus.MakeVariant("not a uint32"), // wrong type: ignored
		}, nil
	}
	if err := conn.ExportMethodTable(map[string]any{"ListSessions": list}, logind.ManagerPath, logind.ManagerInterface); err != nil {
		t.Fatal(err)
	}
	if err := conn.ExportMethodTable(map[string]any{"GetAll": getAll}, "/org/freedesktop/login1/session/_35", "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.RequestName(logind.BusName, dbus.NameFlagDoNotQueue); err != nil {
		t.Fatal(err)
	}
	client, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	got, err := logind.New(client).Sessions(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []logind.Session{{ID: "5", UID: 1000, User: "alice", Seat: "seat1", Path: "/org/freedesktop/login1/session/_35", TTY: "pts/3"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestSessionsSkipsVanished(t *testing.T) {
	t.Parallel()
	for _, name := range []string{logind.ErrorNoSuchSession, "org.freedesktop.DBus.Error.UnknownObject"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, fake, _ := setup(t, threeSessions...)
			fake.OnGetAll(func(id string) *dbus.Error {
				if id == "13" {
					return dbus.NewError(name, []any{"gone"})
				}
				return nil
			})
			got, err := c.Sessions(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			want := withPaths([]logind.Session{threeSessions[0], threeSessions[2]})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSessionsGetAllError(t *testing.T) {
	t.Parallel()
	c, fake, _ := setup(t, threeSessions...)
	fake.OnGetAll(func(id string) *dbus.Error {
		if id == "c1" {
			return dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"no"})
		}
		return nil
	})
	got, err := c.Sessions(ctxT(t))
	if err == nil {
		t.Fatalf("Sessions = %v, want an error", got)
	}
	if dbusName(err) != "org.freedesktop.DBus.Error.AccessDenied" || !strings.Contains(err.Error(), "c1") {
		t.Errorf("error = %v (%s)", err, dbusName(err))
	}
}

func TestSessionsListError(t *testing.T) {
	t.Parallel()
	addr := logindtest.StartBus(t)
	// Someone owns the name but exports nothing: ListSessions fails.
	owner, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { owner.Close() })
	if _, err := owner.RequestName(logind.BusName, dbus.NameFlagDoNotQueue); err != nil {
		t.Fatal(err)
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_, err = logind.New(conn).Sessions(ctxT(t))
	if err == nil || !strings.Contains(err.Error(), "logind ListSessions") || dbusName(err) == "" {
		t.Fatalf("error = %v", err)
	}
}

func TestSessionsCancelled(t *testing.T) {
	t.Parallel()
	c, _, _ := setup(t, threeSessions...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Sessions(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func manySessions(n int) []logind.Session {
	out := make([]logind.Session, n)
	for i := range out {
		out[i] = logind.Session{
			ID: fmt.Sprint(i + 1), UID: uint32(1000 + i%50), User: fmt.Sprintf("user%d", i%50),
			TTY: fmt.Sprintf("pts/%d", i), RemoteHost: fmt.Sprintf("198.51.100.%d", i%250),
			Service: "sshd", Type: "tty", Class: "user", State: "active", Remote: true,
			Scope: fmt.Sprintf("session-%d.scope", i+1), Leader: uint32(10000 + i),
			Timestamp: t0.Add(time.Duration(i) * time.Second),
		}
	}
	return out
}

func TestSessions2000(t *testing.T) {
	t.Parallel()
	sessions := manySessions(2000)
	c, fake, _ := setup(t, sessions...)
	got, err := c.Sessions(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(withPaths(sessions), got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if n := fake.ListSessionsCalls(); n != 1 {
		t.Errorf("ListSessions called %d times", n)
	}
}

func BenchmarkSessions2000(b *testing.B) {
	sessions := manySessions(2000)
	c, _, _ := setup(b, sessions...)
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
			defer logind.SetGetAllConcurrency(n)()
			ctx := context.Background()
			for b.Loop() {
				got, err := c.Sessions(ctx)
				if err != nil || len(got) != len(sessions) {
					b.Fatalf("Sessions: %d, %v", len(got), err)
				}
			}
		})
	}
}

func TestKillAndTerminateReachLogind(t *testing.T) {
	t.Parallel()
	c, fake, _ := setup(t, threeSessions...)
	ctx := ctxT(t)
	if err := c.KillSession(ctx, "12", "leader", syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := c.KillSession(ctx, "c1", "all", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := c.TerminateSession(ctx, "13"); err != nil {
		t.Fatal(err)
	}
	if err := c.KillUser(ctx, 1000, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := c.TerminateUser(ctx, 1001); err != nil {
		t.Fatal(err)
	}
	want := []logindtest.Call{
		{Method: "KillSession", Args: []any{"12", "leader", int32(1)}},
		{Method: "KillSession", Args: []any{"c1", "all", int32(9)}},
		{Method: "TerminateSession", Args: []any{"13"}},
		{Method: "KillUser", Args: []any{uint32(1000), int32(15)}},
		{Method: "TerminateUser", Args: []any{uint32(1001)}},
	}
	if diff := cmp.Diff(want, fake.Calls()); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
}

func TestErrorsFromLogind(t *testing.T) {
	t.Parallel()
	c, fake, _ := setup(t, threeSessions...)
	ctx := ctxT(t)
	denied := dbus.NewError("org.freedesktop.DBus.Error.AccessDenied", []any{"Access denied"})
	fake.OnKillSession(func(id, whom string, sig int32) *dbus.Error {
		if id == "c1" {
			return denied
		}
		return nil
	})
	fake.OnKillUser(func(uid uint32, sig int32) *dbus.Error { return denied })
	fake.OnTerminateSession(func(id string) *dbus.Error { return denied })
	fake.OnTerminateUser(func(uid uint32) *dbus.Error { return denied })

	tests := []struct {
		name     string
		call     func() error
		dbusName string
		prefix   string
	}{
		{"unknown session", func() error { return c.KillSession(ctx, "nope", "all", syscall.SIGTERM) }, logind.ErrorNoSuchSession, "logind KillSession nope: "},
		{"unknown session terminate", func() error { return c.TerminateSession(ctx, "nope") }, logind.ErrorNoSuchSession, "logind TerminateSession nope: "},
		{"bad whom", func() error { return c.KillSession(ctx, "12", "everyone", syscall.SIGTERM) }, "org.freedesktop.DBus.Error.InvalidArgs", "logind KillSession 12: "},
		{"bad signal", func() error { return c.KillSession(ctx, "12", "all", syscall.Signal(99)) }, "org.freedesktop.DBus.Error.InvalidArgs", "logind KillSession 12: "},
		{"hook error", func() error { return c.KillSession(ctx, "c1", "all", syscall.SIGTERM) }, "org.freedesktop.DBus.Error.AccessDenied", "logind KillSession c1: "},
		{"terminate hook", func() error { return c.TerminateSession(ctx, "12") }, "org.freedesktop.DBus.Error.AccessDenied", "logind TerminateSession 12: "},
		{"unknown user", func() error { return c.KillUser(ctx, 4711, syscall.SIGTERM) }, logind.ErrorNoSuchUser, "logind KillUser 4711: "},
		{"unknown user terminate", func() error { return c.TerminateUser(ctx, 4711) }, logind.ErrorNoSuchUser, "logind TerminateUser 4711: "},
		{"kill user hook", func() error { return c.KillUser(ctx, 1000, syscall.SIGTERM) }, "org.freedesktop.DBus.Error.AccessDenied", "logind KillUser 1000: "},
		{"terminate user hook", func() error { return c.TerminateUser(ctx, 1000) }, "org.freedesktop.DBus.Error.AccessDenied", "logind TerminateUser 1000: "},
	}
	for _, tt := range tests {
		err := tt.call()
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if got := dbusName(err); got != tt.dbusName {
			t.Errorf("%s: D-Bus error %q, want %q (%v)", tt.name, got, tt.dbusName, err)
		}
		if !strings.HasPrefix(err.Error(), tt.prefix) {
			t.Errorf("%s: error %q does not start with %q", tt.name, err, tt.prefix)
		}
	}
	if !logind.IsNoSuchSession(tests[0].call()) || logind.IsNoSuchSession(tests[4].call()) {
		t.Error("IsNoSuchSession is wrong")
	}
	if !logind.IsNoSuchUser(tests[6].call()) || logind.IsNoSuchUser(nil) {
		t.Error("IsNoSuchUser is wrong")
	}
	// Rejected calls are recorded too.
	if n := len(fake.Calls()); n != len(tests)+3 {
		t.Errorf("fake recorded %d calls, want %d", n, len(tests)+3)
	}
}

// The hook lets a test make KillSession real: here it signals a process the
// test started.
func TestOnKillSessionSignalsProcess(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	s := threeSessions[0]
	s.Leader = uint32(cmd.Process.Pid)
	c, fake, _ := setup(t, s)
	fake.OnKillSession(func(id, whom string, sig int32) *dbus.Error {
		if err := syscall.Kill(cmd.Process.Pid, syscall.Signal(sig)); err != nil {
			return dbus.MakeFailedError(err)
		}
		return nil
	})
	if err := c.KillSession(ctxT(t), s.ID, "leader", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for Cleanup
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("sleep ended with %v, want SIGTERM", err)
		}
	case <-time.After(time.Minute): // a hang, not a timing: the kill is immediate
		t.Fatal("sleep was not killed")
	}
}

// The fake's properties carry logind's D-Bus types; a client other than
// ours (busctl, gdbus) would see the same signatures.
func TestFakePropertyTypes(t *testing.T) {
	t.Parallel()
	_, _, conn := setup(t, threeSessions...)
	want := map[string]string{
		"Id": "s", "User": "(uo)", "Name": "s", "Timestamp": "t", "TimestampMonotonic": "t",
		"VTNr": "u", "Seat": "(so)", "TTY": "s", "Display": "s", "Remote": "b", "RemoteHost": "s",
		"RemoteUser": "s", "Service": "s", "Desktop": "s", "Scope": "s", "Leader": "u", "Audit": "u",
		"Type": "s", "Class": "s", "Active": "b", "State": "s", "IdleHint": "b", "IdleSinceHint": "t",
		"IdleSinceHintMonotonic": "t", "LockedHint": "b",
	}
	obj := conn.Object(logind.BusName, logindtest.SessionPath("c1"))
	// Read the message body itself: dbus.Store into map[string]dbus.Variant
	// re-derives the signature from the Go value, turning (uo) into av.
	call := obj.Call("org.freedesktop.DBus.Properties.GetAll", 0, logind.SessionInterface)
	if call.Err != nil {
		t.Fatal(call.Err)
	}
	props, ok := call.Body[0].(map[string]dbus.Variant)
	if !ok || len(call.Body) != 1 {
		t.Fatalf("GetAll body is %T", call.Body[0])
	}
	got := map[string]string{}
	for k, v := range props {
		got[k] = v.Signature().String()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signatures (-want +got):\n%s", diff)
	}

	// Get works too, and Seat carries the seat's path.
	v, err := obj.GetProperty(logind.SessionInterface + ".Seat")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(v.Value()); s != "[seat0 /org/freedesktop/login1/seat/seat0]" {
		t.Errorf("Seat = %s", s)
	}
	if _, err := obj.GetProperty(logind.SessionInterface + ".Nope"); dbusName(err) != "org.freedesktop.DBus.Error.UnknownProperty" {
		t.Errorf("unknown property: %v", err)
	}
	err = conn.Object(logind.BusName, "/org/freedesktop/login1/session/nope").
		Call("org.freedesktop.DBus.Properties.GetAll", 0, logind.SessionInterface).Err
	if dbusName(err) != "org.freedesktop.DBus.Error.UnknownObject" {
		t.Errorf("GetAll on a missing session: %v", err)
	}
}

func TestSessionPath(t *testing.T) {
	for id, want := range map[string]dbus.ObjectPath{
		"c1":  "/org/freedesktop/login1/session/c1",
		"1":   "/org/freedesktop/login1/session/_31",
		"123": "/org/freedesktop/login1/session/_3123",
		"a-b": "/org/freedesktop/login1/session/a_2db",
		"":    "/org/freedesktop/login1/session/_",
	} {
		if got := logindtest.SessionPath(id); got != want {
			t.Errorf("SessionPath(%q) = %q, want %q", id, got, want)
		}
		if !logindtest.SessionPath(id).IsValid() {
			t.Errorf("SessionPath(%q) is not a valid object path", id)
		}
	}
}

// SetSessions changes what the running fake reports.
func TestFakeSetSessions(t *testing.T) {
	t.Parallel()
	c, fake, _ := setup(t, threeSessions...)
	fake.SetSessions(threeSessions[2])
	got, err := c.Sessions(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "c1" {
		t.Errorf("after SetSessions: %+v", got)
	}
	if err := c.TerminateSession(ctxT(t), "12"); !logind.IsNoSuchSession(err) {
		t.Errorf("TerminateSession of a removed session: %v", err)
	}
}

// New does not take ownership of the connection.
func TestNewDoesNotOwnConn(t *testing.T) {
	t.Parallel()
	c, _, conn := setup(t, threeSessions...)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !conn.Connected() {
		t.Fatal("Close closed a connection it does not own")
	}
	if _, err := c.Sessions(ctxT(t)); err != nil {
		t.Fatalf("Sessions after Close of a borrowed connection: %v", err)
	}
}
