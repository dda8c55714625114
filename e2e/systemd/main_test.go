// Package systemd runs the sshkick binary on a real systemd host: a Debian
// 12 tree booted with systemd-nspawn (internal/nspawntest), with dbus,
// systemd-logind and OpenSSH with pam_systemd, so that SSH logins are real
// logind sessions in their own session-N.scope cgroups. sshkick runs inside
// the container (its PIDs, terminals and bus are the container's); the SSH
// clients are the test's own processes on the host.
//
// One container serves the whole package. Under make check
// (SSHKICK_E2E=require) a host that cannot boot it fails every test.
package systemd

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/nspawntest"
	"github.com/sshkick/sshkick/internal/sshdtest"
)

var (
	host    *nspawntest.Host
	bootErr error
)

func TestMain(m *testing.M) {
	code := func() int {
		if nspawntest.Missing() != "" {
			return m.Run() // every test reports it through need()
		}
		dir, err := os.MkdirTemp("", "sshkick-systemd-")
		if err != nil {
			bootErr = err
			return m.Run()
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "sshkick")
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = "/usr/local/go/bin/go"
		}
		// Static: the container's libc is not the host's business.
		build := exec.Command(gobin, "build", "-trimpath", "-o", bin, "../../cmd/sshkick")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			bootErr = fmt.Errorf("build sshkick: %v\n%s", err, out)
			return m.Run()
		}
		start := time.Now()
		host, bootErr = nspawntest.Boot(os.Stderr, bin)
		if bootErr == nil {
			fmt.Fprintf(os.Stderr, "systemd: container %s booted in %v\n", host.Name, time.Since(start).Round(time.Millisecond))
			defer host.Stop()
		}
		return m.Run()
	}()
	os.Exit(code)
}

// need returns the booted host or ends the test: a skip where the machine
// cannot boot one, a failure under make check or when the boot failed.
func need(t *testing.T) *nspawntest.Host {
	t.Helper()
	nspawntest.Require(t)
	if bootErr != nil {
		t.Fatalf("the systemd container did not boot: %v", bootErr)
	}
	return host
}

// session mirrors the README's JSON keys that these tests read.
type session struct {
	ID          string   `json:"id"`
	User        string   `json:"user"`
	UID         int      `json:"uid"`
	TTY         string   `json:"tty"`
	Host        string   `json:"host"`
	Addr        string   `json:"addr"`
	Kind        string   `json:"kind"`
	LogindID    string   `json:"logind_id"`
	Stale       bool     `json:"stale"`
	Sources     []string `json:"sources"`
	Command     string   `json:"command"`
	Processes   int      `json:"processes"`
	PIDs        []int    `json:"pids"`
	IdleSeconds *int64   `json:"idle_seconds"`
	IdleSource  string   `json:"idle_source"`
}

func list(t *testing.T, h *nspawntest.Host, args ...string) []session {
	t.Helper()
	r := h.Sshkick(t, append([]string{"list", "--json"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("sshkick list --json %v in the container: exit %d\n%s", args, r.Code, r.Stderr)
	}
	var out []session
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("list --json is not JSON: %v\n%s", err, r.Stdout)
	}
	return out
}

func ofUser(all []session, name string) []session {
	var out []session
	for _, s := range all {
		if s.User == name {
			out = append(out, s)
		}
	}
	return out
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// waitFor polls cond for up to two minutes (the machine is shared and
// slow at times) and fails the test with what it last saw.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	sshdtest.WaitFor(t, 2*time.Minute, what, cond)
}

// waitSessions waits until user u has n live sessions that logind knows
// and that satisfy ready (nil: any), and returns them.
func waitSessions(t *testing.T, h *nspawntest.Host, u *nspawntest.User, n int, ready func(session) bool) []session {
	t.Helper()
	var got []session
	waitFor(t, fmt.Sprintf("%d logind sessions of %s", n, u.Name), func() (bool, string) {
		got = got[:0]
		for _, s := range ofUser(list(t, h), u.Name) {
			if !s.Stale && has(s.Sources, "logind") && (ready == nil || ready(s)) {
				got = append(got, s)
			}
		}
		b, _ := json.MarshalIndent(ofUser(list(t, h), u.Name), "", " ")
		return len(got) == n, string(b)
	})
	return got
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// waitLong bounds waits for a client or a process: generous, the machine is
// shared.
const waitLong = 2 * time.Minute

var _ = strings.Contains
