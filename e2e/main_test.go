// Package e2e runs the sshkick binary against a real OpenSSH server on
// 127.0.0.1 with real users and real login sessions (see
// internal/sshdtest). It needs root; under `make check` it must run.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bin is the sshkick binary built once for the whole suite.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sshkick-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "sshkick")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	out, err := exec.Command(gobin, "build", "-race", "-o", bin, "../cmd/sshkick").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build sshkick: %v\n%s", err, out)
		os.Exit(1)
	}
	// Other users (the non-root tests) must be able to run it.
	os.Chmod(dir, 0o755)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func run(t testing.TB, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command(bin, args...))
}

func runCmd(t testing.TB, cmd *exec.Cmd) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", cmd.Args, err)
	}
	return result{code, out.String(), errb.String()}
}

// jsonSession mirrors the README's JSON keys.
type jsonSession struct {
	ID          string   `json:"id"`
	User        string   `json:"user"`
	UID         int      `json:"uid"`
	TTY         string   `json:"tty"`
	Host        string   `json:"host"`
	Addr        string   `json:"addr"`
	Port        int      `json:"port"`
	Login       *string  `json:"login"`
	IdleSeconds *int64   `json:"idle_seconds"`
	PID         int      `json:"pid"`
	Kind        string   `json:"kind"`
	Stale       bool     `json:"stale"`
	StaleReason string   `json:"stale_reason"`
	Sources     []string `json:"sources"`
	Command     string   `json:"command"`
	Processes   int      `json:"processes"`
	PIDs        []int    `json:"pids"`
}

func listJSON(t testing.TB, args ...string) []jsonSession {
	t.Helper()
	r := run(t, append([]string{"list", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("sshkick list --json %v: exit %d\n%s", args, r.code, r.stderr)
	}
	var out []jsonSession
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("list --json is not JSON: %v\n%s", err, r.stdout)
	}
	return out
}

func ofUser(all []jsonSession, name string) []jsonSession {
	var out []jsonSession
	for _, s := range all {
		if s.User == name {
			out = append(out, s)
		}
	}
	return out
}

// waitSessions polls `list` until the user has n live sessions.
func waitSessions(t testing.TB, n int, user string, args ...string) []jsonSession {
	t.Helper()
	return waitLive(t, n, user, false, false, args...)
}

// waitSessionsAndForward is waitSessions for a user who also has a
// forward-only connection (ssh -N), which never has more than sshd's
// processes and so counts without a leader. Only for a user with no other
// login without a terminal: an exec login caught before its command runs
// looks the same.
func waitSessionsAndForward(t testing.TB, n int, user string, args ...string) []jsonSession {
	t.Helper()
	return waitLive(t, n, user, false, true, args...)
}

// waitTTYSessions is waitSessions for logins with a terminal: between
// the shell's start and sshd's utmp record a login is briefly listed
// without its terminal, as an ssh-notty session.
func waitTTYSessions(t testing.TB, n int, user string, args ...string) []jsonSession {
	t.Helper()
	return waitLive(t, n, user, true, false, args...)
}

func waitLive(t testing.TB, n int, user string, tty, forward bool, args ...string) []jsonSession {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var live []jsonSession
		for _, s := range ofUser(listJSON(t, args...), user) {
			if !s.Stale && (s.Kind != "ssh" || s.TTY != "") && (!tty || s.TTY != "") && s.Processes > 0 &&
				(hasLeader(s) || forward && s.Kind == "ssh-notty" && s.Command == "") {
				live = append(live, s)
			}
		}
		if len(live) == n {
			return live
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s: want %d sessions, have %d: %+v", user, n, len(live), live)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasLeader: a session is fully up once it has more than sshd's processes
// (a root login before OpenSSH 9.8 has one sshd process, not two). A
// login listed between its sshd and its command has only sshd's.
func hasLeader(s jsonSession) bool {
	return s.Processes > 2 || (s.User == "root" && s.Processes > 1)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// whoLine is one line of `who -u FILE`.
type whoLine struct {
	user, line, pid, host string
}

// whoU runs coreutils `who -u` on the file: the classic view of the same
// sessions.
func whoU(t testing.TB, file string) []whoLine {
	t.Helper()
	out, err := exec.Command("who", "-u", file).Output()
	if err != nil {
		t.Fatalf("who -u %s: %v", file, err)
	}
	var lines []whoLine
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		w := whoLine{user: f[0], line: f[1]}
		// user line date time idle pid [(host)]
		rest := f[2:]
		if strings.HasPrefix(rest[len(rest)-1], "(") {
			w.host = strings.Trim(rest[len(rest)-1], "()")
			rest = rest[:len(rest)-1]
		}
		w.pid = rest[len(rest)-1]
		lines = append(lines, w)
	}
	return lines
}

func mustJSON(t testing.TB, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
}
