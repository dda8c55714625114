package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/engine/enginetest"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// sess is a live session with one process (its leader, PID pid).
func sess(id, user string, uid int, tty string, pid int) session.Session {
	s := session.Session{ID: id, User: user, UID: uid, TTY: tty, PID: pid, Kind: session.SSH, Sources: []string{"proc"},
		PIDs: []int{pid}, Processes: 1,
		Members: []session.Member{{Ident: proc.Ident{PID: pid, Start: 100}, UID: uid, SID: pid, Comm: "bash", Role: session.RoleLeader}}}
	if tty == "" {
		s.Kind = session.SSHNoTTY
	}
	return s
}

func host() *enginetest.Host {
	return enginetest.NewHost(sess("pts/1", "alice", 1000, "pts/1", 2001), sess("pts/2", "bob", 1001, "pts/2", 2002),
		sess("ssh:2003", "alice", 1000, "", 2003))
}

// stages lists what each message said, in order: warning, reminder, cancel.
func stages(h *enginetest.Host) []string {
	var out []string
	for _, s := range h.Messenger.Sent {
		switch {
		case strings.Contains(s.Msg, "Reminder:"):
			out = append(out, "reminder@"+s.At.Format("15:04:05"))
		case strings.Contains(s.Msg, "cancelled"):
			out = append(out, "cancel@"+s.At.Format("15:04:05"))
		default:
			out = append(out, "warning@"+s.At.Format("15:04:05"))
		}
	}
	return out
}

func TestKickWithWarningAndReminders(t *testing.T) {
	h := host()
	e := h.Engine()
	rep, err := e.Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1"}, Message: "maintenance", Delay: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// 14:00:00 warning, 14:04:00 (1m left), 14:04:50 (10s left), kick at 14:05:00.
	want := []string{"warning@14:00:00", "reminder@14:04:00", "reminder@14:04:50"}
	if got := stages(h); !slices.Equal(got, want) {
		t.Errorf("messages %q, want %q", got, want)
	}
	if len(h.Signaller.At) != 1 || !h.Signaller.At[0].Equal(time.Date(2026, 12, 2, 14, 5, 0, 0, time.UTC)) {
		t.Errorf("kicked at %v, want 14:05:00", h.Signaller.At)
	}
	for _, s := range h.Messenger.Sent {
		if !s.Force || !strings.Contains(s.Msg, "maintenance") || !slices.Equal(s.TTYs, []string{"pts/1"}) {
			t.Errorf("message %+v: want forced (through mesg n) to pts/1 with the admin's text", s)
		}
	}
	if !strings.Contains(h.Messenger.Sent[0].Msg, "in 5 minutes, at 14:05:00 UTC") {
		t.Errorf("warning %q does not say when", h.Messenger.Sent[0].Msg)
	}
	if got := h.Auditor.Events(); !slices.Equal(got, []string{"intent", "msg", "msg", "msg", "kick"}) {
		t.Errorf("audit %q", got)
	}
	if len(rep.Warnings) != 3 || rep.Warnings[0].Stage != "warning" || rep.Warnings[2].Stage != "reminder" || len(rep.Sessions) != 1 || rep.Sessions[0].Result != engine.Ended {
		t.Errorf("report %+v", rep)
	}
	// Waits are never longer than a poll, and never sleep past a reminder.
	for _, w := range h.Clock.Waits {
		if w <= 0 || w > time.Second {
			t.Errorf("a wait of %v", w)
		}
	}
}

func TestKickShortDelayOnlyLaterReminders(t *testing.T) {
	h := host()
	if _, err := h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1"}, Delay: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got := stages(h); !slices.Equal(got, []string{"warning@14:00:00", "reminder@14:00:20"}) {
		t.Errorf("messages %q", got)
	}
}

func TestKickCancelledDuringDelay(t *testing.T) {
	h := host()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.Clock.At(time.Date(2026, 12, 2, 14, 2, 0, 0, time.UTC), cancel)
	rep, err := h.Engine().Kick(ctx, engine.KickRequest{Targets: []string{"alice"}, Delay: 5 * time.Minute})
	if !errors.Is(err, engine.ErrCancelled) {
		t.Fatalf("err %v, want ErrCancelled", err)
	}
	if len(h.Signaller.Kicked) != 0 {
		t.Errorf("kicked %v after a cancel", h.Signaller.Kicked)
	}
	if got := stages(h); !slices.Equal(got, []string{"warning@14:00:00", "cancel@14:02:00"}) {
		t.Errorf("messages %q", got)
	}
	if got := h.Auditor.Events(); !slices.Equal(got, []string{"intent", "msg", "msg", "msg", "msg", "cancel"}) {
		t.Errorf("audit %q", got)
	}
	if len(rep.Sessions) != 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestKickSessionEndsByItself(t *testing.T) {
	h := host()
	h.Discoverer.GoneAfter = map[string]time.Time{"pts/1": time.Date(2026, 12, 2, 14, 1, 0, 0, time.UTC)}
	var notes []string
	rep, err := h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1", "pts/2"}, Delay: 2 * time.Minute,
		Notify: func(n string) { notes = append(notes, n) }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Signaller.Kicked, []string{"pts/2"}) {
		t.Errorf("kicked %v, want only pts/2", h.Signaller.Kicked)
	}
	if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "pts/1 ended by itself") }) {
		t.Errorf("notes %q", notes)
	}
	if !slices.Contains(h.Auditor.Events(), "ended-during-delay") || rep.Failed {
		t.Errorf("audit %q, failed %v", h.Auditor.Events(), rep.Failed)
	}
	// Both gone: nothing is kicked, and that is not a failure.
	h = host()
	h.Discoverer.GoneAfter = map[string]time.Time{"pts/1": time.Date(2026, 12, 2, 14, 0, 30, 0, time.UTC)}
	rep, err = h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1"}, Delay: time.Minute})
	if err != nil || rep.Failed || len(h.Signaller.Kicked) != 0 {
		t.Errorf("err %v failed %v kicked %v", err, rep.Failed, h.Signaller.Kicked)
	}
}

func TestKickSparedByInput(t *testing.T) {
	h := host()
	h.Discoverer.Input = map[string]time.Time{"pts/1": time.Date(2026, 12, 2, 14, 3, 0, 0, time.UTC)}
	// Clock-driven input: the terminal reads a key at 14:03.
	_, err := h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1", "pts/2"}, Delay: 10 * time.Minute, SpareOnInput: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.Signaller.Kicked, []string{"pts/2"}) {
		t.Errorf("kicked %v, want only pts/2", h.Signaller.Kicked)
	}
	cancels := 0
	for _, s := range h.Messenger.Sent {
		if strings.Contains(s.Msg, "idle logout cancelled") {
			cancels++
			if !slices.Equal(s.TTYs, []string{"pts/1"}) {
				t.Errorf("cancel sent to %v", s.TTYs)
			}
		}
	}
	if cancels != 1 {
		t.Errorf("%d cancel messages, want 1", cancels)
	}
	// Without SpareOnInput an admin's delayed kick goes ahead.
	h = host()
	h.Discoverer.Input = map[string]time.Time{"pts/1": time.Date(2026, 12, 2, 14, 3, 0, 0, time.UTC)}
	h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1"}, Delay: 10 * time.Minute})
	if !slices.Equal(h.Signaller.Kicked, []string{"pts/1"}) {
		t.Errorf("kicked %v", h.Signaller.Kicked)
	}
}

func TestKickAuditBeforeSignals(t *testing.T) {
	h := host()
	h.Auditor.FailAfter = 1
	_, err := h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1"}, Message: "bye"})
	var ae *engine.AuditError
	if !errors.As(err, &ae) || ae.Done || len(h.Signaller.Kicked) != 0 || len(h.Messenger.Sent) != 0 {
		t.Errorf("err %v, kicked %v, sent %d: want nothing done", err, h.Signaller.Kicked, len(h.Messenger.Sent))
	}
	// msg, too, writes nothing without its record.
	h = host()
	h.Auditor.FailAfter = 1
	_, err = h.Engine().Warn(context.Background(), engine.WarnRequest{Targets: []string{"pts/1"}, Text: "hi", Timeout: time.Second})
	if !errors.As(err, &ae) || len(h.Messenger.Sent) != 0 {
		t.Errorf("msg: err %v, sent %d", err, len(h.Messenger.Sent))
	}
}

func TestKickRequestErrors(t *testing.T) {
	h := host()
	e := h.Engine()
	for _, r := range []engine.KickRequest{
		{},
		{Targets: []string{""}},
		{Targets: []string{"pts/1"}, Wait: -time.Second},
		{Targets: []string{"pts/1"}, AllProcesses: true},
		{Filter: session.Filter{Users: []string{"nosuchuser"}}},
	} {
		_, err := e.Kick(context.Background(), r)
		var re *engine.RequestError
		if !errors.As(err, &re) {
			t.Errorf("%+v: err %v, want a RequestError", r, err)
		}
	}
	if len(h.Signaller.Kicked) != 0 || len(h.Auditor.Records) != 0 {
		t.Errorf("a bad request did something: %v %v", h.Signaller.Kicked, h.Auditor.Records)
	}
	h.Env.EUID = 1000
	if _, err := h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1"}}); !errors.Is(err, engine.ErrNotRoot) {
		t.Errorf("not root: %v", err)
	}
	h.Env.EUID = 0
	h.Signaller.CheckErr = errors.New("no pidfds")
	h.Discoverer.Calls = 0
	if _, err := h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1"}}); err == nil || h.Discoverer.Calls != 0 {
		t.Errorf("no pidfds: %v", err)
	}
}

func TestKickUserRefusals(t *testing.T) {
	h := host()
	h.Users["daemon"] = 1
	h.Env.SudoUID = "1001"
	rep, err := h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"root", "daemon", "bob"}, AllProcesses: true})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range rep.Refused {
		reasons = append(reasons, r.Target+": "+r.Reason)
	}
	for _, want := range []string{"root: uid 0 is root", "daemon: uid 1 is a system account", "bob: this is your own user"} {
		if !slices.ContainsFunc(reasons, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("refusals %q lack %q", reasons, want)
		}
	}
	if len(h.Signaller.Users) != 0 {
		t.Errorf("KillUser called for %v", h.Signaller.Users)
	}
}

func TestKickLeftovers(t *testing.T) {
	h := host()
	h.Discoverer.Proc = &proc.Snapshot{Procs: map[int]*proc.Process{
		2001: {PID: 2001, UID: 1000, Comm: "bash", State: 'S'},
		2003: {PID: 2003, UID: 1000, Comm: "sleep", State: 'S'},
		3000: {PID: 3000, UID: 1000, Comm: "miner", State: 'S'}, // setsid -f: in no session
		3001: {PID: 3001, UID: 1001, Comm: "bobs", State: 'S'},  // another user's
		3002: {PID: 3002, UID: 1000, Comm: "dead", State: 'Z'},
	}}
	rep, err := h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Leftovers) != 1 || rep.Leftovers[0].PID != 3000 || rep.Leftovers[0].User != "alice" {
		t.Errorf("leftovers %+v", rep.Leftovers)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool {
		return strings.Contains(n, "1 process(es) of alice outside any session remain; 'sshkick kick alice --all-processes' ends them")
	}) {
		t.Errorf("notes %q", rep.Notes)
	}
	if !slices.Contains(h.Auditor.Events(), "leftover") {
		t.Errorf("audit %q", h.Auditor.Events())
	}
	// A tty target is not a user target: no leftover scan.
	rep, _ = h.Engine().Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/1"}})
	if len(rep.Leftovers) != 0 {
		t.Errorf("leftovers for a tty target: %+v", rep.Leftovers)
	}
}

// TestOwnSessionThroughTmux: from a tmux pane, the SSH login that runs
// `tmux attach` is the admin's own session too (fixture: alice's login on
// pts/0 runs the client 6700; the server 6702 → 6703 bash → 6710 vim).
func TestOwnSessionThroughTmux(t *testing.T) {
	h := enginetest.NewHost()
	h.Users["skt-exp1"] = 1001
	h.Users["alice"] = 1001
	e, err := engine.New(engine.Config{
		Discoverer: engine.NewSystemDiscoverer(engine.SystemOptions{ProcRoot: "../session/testdata/tmux/proc", UtmpPath: "/nonexistent", DevRoot: "/nonexistent", NoLogind: true}, h.Env),
		Signaller:  h.Signaller, Messenger: h.Messenger, Clock: h.Clock, Env: func() engine.Env { env := h.Env; env.PID = 6710; return env }(),
		OpenAuditor: func(string) (engine.Auditor, string, error) { return h.Auditor, "memory", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := e.Sessions(context.Background(), engine.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var user string
	for _, s := range snap.Sessions {
		if s.TTY == "pts/0" {
			user = s.User
		}
	}
	if user == "" {
		t.Fatalf("fixture has no login on pts/0: %+v", snap.Sessions)
	}
	rep, err := e.Kick(context.Background(), engine.KickRequest{Targets: []string{user}, DryRun: true})
	if err == nil && len(rep.Sessions) > 0 {
		t.Errorf("kicked %+v from inside the tmux it serves", rep.Sessions)
	}
	if rep == nil || !slices.ContainsFunc(rep.Refused, func(r engine.Refusal) bool { return strings.Contains(r.Reason, "your own session") }) {
		t.Errorf("refusals %+v", rep)
	}
	rep, err = e.Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/0"}, DryRun: true, Force: true})
	if err != nil || len(rep.Sessions) != 1 {
		t.Errorf("--force: %v %+v", err, rep)
	}
}

// TestReportsSanitizedOnce: a hostile name is escaped exactly once in
// every report and record (never `\\x1b`).
func TestReportsSanitizedOnce(t *testing.T) {
	bad := sess("pts/5", "al\x1bice", 1005, "pts/5", 2005)
	bad.Command, bad.Host = "vi\u202efdp.exe", "h\x9bost"
	h := enginetest.NewHost(bad)
	e := h.Engine()
	snap, err := e.Sessions(context.Background(), engine.Query{})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := e.Kick(context.Background(), engine.KickRequest{Targets: []string{"pts/5"}, Message: "x"})
	if err != nil {
		t.Fatal(err)
	}
	wr, err := e.Warn(context.Background(), engine.WarnRequest{Targets: []string{"pts/5"}, Text: "x", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"snapshot": snap, "kick": kr, "warn": wr, "audit": h.Auditor.Records} {
		b, _ := json.Marshal(v)
		var round any
		json.Unmarshal(b, &round)
		flat, _ := json.Marshal(round)
		s := string(flat)
		if strings.Contains(s, `\\\\x1b`) || !strings.Contains(s, `al\\x1bice`) {
			t.Errorf("%s: user not escaped exactly once: %s", name, s)
		}
		for _, raw := range []string{"\x1b", "\u202e", "\x9b"} {
			if strings.Contains(s, raw) {
				t.Errorf("%s: raw %q", name, raw)
			}
		}
	}
}

// TestDaemonLoopNoLeak: a daemon calls Sessions every few seconds on one
// engine; 1,000 calls leave no fd behind.
func TestDaemonLoopNoLeak(t *testing.T) {
	h := enginetest.NewHost()
	h.Users["skt-exp1"] = 1001
	e, err := engine.New(engine.Config{
		Discoverer: engine.NewSystemDiscoverer(engine.SystemOptions{ProcRoot: "../session/testdata/ssh92/proc", UtmpPath: "/nonexistent", DevRoot: "/nonexistent", NoLogind: true}, h.Env),
		Signaller:  h.Signaller, Messenger: h.Messenger, Clock: h.Clock, Env: h.Env,
		OpenAuditor: func(string) (engine.Auditor, string, error) { return h.Auditor, "memory", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	e.Sessions(context.Background(), engine.Query{}) // warm up lazily opened files
	before := fds()
	n := 0
	for range 1000 {
		snap, err := e.Sessions(context.Background(), engine.Query{})
		if err != nil {
			t.Fatal(err)
		}
		n = len(snap.Sessions)
	}
	if n == 0 {
		t.Fatal("the fixture has no sessions")
	}
	if after := fds(); after > before {
		t.Errorf("open fds %d before, %d after 1,000 calls", before, after)
	}
}

func TestSignalNames(t *testing.T) {
	if s, ok := engine.ParseSignal("term"); !ok || s != syscall.SIGTERM || engine.SignalName(s) != "TERM" {
		t.Errorf("ParseSignal(term) = %v %v", s, ok)
	}
	if _, ok := engine.ParseSignal("0"); ok {
		t.Errorf("signal 0 accepted")
	}
}
