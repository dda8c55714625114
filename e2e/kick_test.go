package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/sshkick/sshkick/internal/sshdtest"
	"github.com/sshkick/sshkick/internal/utmp"
)

type kickSignal struct {
	PID    int    `json:"pid"`
	Comm   string `json:"comm"`
	Role   string `json:"role"`
	Signal string `json:"signal"`
	Result string `json:"result"`
}

type kickReport struct {
	DryRun   bool `json:"dry_run"`
	Sessions []struct {
		ID        string       `json:"id"`
		User      string       `json:"user"`
		TTY       string       `json:"tty"`
		PID       int          `json:"pid"`
		Result    string       `json:"result"`
		Reason    string       `json:"reason"`
		Signals   []kickSignal `json:"signals"`
		Survivors []int        `json:"survivors"`
		Refused   []struct {
			PID    int    `json:"pid"`
			Reason string `json:"reason"`
		} `json:"refused"`
		Scope   string `json:"scope"`
		Actions []struct {
			Via    string `json:"via"`
			Target string `json:"target"`
			Signal string `json:"signal"`
			Result string `json:"result"`
		} `json:"actions"`
		Kept []struct {
			PID    int    `json:"pid"`
			Comm   string `json:"comm"`
			Reason string `json:"reason"`
		} `json:"kept"`
	} `json:"sessions"`
	Refused []struct {
		Target string `json:"target"`
		PID    int    `json:"pid"`
		Reason string `json:"reason"`
	} `json:"refused"`
	Unmatched []string `json:"unmatched"`
	Users     []struct {
		User      string `json:"user"`
		UID       int    `json:"uid"`
		Result    string `json:"result"`
		Reason    string `json:"reason"`
		Rounds    int    `json:"rounds"`
		Found     []int  `json:"found"`
		Survivors []int  `json:"survivors"`
	} `json:"users"`
}

// kickJSON runs `sshkick kick --json` with an audit log of the test's own.
func kickJSON(t testing.TB, s *sshdtest.Server, audit string, args ...string) (kickReport, result) {
	t.Helper()
	all := append([]string{"kick", "--json", "--utmp", s.Utmp, "--audit-log", audit}, args...)
	r := run(t, all...)
	var rep kickReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("sshkick %v: exit %d, not JSON: %v\nstdout: %s\nstderr: %s", all, r.code, err, r.stdout, r.stderr)
	}
	return rep, r
}

// auditEvents reads the audit log.
func auditEvents(t testing.TB, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line is not JSON: %v: %s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func countEvents(evs []map[string]any, event string) int {
	n := 0
	for _, e := range evs {
		if e["event"] == event {
			n++
		}
	}
	return n
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z' && b[i+2] != 'X'
}

// sidMembers lists live processes whose session id is sid.
func sidMembers(sid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 3 && f[0] != "Z" && f[3] == strconv.Itoa(sid) {
			out = append(out, pid)
		}
	}
	return out
}

func find(all []jsonSession, pred func(jsonSession) bool) jsonSession {
	for _, s := range all {
		if pred(s) {
			return s
		}
	}
	return jsonSession{}
}

// TestKickByTTYPIDAndUser ends sessions named three ways and checks that
// exactly those end: the client sees the end, sshd logs the user out
// (who -u no longer shows the terminal), other sessions stay.
func TestKickByTTYPIDAndUser(t *testing.T) {
	s := sshdtest.Start(t)
	alice, bob := s.AddUser(t), s.AddUser(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	a1 := s.Login(t, alice, true, "")
	a2 := s.Login(t, alice, true, "")
	a3 := s.Login(t, alice, false, "sleep 600")
	b1 := s.Login(t, bob, true, "")
	b2 := s.Login(t, bob, true, "")
	waitSessions(t, 3, alice.Name, "--utmp", s.Utmp)
	waitSessions(t, 2, bob.Name, "--utmp", s.Utmp)
	ttys := ofUser(listJSON(t, "--utmp", s.Utmp), alice.Name)

	// By terminal: alice's first terminal session.
	var first, second jsonSession
	for _, x := range ttys {
		if x.TTY != "" && first.TTY == "" {
			first = x
		} else if x.TTY != "" {
			second = x
		}
	}
	rep, r := kickJSON(t, s, audit, first.TTY)
	if r.code != 0 || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" || rep.Sessions[0].TTY != first.TTY {
		t.Fatalf("kick %s: exit %d %+v\n%s", first.TTY, r.code, rep, r.stderr)
	}
	// The monitor got no signal before the session's own processes.
	sigs := rep.Sessions[0].Signals
	if len(sigs) == 0 || sigs[0].Signal != "HUP" || sigs[0].Role == "monitor" {
		t.Errorf("first signal: %+v", sigs)
	}
	for _, sg := range sigs {
		if sg.Role == "monitor" {
			t.Errorf("the [priv] monitor was signalled although the session ended by SIGHUP: %+v", sg)
		}
	}
	ended := 0
	for _, c := range []*sshdtest.Session{a1, a2} {
		if c.Ended(5 * time.Second) {
			ended++
		}
	}
	if ended != 1 {
		t.Errorf("%d of alice's two terminal sessions ended, want exactly 1", ended)
	}
	for _, w := range whoU(t, s.Utmp) {
		if w.line == first.TTY {
			t.Errorf("who -u still shows %s: sshd did not log the user out", first.TTY)
		}
	}
	for _, pid := range first.PIDs {
		if alive(pid) {
			t.Errorf("pid %d of the kicked session is still running", pid)
		}
	}

	// By PID: the PID column (sshd's monitor) of alice's second terminal.
	rep, r = kickJSON(t, s, audit, strconv.Itoa(second.PID))
	if r.code != 0 || len(rep.Sessions) != 1 || rep.Sessions[0].TTY != second.TTY || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick %d: exit %d %+v", second.PID, r.code, rep)
	}
	if !a1.Ended(5*time.Second) || !a2.Ended(5*time.Second) {
		t.Errorf("alice's terminal sessions did not both end")
	}
	if a3.Ended(0) {
		t.Errorf("kicking by terminal and PID also ended alice's sleep session")
	}

	// By user: what alice has left; bob is untouched.
	rep, r = kickJSON(t, s, audit, alice.Name)
	if r.code != 0 || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick %s: exit %d %+v\n%s", alice.Name, r.code, rep, r.stderr)
	}
	if !a3.Ended(5 * time.Second) {
		t.Errorf("alice's sleep session did not end")
	}
	if b1.Ended(0) || b2.Ended(0) {
		t.Errorf("bob's sessions ended when alice was kicked")
	}
	if got := waitSessions(t, 2, bob.Name, "--utmp", s.Utmp); len(got) != 2 {
		t.Errorf("bob's sessions: %+v", got)
	}
	if pids := alice.Pids(); len(pids) != 0 {
		t.Errorf("alice still has processes: %v", pids)
	}
	// Kicking what is no longer there: exit 3.
	_, r = kickJSON(t, s, audit, alice.Name)
	if r.code != 3 {
		t.Errorf("kick of a user without sessions: exit %d, want 3", r.code)
	}
	evs := auditEvents(t, audit)
	if countEvents(evs, "kick") != 3 {
		t.Errorf("audit: %d kick records, want 3", countEvents(evs, "kick"))
	}
	for _, e := range evs {
		if e["event"] == "kick" {
			actor, _ := e["actor"].(map[string]any)
			if actor["uid"] != float64(0) || e["outcome"] != "ended" || e["signals"] == nil {
				t.Errorf("audit record: %v", e)
			}
		}
	}
}

// TestKickStubbornSessionAndSweep: a shell and a background job that ignore
// SIGHUP and SIGTERM, and a nohup job, are all gone after the kick.
func TestKickStubbornSessionAndSweep(t *testing.T) {
	s := sshdtest.Start(t)
	alice := s.AddUser(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	stubborn := s.Login(t, alice, true, `trap "" HUP TERM; (trap "" HUP TERM; sleep 601) & nohup sleep 602 >/dev/null 2>&1 & sleep 600`)
	var sess jsonSession
	sshdtest.Poll(60*time.Second, func() bool {
		sess = find(listJSON(t, "--utmp", s.Utmp, "--user", alice.Name), func(x jsonSession) bool { return x.TTY != "" })
		return sess.Processes >= 6
	})
	if sess.Processes < 6 {
		t.Fatalf("session not fully up: %+v", sess)
	}
	var leader int
	for _, pid := range sess.PIDs {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.Contains(string(b), "trap") {
			leader = pid
		}
	}
	if leader == 0 {
		t.Fatalf("no leader among %v", sess.PIDs)
	}
	rep, r := kickJSON(t, s, audit, sess.TTY, "--wait", "1s")
	if r.code != 0 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick: exit %d %+v\n%s", r.code, rep, r.stderr)
	}
	var hups, kills int
	for _, sg := range rep.Sessions[0].Signals {
		switch sg.Signal {
		case "HUP":
			hups++
		case "KILL":
			kills++
		}
	}
	if hups == 0 || kills == 0 {
		t.Errorf("want HUP then KILL escalation: %+v", rep.Sessions[0].Signals)
	}
	if left := sidMembers(leader); len(left) != 0 {
		t.Errorf("processes of the session (sid %d) survived: %v", leader, left)
	}
	if !stubborn.Ended(5 * time.Second) {
		t.Errorf("the client's session did not end")
	}
	if pids := alice.Pids(); len(pids) != 0 {
		t.Errorf("alice still has processes: %v", pids)
	}
}

// TestKickRefusals: forged utmp records, PIDs 1, 0 and negative, dry runs
// and non-root callers change nothing.
func TestKickRefusals(t *testing.T) {
	s := sshdtest.Start(t)
	alice, bob := s.AddUser(t), s.AddUser(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	a := s.Login(t, alice, true, "")
	sess := waitTTYSessions(t, 1, alice.Name, "--utmp", s.Utmp)[0]

	// An unrelated process, and a forged record that names it as alice's
	// login on her own terminal.
	victim := exec.Command("sleep", "300")
	victim.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	data, _ := os.ReadFile(s.Utmp)
	forged := filepath.Join(t.TempDir(), "utmp")
	data = append(data, utmp.Encode(utmp.Record{Type: utmp.UserProcess, PID: int32(victim.Process.Pid), Line: "pts/99",
		ID: "fk", User: alice.Name, Host: "forged", Time: time.Now()}, utmp.Native)...)
	if err := os.WriteFile(forged, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{strconv.Itoa(victim.Process.Pid), "pts/99"} {
		r := run(t, "kick", "--json", "--utmp", forged, "--audit-log", audit, target)
		var rep kickReport
		mustJSON(t, r.stdout, &rep)
		if r.code == 0 || len(rep.Sessions) != 0 {
			t.Errorf("kick %s (forged record): exit %d %+v", target, r.code, rep)
		}
		if target == "pts/99" && (len(rep.Refused) != 1 || !strings.Contains(rep.Refused[0].Reason, "stale")) {
			t.Errorf("kick pts/99: want a stale refusal, got %+v", rep)
		}
		if !alive(victim.Process.Pid) {
			t.Fatalf("the process a forged utmp record named was killed")
		}
	}

	for _, pid := range []string{"1", "0", "-1", "-4000000"} {
		r := run(t, "kick", "--json", "--utmp", s.Utmp, "--audit-log", audit, "--", pid)
		var rep kickReport
		mustJSON(t, r.stdout, &rep)
		if r.code != 1 || len(rep.Refused) != 1 || len(rep.Sessions) != 0 {
			t.Errorf("kick %s: exit %d %+v %s", pid, r.code, rep, r.stderr)
		}
	}
	if !alive(1) || a.Ended(0) {
		t.Fatalf("refused PIDs changed something")
	}

	// Dry run: per-process plan, nothing signalled.
	rep, r := kickJSON(t, s, audit, alice.Name, "--dry-run")
	if r.code != 0 || !rep.DryRun || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "dry-run" || len(rep.Sessions[0].Signals) == 0 {
		t.Fatalf("dry run: exit %d %+v", r.code, rep)
	}
	rt := run(t, "kick", "--dry-run", "--utmp", s.Utmp, "--audit-log", audit, alice.Name)
	if !strings.Contains(rt.stdout, "would end "+sess.TTY) || !strings.Contains(rt.stdout, "SIGHUP") {
		t.Errorf("dry run table: %s", rt.stdout)
	}
	if !answers(t, a, "after-dry-run") {
		t.Fatalf("--dry-run ended the session")
	}
	for _, pid := range sess.PIDs {
		if !alive(pid) {
			t.Errorf("--dry-run: pid %d is gone", pid)
		}
	}

	// A normal user is told kicking needs root, and nothing happens.
	cmd := exec.Command(bin, "kick", "--utmp", s.Utmp, alice.Name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(bob.UID), Gid: uint32(bob.GID)}}
	cmd.Dir = "/"
	nr := runCmd(t, cmd)
	if nr.code != 1 || !strings.Contains(nr.stderr, "sshkick: kicking needs root: run it with sudo") {
		t.Errorf("kick as a normal user: exit %d %q", nr.code, nr.stderr)
	}
	if !answers(t, a, "after-normal-user") {
		t.Fatalf("a normal user's kick ended the session")
	}

	evs := auditEvents(t, audit)
	if countEvents(evs, "refuse") < 6 || countEvents(evs, "dry-run") < 2 || countEvents(evs, "kick") != 0 {
		t.Errorf("audit: refuse %d, dry-run %d, kick %d", countEvents(evs, "refuse"), countEvents(evs, "dry-run"), countEvents(evs, "kick"))
	}
}

// TestKickOwnSessionAndNoEscalate: sshkick run inside a session refuses to
// end that session; --no-escalate reports what survived SIGHUP.
func TestKickOwnSessionAndNoEscalate(t *testing.T) {
	s := sshdtest.Start(t)
	alice := s.AddUser(t)
	root := s.Root(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	audit := filepath.Join(dir, "audit.jsonl")
	out := filepath.Join(dir, "own.json")
	rs := s.Login(t, root, false, bin+" kick root --json --utmp "+s.Utmp+" --audit-log "+audit+" > "+out+"; echo done; sleep 600")
	if !rs.WaitFor("done", 30*time.Second) {
		t.Fatalf("the root session did not run sshkick: %s", rs.Out.Bytes())
	}
	b, _ := os.ReadFile(out)
	var rep kickReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("own-session kick output: %v: %s", err, b)
	}
	own := false
	for _, rf := range rep.Refused {
		if strings.Contains(rf.Reason, "your own session") {
			own = true
		}
	}
	if !own || len(rep.Sessions) != 0 || rs.Ended(0) {
		t.Errorf("kick from inside the session: %+v", rep)
	}

	stub := s.Login(t, alice, false, `trap "" HUP TERM; sleep 600`)
	sess := waitSessions(t, 1, alice.Name, "--utmp", s.Utmp)[0]
	rep, r := kickJSON(t, s, audit, sess.ID, "--no-escalate", "--wait", "500ms")
	if r.code != 1 || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "survived" || len(rep.Sessions[0].Survivors) == 0 {
		t.Fatalf("--no-escalate: exit %d %+v", r.code, rep)
	}
	for _, sg := range rep.Sessions[0].Signals {
		if sg.Signal == "KILL" {
			t.Errorf("--no-escalate sent SIGKILL: %+v", sg)
		}
	}
	if !strings.Contains(rep.Sessions[0].Reason, "--all-processes") {
		t.Errorf("--no-escalate does not say how to end the rest: %q", rep.Sessions[0].Reason)
	}
	// SIGHUP ended alice's sshd, so the connection is gone and what is left
	// is no login session any more: every process of the user, by force.
	if !stub.Ended(5 * time.Second) {
		t.Errorf("the connection survived SIGHUP to the user's sshd")
	}
	rep, r = kickJSON(t, s, audit, alice.Name, "--all-processes", "-9")
	if r.code != 0 || len(rep.Users) != 1 || rep.Users[0].Result != "ended" {
		t.Fatalf("kick --all-processes -9: exit %d %+v", r.code, rep)
	}
	for _, pid := range rep.Sessions {
		t.Errorf("no session should be left to kick: %+v", pid)
	}
	if pids := alice.Pids(); len(pids) != 0 {
		t.Errorf("alice still has processes: %v", pids)
	}
}

// TestKickAllProcessesForkStorm: --all-processes leaves no process of the
// user, even against a bounded fork storm started outside any session.
func TestKickAllProcessesForkStorm(t *testing.T) {
	s := sshdtest.Start(t)
	alice, bob := s.AddUser(t), s.AddUser(t)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	s.Login(t, alice, true, "")
	b := s.Login(t, bob, true, "")
	waitSessions(t, 1, alice.Name, "--utmp", s.Utmp)
	waitSessions(t, 1, bob.Name, "--utmp", s.Utmp)
	// RLIMIT_NPROC caps alice at 150 processes and every process of the
	// storm gives up after 60 s, so the test cannot hurt the machine.
	storm := exec.Command("/usr/bin/setpriv", "--reuid="+strconv.Itoa(alice.UID), "--regid="+strconv.Itoa(alice.GID),
		"--clear-groups", "/bin/bash", "-c",
		`ulimit -u 150; s() { while [ $SECONDS -lt 60 ]; do s & sleep 0.05; done; }; s 2>/dev/null`)
	storm.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := storm.Start(); err != nil {
		t.Fatal(err)
	}
	go storm.Wait()
	sshdtest.Poll(15*time.Second, func() bool { return len(alice.Pids()) >= 100 })
	if n := len(alice.Pids()); n < 100 {
		t.Fatalf("the storm reached only %d processes", n)
	}
	rep, r := kickJSON(t, s, audit, alice.Name, "--all-processes", "--wait", "1s")
	if r.code != 0 || len(rep.Users) != 1 || rep.Users[0].Result != "ended" {
		t.Fatalf("kick --all-processes: exit %d %+v\n%s", r.code, rep.Users, r.stderr)
	}
	// Exits the kick reported may still be in progress: wait for them,
	// with a deadline that only a survivor reaches.
	sshdtest.Poll(30*time.Second, func() bool { return len(alice.Pids()) == 0 })
	if pids := alice.Pids(); len(pids) != 0 {
		t.Fatalf("%d processes of alice survived --all-processes: %v", len(pids), pids)
	}
	if b.Ended(0) || len(bob.Pids()) == 0 {
		t.Errorf("bob's session was touched")
	}
	t.Logf("storm ended in %d round(s); %d processes found at start", rep.Users[0].Rounds, len(rep.Users[0].Found))

	// Never root.
	r2 := run(t, "kick", "--json", "--utmp", s.Utmp, "--audit-log", audit, "root", "--all-processes", "--dry-run")
	if r2.code != 1 || !strings.Contains(r2.stdout, "uid 0 is root") {
		t.Errorf("--all-processes for root: exit %d %s", r2.code, r2.stdout)
	}
	if !slices.ContainsFunc(auditEvents(t, audit), func(e map[string]any) bool { return e["event"] == "kick-user" }) {
		t.Errorf("no kick-user audit record")
	}
}

// TestKickConfirmAndNoUtmp: on a terminal, kicking more than one session
// asks first; "n" changes nothing. Without any utmp file the sessions are
// still found and kicked.
func TestKickConfirmAndNoUtmp(t *testing.T) {
	s := sshdtest.Start(t)
	alice := s.AddUser(t)
	a1 := s.Login(t, alice, true, "")
	a2 := s.Login(t, alice, false, "sleep 642")
	waitSessions(t, 2, alice.Name, "--utmp", s.Utmp)
	missing := filepath.Join(t.TempDir(), "no-utmp")
	audit := filepath.Join(t.TempDir(), "audit.jsonl")

	answer := func(reply string) (string, int) {
		cmd := exec.Command(bin, "kick", alice.Name, "--utmp", missing, "--audit-log", audit)
		ptmx, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		out := &sshdtest.Buffer{}
		done := make(chan struct{})
		go func() { io.Copy(out, ptmx); close(done) }()
		sshdtest.Poll(15*time.Second, func() bool { return bytes.Contains(out.Bytes(), []byte("[y/N]")) })
		ptmx.Write([]byte(reply + "\n"))
		cmd.Wait()
		ptmx.Close()
		<-done
		return string(out.Bytes()), cmd.ProcessState.ExitCode()
	}
	out, code := answer("n")
	if code != 1 || !strings.Contains(out, "about to end 2 session(s)") || !strings.Contains(out, "cancelled: nothing was done") {
		t.Fatalf("answering n: exit %d %q", code, out)
	}
	if !answers(t, a1, "after-n") || a2.Ended(0) {
		t.Fatalf("answering n ended a session")
	}
	out, code = answer("y")
	if code != 0 || strings.Count(out, "ended ") != 2 {
		t.Fatalf("answering y: exit %d %q", code, out)
	}
	if !a1.Ended(5*time.Second) || !a2.Ended(5*time.Second) {
		t.Errorf("sessions did not end")
	}
	// Not on a terminal: no question.
	a3 := s.Login(t, alice, false, "sleep 643")
	s.Login(t, alice, false, "sleep 644")
	waitSessions(t, 2, alice.Name, "--utmp", missing)
	r := run(t, "kick", alice.Name, "--utmp", missing, "--audit-log", audit)
	if r.code != 0 || strings.Contains(r.stderr, "[y/N]") || !a3.Ended(5*time.Second) {
		t.Errorf("kick without a terminal: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}
