package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// kickWith runs kick with a fake discovery; edit sets the options.
func kickWith(t *testing.T, f *fakeDiscover, args []string, edit func(*kickOptions)) (code int, stdout, stderr string) {
	t.Helper()
	ios, out, errw := testIO()
	o := &kickOptions{IO: ios, Signal: "HUP", Wait: 5 * time.Second, Discover: f.discover,
		Geteuid: func() int { t.Fatal("Geteuid called"); return -1 }, Warn: warnFlags{timeout: termmsg.DefaultTimeout}}
	if edit != nil {
		edit(o)
	}
	code = exitCode(ios, runKick(context.Background(), o, args))
	return code, out.String(), errw.String()
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
			f := &fakeDiscover{sessions: cannedSessions()}
			code, stdout, stderr := kickWith(t, f, tc.args, func(o *kickOptions) {
				o.Geteuid = func() int { return 1000 }
				if tc.edit != nil {
					tc.edit(o)
				}
			})
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			if !strings.HasPrefix(stderr, "sshkick: ") || !strings.Contains(stderr, "kicking needs root") {
				t.Errorf("stderr %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			if f.calls != 0 {
				t.Errorf("Discover called %d times", f.calls)
			}
		})
	}
}

// sleeper is a `sleep 30` child of the test in a session of its own,
// killed and reaped at cleanup, described as discovery would.
func sleeper(t *testing.T) (int, session.Session) {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	p, err := proc.Read("/proc", pid)
	if err != nil {
		t.Fatal(err)
	}
	m := session.Member{Ident: p.Ident(), UID: p.UID, SID: p.SID, TTY: p.TTY, Comm: p.Comm, Role: session.RoleLeader}
	return pid, session.Session{ID: "local:" + strconv.Itoa(pid), User: "tester", UID: p.UID, PID: pid, Kind: session.Local,
		Sources: []string{"proc"}, Members: []session.Member{m}, SIDs: []int{p.SID}, PIDs: []int{pid}, Processes: 1}
}

func readAudit(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

func TestKickDryRun(t *testing.T) {
	if err := kick.CheckPidfd(); err != nil {
		t.Skip(err)
	}
	pid, s := sleeper(t)
	f := &fakeDiscover{sessions: []session.Session{s}}
	auditLog := filepath.Join(t.TempDir(), "audit.jsonl")
	fake := func(ctx context.Context, o session.Options) (*session.Result, error) {
		r, err := f.discover(ctx, o)
		if r != nil {
			r.Proc = &proc.Snapshot{Procs: map[int]*proc.Process{}}
		}
		return r, err
	}
	dry := func(o *kickOptions) {
		o.DryRun, o.AuditLog, o.Discover = true, auditLog, fake
		o.Geteuid = func() int { return 1000 } // a dry run needs no root
	}

	code, stdout, stderr := kickWith(t, f, []string{s.ID}, dry)
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.HasPrefix(stdout, "would end "+s.ID+" (tester):\n") || !strings.Contains(stdout, "SIGHUP") || !strings.Contains(stdout, "SIGKILL") {
		t.Errorf("stdout %q", stdout)
	}
	if p, err := proc.Read("/proc", pid); err != nil || p.Zombie() {
		t.Fatalf("a dry run harmed the process: %v", err)
	}
	recs := readAudit(t, auditLog)
	if len(recs) != 1 || recs[0]["event"] != "dry-run" || recs[0]["dry_run"] != true {
		t.Errorf("audit records %v", recs)
	}

	// JSON, by PID.
	code, stdout, _ = kickWith(t, f, []string{strconv.Itoa(pid)}, func(o *kickOptions) { dry(o); o.JSON = true })
	var rep map[string]any
	if code != ExitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
		t.Fatalf("exit %d, JSON %q", code, stdout)
	}
	sessions, _ := rep["sessions"].([]any)
	if rep["dry_run"] != true || len(sessions) != 1 || sessions[0].(map[string]any)["result"] != kick.DryRun {
		t.Errorf("report %v", rep)
	}

	// Nothing matched: exit 3.
	code, stdout, stderr = kickWith(t, f, []string{"pts/9"}, dry)
	if code != ExitNoMatch || stdout != "" || !strings.Contains(stderr, `no session matches "pts/9"`) || !strings.Contains(stderr, "no session matched") {
		t.Errorf("unmatched: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Refused only: exit 1.
	code, _, stderr = kickWith(t, f, []string{"1"}, dry)
	if code != ExitError || !strings.Contains(stderr, "refused 1: PID 1 is init") {
		t.Errorf("PID 1: exit %d, stderr %q", code, stderr)
	}
	if p, err := proc.Read("/proc", pid); err != nil || p.Zombie() {
		t.Fatalf("a dry run harmed the process: %v", err)
	}
}
