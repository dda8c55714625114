package watch

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/audit"
	"github.com/sshkick/sshkick/internal/policy"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

type fakeBackend struct {
	mu      sync.Mutex
	res     *session.Result
	warned  []string
	kicked  []string
	audited []Event
}

func (f *fakeBackend) Sessions(context.Context) (*session.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &session.Result{Sessions: append([]session.Session(nil), f.res.Sessions...)}, nil
}
func (f *fakeBackend) Warn(_ context.Context, n []Notice) ([]Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Delivery, len(n))
	for i := range n {
		f.warned = append(f.warned, n[i].Session.ID+": "+n[i].Text)
		out[i].Status = "delivered"
	}
	return out, nil
}
func (f *fakeBackend) Kick(_ context.Context, ss []session.Session, _ string) ([]KickResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]KickResult, len(ss))
	for i := range ss {
		f.kicked = append(f.kicked, ss[i].ID)
		out[i].Result = "ended"
	}
	return out, nil
}
func (f *fakeBackend) Audit(_ context.Context, ev Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audited = append(f.audited, ev)
	return nil
}

var t0 = time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)

const pol = `interval = "15s"
warn = ["10s"]
[[rule]]
name = "r"
idle = "20s"
`

func setup(t *testing.T, src string) (*daemon, *fakeBackend, *time.Time, *bytes.Buffer) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.toml")
	os.WriteFile(cfg, []byte(src), 0o644)
	s := session.Session{ID: "pts/1", User: "bob", UID: 1000, TTY: "pts/1", Kind: session.SSH, Login: t0,
		Members: []session.Member{{Ident: proc.Ident{PID: 50, Start: 1}, Role: session.RoleLeader}}}
	fb := &fakeBackend{res: &session.Result{Sessions: []session.Session{s}}}
	now := t0
	var logs bytes.Buffer
	p, _, err := policy.LoadFile(cfg, policy.Lookup{})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Config: cfg, StatePath: filepath.Join(dir, "state.json"), Backend: fb, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Evidence: func(r *session.Result) []policy.Input {
			in := make([]policy.Input, len(r.Sessions))
			for i := range r.Sessions {
				in[i] = policy.Input{Session: &r.Sessions[i], Evidence: policy.Evidence{Atime: t0, CPU: -1}}
			}
			return in
		}}
	d := &daemon{o: o, pol: p}
	d.st = d.loadState()
	return d, fb, &now, &logs
}

func TestLoopWarnKickAndRestart(t *testing.T) {
	d, fb, now, logs := setup(t, pol)
	ctx := context.Background()
	*now = t0.Add(5 * time.Second)
	next := d.tick(ctx)
	if !next.Equal(t0.Add(10*time.Second)) || len(fb.warned) != 0 {
		t.Fatalf("next %v warned %v", next, fb.warned)
	}
	*now = next
	d.tick(ctx)
	if len(fb.warned) != 1 || !strings.Contains(fb.warned[0], "Idle for 10s") {
		t.Fatalf("warned %v", fb.warned)
	}
	// A restart reads the state file: no second warning.
	d2 := &daemon{o: d.o, pol: d.pol}
	d2.st = d2.loadState()
	*now = t0.Add(15 * time.Second)
	d2.tick(ctx)
	if len(fb.warned) != 1 || len(fb.kicked) != 0 {
		t.Fatalf("after restart: warned %v kicked %v", fb.warned, fb.kicked)
	}
	*now = t0.Add(20 * time.Second)
	d2.tick(ctx)
	if len(fb.kicked) != 1 {
		t.Fatalf("not kicked: %v", fb.kicked)
	}
	var acts []string
	for _, e := range fb.audited {
		acts = append(acts, e.Action+"/"+e.Rule)
	}
	if strings.Join(acts, " ") != "warn/r kick/r" {
		t.Fatalf("audit %v", acts)
	}
	if !strings.Contains(logs.String(), "msg=kick") || !strings.Contains(logs.String(), "rule=r") {
		t.Fatalf("log lines: %s", logs)
	}
}

func TestLoopDryRunTouchesNothing(t *testing.T) {
	d, fb, now, _ := setup(t, pol)
	d.o.DryRun = true
	for s := 0; s <= 40; s += 5 {
		*now = t0.Add(time.Duration(s) * time.Second)
		d.tick(context.Background())
	}
	if len(fb.warned) != 0 || len(fb.kicked) != 0 {
		t.Fatalf("dry run acted: %v %v", fb.warned, fb.kicked)
	}
	var acts []string
	for _, e := range fb.audited {
		acts = append(acts, e.Action+"/"+e.Outcome)
	}
	if strings.Join(acts, " ") != "warn/would-send kick/would-kick" {
		t.Fatalf("audit %v", acts)
	}
	if _, err := os.Stat(d.o.StatePath); err == nil {
		t.Fatal("dry run wrote the state file")
	}
}

func TestReloadKeepsOldPolicyOnError(t *testing.T) {
	d, _, _, logs := setup(t, pol)
	os.WriteFile(d.o.Config, []byte("interval = \"15s\"\n[[rule]]\nname = \"r\"\nidle = \"2x\"\n"), 0o644)
	old := d.pol
	d.reload()
	if d.pol != old {
		t.Fatal("broken policy replaced the old one")
	}
	if !strings.Contains(logs.String(), "p.toml:4:8:") {
		t.Fatalf("no FILE:LINE:COL in log: %s", logs)
	}
	os.WriteFile(d.o.Config, []byte("[[rule]]\nname = \"new\"\nidle = \"1h\"\nwarn=[]\n"), 0o644)
	d.reload()
	if d.pol.Rules[0].Name != "new" {
		t.Fatal("valid policy not loaded")
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	d, _, _, _ := setup(t, pol)
	o := d.o
	o.Now = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Run(ctx, o) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestMetricsServed(t *testing.T) {
	d, _, now, _ := setup(t, pol)
	m := NewMetrics()
	d.o.Metrics = m
	*now = t0.Add(10 * time.Second)
	d.tick(context.Background())
	m.reloaded(true, *now)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := m.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`sshkick_watch_sessions{kind="ssh"} 1`, `sshkick_watch_actions_total{action="warn"} 1`,
		`sshkick_watch_last_reload_success 1`, `sshkick_watch_evaluation_seconds_count 1`, `sshkick_watch_failures_total 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestNotifierSendsToSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "10000000")
	t.Setenv("WATCHDOG_PID", "")
	n := NotifierFromEnv()
	if n.WatchdogInterval() != 5*time.Second {
		t.Fatalf("watchdog %v", n.WatchdogInterval())
	}
	n.Send("READY=1")
	buf := make([]byte, 64)
	ln.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := ln.Read(buf)
	if err != nil || string(buf[:k]) != "READY=1" {
		t.Fatalf("got %q %v", buf[:k], err)
	}
}

// auditBackend writes the daemon's records to a real audit file.
type auditBackend struct {
	*fakeBackend
	l *audit.Logger
}

func (b auditBackend) Audit(_ context.Context, ev Event) error { return b.l.Record(ev) }

// TestReloadReopensAudit: logrotate renames the audit file and sends
// SIGHUP (a reload): the records after it land in a new file of the old
// name, the renamed one keeps those before.
func TestReloadReopensAudit(t *testing.T) {
	d, fb, now, logs := setup(t, pol)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d.o.Backend, d.o.Reopen = auditBackend{fb, l}, l.Reopen
	*now = t0.Add(10 * time.Second)
	d.tick(context.Background())
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	d.reload()
	*now = t0.Add(20 * time.Second)
	d.tick(context.Background())
	old, _ := os.ReadFile(path + ".1")
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no new audit file after the reload: %v\n%s", err, logs)
	}
	if !strings.Contains(string(old), `"watch-warn"`) || strings.Contains(string(old), `"watch-kick"`) {
		t.Errorf("rotated file: %s", old)
	}
	if !strings.Contains(string(cur), `"watch-kick"`) || strings.Contains(string(cur), `"watch-warn"`) {
		t.Errorf("new file: %s", cur)
	}
}
