package cli

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/engine/enginetest"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// kickWith runs kick on a fake host; edit sets the options.
func kickWith(t *testing.T, h *enginetest.Host, args []string, edit func(*kickOptions)) (code int, stdout, stderr string) {
	t.Helper()
	ios, out, errw := testIO()
	o := &kickOptions{IO: ios, Signal: "HUP", Wait: 5 * time.Second, MsgTimeout: 2 * time.Second, Args: args,
		Engine: func(engine.SystemOptions) (*engine.Engine, error) { return h.Engine(), nil }}
	if edit != nil {
		edit(o)
	}
	code = exitCode(ios, runKick(context.Background(), o))
	return code, out.String(), errw.String()
}

// withMembers gives canned sessions processes to signal.
func withMembers(ss []session.Session) []session.Session {
	for i := range ss {
		for _, pid := range ss[i].PIDs {
			ss[i].Members = append(ss[i].Members, session.Member{Ident: proc.Ident{PID: pid, Start: 100}, UID: ss[i].UID, Comm: "bash", Role: session.RoleLeader})
		}
	}
	return ss
}

func TestKickNeedsRoot(t *testing.T) {
	tests := []struct {
		name string
		args []string
		edit func(*kickOptions)
	}{
		{"target", []string{"pts/0"}, nil},
		{"selector only", nil, func(o *kickOptions) { o.Select.idle = "2h" }},
		{"all processes", []string{"alice"}, func(o *kickOptions) { o.AllProcesses = true }},
		{"kill", []string{"pts/0"}, func(o *kickOptions) { o.Kill9 = true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := enginetest.NewHost(cannedSessions()...)
			h.Env.EUID = 1000
			code, stdout, stderr := kickWith(t, h, tc.args, tc.edit)
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			if !strings.HasPrefix(stderr, "sshkick: ") || !strings.Contains(stderr, "kicking needs root") {
				t.Errorf("stderr %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if h.Discoverer.Calls != 0 || len(h.Signaller.Kicked) != 0 {
				t.Errorf("Discover called %d times, kicked %v", h.Discoverer.Calls, h.Signaller.Kicked)
			}
		})
	}
}

func TestKickDryRun(t *testing.T) {
	h := enginetest.NewHost(withMembers(cannedSessions())...)
	h.Env.EUID = 1000 // a dry run needs no root
	dry := func(o *kickOptions) { o.DryRun = true }

	code, stdout, stderr := kickWith(t, h, []string{"pts/0"}, dry)
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(stdout, "would end pts/0 (alice from 192.0.2.10):\n") || !strings.Contains(stdout, "SIGHUP") {
		t.Errorf("stdout %q", stdout)
	}
	if got := h.Auditor.Events(); !slices.Equal(got, []string{"intent", "dry-run"}) {
		t.Errorf("audit events %q", got)
	}
	if len(h.Signaller.Opts) != 1 || !h.Signaller.Opts[0].DryRun {
		t.Errorf("signaller options %+v", h.Signaller.Opts)
	}

	// JSON, by PID; every key is there.
	code, stdout, _ = kickWith(t, h, []string{"1240"}, func(o *kickOptions) { dry(o); o.JSON = true })
	var rep map[string]any
	if code != ExitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("exit %d, JSON %q", code, stdout)
	}
	for _, k := range []string{"dry_run", "sessions", "refused", "skipped", "unmatched", "users", "warnings", "leftovers", "notes"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("report lacks %q: %v", k, rep)
		}
	}
	sessions, _ := rep["sessions"].([]any)
	if rep["dry_run"] != true || len(sessions) != 1 || sessions[0].(map[string]any)["result"] != engine.DryRun {
		t.Errorf("report %v", rep)
	}

	// Nothing matched: exit 3.
	code, stdout, stderr = kickWith(t, h, []string{"pts/9"}, dry)
	if code != ExitNoMatch || stdout != "" || !strings.Contains(stderr, `no session matches "pts/9"`) || !strings.Contains(stderr, "no session matched") {
		t.Errorf("unmatched: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Refused only: exit 1.
	code, _, stderr = kickWith(t, h, []string{"1"}, dry)
	if code != ExitError || !strings.Contains(stderr, "refused 1: PID 1 is init") {
		t.Errorf("PID 1: exit %d, stderr %q", code, stderr)
	}
}

func TestKickOutcomes(t *testing.T) {
	h := enginetest.NewHost(withMembers(cannedSessions())...)
	code, stdout, stderr := kickWith(t, h, []string{"alice"}, func(o *kickOptions) { o.Yes = true })
	if code != ExitOK || !strings.HasPrefix(stdout, "ended pts/0 (alice from 192.0.2.10) in ") {
		t.Errorf("exit %d stdout %q stderr %q", code, stdout, stderr)
	}
	if got := h.Auditor.Events(); !slices.Equal(got, []string{"intent", "kick"}) {
		t.Errorf("audit events %q", got)
	}
	// A survivor: exit 1, and the report says so.
	h.Signaller.Survive = map[string]bool{"pts/0": true}
	code, stdout, _ = kickWith(t, h, []string{"pts/0"}, nil)
	if code != ExitError || !strings.Contains(stdout, "survived pts/0") || !strings.Contains(stdout, "still running: [1234]") {
		t.Errorf("survivor: exit %d stdout %q", code, stdout)
	}
	// --all-processes with nothing to end follows the table: exit 3.
	h = enginetest.NewHost()
	h.Users["dave"] = 1500
	code, _, stderr = kickWith(t, h, []string{"dave"}, func(o *kickOptions) { o.AllProcesses = true })
	if code != ExitNoMatch || !strings.Contains(stderr, "no process of dave") {
		t.Errorf("nothing to end: exit %d stderr %q", code, stderr)
	}
	h.Signaller.UserFound = map[int][]int{1500: {4000, 4001}}
	code, stdout, _ = kickWith(t, h, []string{"dave"}, func(o *kickOptions) { o.AllProcesses = true })
	if code != ExitOK || !strings.Contains(stdout, "ended every process of dave (uid 1500): 2 found") {
		t.Errorf("all processes: exit %d stdout %q", code, stdout)
	}
}

func TestKickAuditFailureSignalsNothing(t *testing.T) {
	h := enginetest.NewHost(withMembers(cannedSessions())...)
	h.Auditor.OpenErr = errors.New("open /dev/full: no space left on device")
	code, _, stderr := kickWith(t, h, []string{"pts/0"}, nil)
	if code != ExitError || !strings.Contains(stderr, "nothing was done") || len(h.Signaller.Kicked) != 0 {
		t.Errorf("open failure: exit %d stderr %q kicked %v", code, stderr, h.Signaller.Kicked)
	}
	h.Auditor.OpenErr = nil
	h.Auditor.FailAfter = 1 // the intent
	code, _, stderr = kickWith(t, h, []string{"pts/0"}, nil)
	if code != ExitError || !strings.Contains(stderr, "nothing was done") || len(h.Signaller.Kicked) != 0 {
		t.Errorf("intent failure: exit %d stderr %q kicked %v", code, stderr, h.Signaller.Kicked)
	}
	h = enginetest.NewHost(withMembers(cannedSessions())...)
	h.Auditor.FailAfter = 2 // the outcome
	code, _, stderr = kickWith(t, h, []string{"pts/0"}, nil)
	if code != ExitError || !strings.Contains(stderr, "carried out but its audit record could not be written") || len(h.Signaller.Kicked) != 1 {
		t.Errorf("outcome failure: exit %d stderr %q kicked %v", code, stderr, h.Signaller.Kicked)
	}
}

// TestKickFlags checks what the flags turn into, apart from behaviour.
func TestKickFlags(t *testing.T) {
	tests := []struct {
		args  []string
		check func(*testing.T, engine.KickRequest)
	}{
		{[]string{"pts/3"}, func(t *testing.T, r engine.KickRequest) {
			if r.Signal != syscall.SIGHUP || r.Wait != 5*time.Second || r.MsgTimeout != 2*time.Second || !slices.Equal(r.Targets, []string{"pts/3"}) {
				t.Errorf("defaults: %+v", r)
			}
		}},
		{[]string{"-9", "alice", "--all-processes", "--wait", "0"}, func(t *testing.T, r engine.KickRequest) {
			if r.Signal != syscall.SIGKILL || r.Wait != 0 || !r.AllProcesses {
				t.Errorf("%+v", r)
			}
		}},
		{[]string{"--signal", "term", "--delay", "1d", "--wait", "1m30s", "--msg-timeout", "500ms", "-m", "bye", "pts/1"}, func(t *testing.T, r engine.KickRequest) {
			if r.Signal != syscall.SIGTERM || r.Delay != 24*time.Hour || r.Wait != 90*time.Second || r.MsgTimeout != 500*time.Millisecond || r.Message != "bye" {
				t.Errorf("%+v", r)
			}
		}},
		{[]string{"--user", "alice,1001", "--idle", "2h", "--kind", "ssh", "--from", "10.0.0.0/8", "-n", "--force"}, func(t *testing.T, r engine.KickRequest) {
			if !slices.Equal(r.Filter.Users, []string{"alice", "1001"}) || r.Filter.Idle != 2*time.Hour || len(r.Filter.Kinds) != 1 || len(r.Filter.From) != 1 || !r.DryRun || !r.Force {
				t.Errorf("%+v", r)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ios, _, errw := testIO()
			var got *kickOptions
			cmd := newKickCmd(&Factory{IO: ios, Engine: noEngine}, func(_ context.Context, o *kickOptions) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
			if err := cmd.Execute(); err != nil {
				t.Fatalf("%v (%s)", err, errw)
			}
			r, err := got.request()
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestKickConfirmTable(t *testing.T) {
	ios, _, errw := testIO()
	ios.In = strings.NewReader("y\n")
	ok := confirm(context.Background(), ios, engine.Confirmation{
		Sessions: []engine.Ref{{ID: "pts/0", User: "alice", TTY: "pts/0", Host: "192.0.2.10"}, {ID: "ssh:123456", User: "bo", Host: ""}},
		Users:    []engine.UserRef{{Name: "alice", UID: 1000}},
	})
	if !ok {
		t.Errorf("y was not a yes")
	}
	lines := strings.Split(errw.String(), "\n")
	if len(lines) < 3 || strings.Index(lines[1], "alice") != strings.Index(lines[2], "bo") {
		t.Errorf("columns do not line up:\n%s", errw)
	}
	// Ctrl-C while waiting for the answer says no.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pr, pw := ioPipe()
	defer pw.Close()
	ios.In = pr
	if confirm(ctx, ios, engine.Confirmation{Sessions: []engine.Ref{{ID: "a"}, {ID: "b"}}}) {
		t.Errorf("a cancelled prompt said yes")
	}
}
