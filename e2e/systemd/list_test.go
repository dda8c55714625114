package systemd

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/sshkick/sshkick/internal/nspawntest"
)

// pidsOf returns the container PIDs of u's processes whose command line is
// exactly cmdline (pgrep -x -f: a query, nothing is signalled).
func pidsOf(t *testing.T, h *nspawntest.Host, u *nspawntest.User, cmdline string) []int {
	t.Helper()
	r := h.Exec(t, "pgrep", "-u", u.Name, "-x", "-f", cmdline)
	var out []int
	for _, f := range strings.Fields(r.Stdout) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// An SSH login with a terminal, one without (ssh host cmd), a forward
// (ssh -N) and sftp are each one session, listed with logind among the
// sources and the tty, host, user and command the container has. A job
// the login shell started with setsid nohup is part of the login's
// session (it is in the session's scope), not a session of its own.
func TestListKinds(t *testing.T) {
	h := need(t)
	u := h.AddUser(t)
	tty := h.SSH(t, u, true, "")
	tty.Send("setsid nohup sleep 3602 </dev/null >/dev/null 2>&1 & exec sleep 3600\n")
	h.SSH(t, u, false, "sleep 3601")
	h.Forward(t, u)
	ftp := h.SFTP(t, u)
	// A login is listed from the moment logind knows it, before its
	// command runs (an exec or sftp login then looks like a forward): wait
	// for each to run what it was opened for.
	var all []session
	kinds := map[string]session{}
	waitFor(t, "a tty, an exec, an sftp and a forward session of "+u.Name, func() (bool, string) {
		all = ofUser(list(t, h), u.Name)
		clear(kinds)
		for _, s := range all {
			switch {
			case s.Stale || s.Processes == 0:
			case s.TTY != "" && s.Command == "sleep 3600":
				kinds["tty"] = s
			case s.TTY == "" && s.Command == "sleep 3601":
				kinds["exec"] = s
			case s.TTY == "" && strings.Contains(s.Command, "sftp-server"):
				kinds["sftp"] = s
			case s.TTY == "" && s.Command == "":
				kinds["forward"] = s
			}
		}
		return len(all) == 4 && len(kinds) == 4, dump(all)
	})
	var job []int
	waitFor(t, "the setsid job to run", func() (bool, string) {
		job = pidsOf(t, h, u, "sleep 3602")
		return len(job) == 1, strconv.Itoa(len(job)) + " processes"
	})
	all = ofUser(list(t, h), u.Name)
	if len(all) != 4 {
		t.Fatalf("want 4 sessions of %s (tty, no-tty, forward, sftp), the setsid job in the tty's; got %d:\n%s", u.Name, len(all), dump(all))
	}
	for _, s := range all {
		if s.User != u.Name || s.UID != u.UID || s.Host != "127.0.0.1" || s.Stale || !has(s.Sources, "logind") || !has(s.Sources, "proc") || s.LogindID == "" {
			t.Errorf("session %s: want user %s uid %d from 127.0.0.1, live, sources logind and proc, a logind id:\n%s", s.ID, u.Name, u.UID, dump(s))
		}
		if s.ID == kinds["tty"].ID {
			kinds["tty"] = s // as listed with the job running
		}
	}
	s := kinds["tty"]
	if !strings.HasPrefix(s.TTY, "pts/") || s.Kind != "ssh" || s.Command != "sleep 3600" || !has(s.Sources, "utmp") {
		t.Errorf("tty session: want an ssh session on pts/N running sleep 3600, in utmp too:\n%s", dump(s))
	}
	member := false
	for _, p := range s.PIDs {
		member = member || p == job[0]
	}
	if !member {
		t.Errorf("the setsid job (pid %d) is not a member of the login's session:\n%s", job[0], dump(s))
	}
	for k, s := range kinds {
		if k != "tty" && s.Kind != "ssh-notty" {
			t.Errorf("%s session: want kind ssh-notty:\n%s", k, dump(s))
		}
	}
	// sftp still works while listed.
	ftp.Send("pwd\n")
	if !ftp.WaitFor("/home/"+u.Name, waitLong) {
		t.Errorf("sftp did not answer pwd: %s %s", ftp.Out, ftp.Err)
	}
	// The table shows the same sessions, with logind's ids.
	r := h.Sshkick(t, "list", "--user", u.Name)
	if r.Code != 0 || strings.Count(r.Stdout, u.Name) != 4 {
		t.Errorf("list --user %s: exit %d, want 4 rows:\n%s%s", u.Name, r.Code, r.Stdout, r.Stderr)
	}
}

// why shows logind's idle hint for a logind session, next to the
// terminal's times that the policy uses.
func TestWhyLogindIdleHint(t *testing.T) {
	h := need(t)
	u := h.AddUser(t)
	h.SSH(t, u, true, "sleep 3661")
	s := waitSessions(t, h, u, 1, func(s session) bool { return s.Command == "sleep 3661" })[0]
	policy := "[[rule]]\nname = \"e2e\"\nusers = [\"" + u.Name + "\"]\nidle = \"1h\"\n"
	if r := h.ExecInput(t, strings.NewReader(policy), "sh", "-c", "cat > /tmp/why-policy.toml"); r.Code != 0 {
		t.Fatalf("write the policy: %s", r.Stderr)
	}
	r := h.Sshkick(t, "why", s.TTY, "--config", "/tmp/why-policy.toml", "--state", "/tmp/why-state.json", "--json")
	var out []struct {
		ID         string `json:"id"`
		LogindIdle *bool  `json:"logind_idle_hint"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || r.Code != 0 || len(out) != 1 {
		t.Fatalf("why %s --json: exit %d %v\n%s%s", s.TTY, r.Code, err, r.Stdout, r.Stderr)
	}
	if out[0].LogindIdle == nil || *out[0].LogindIdle {
		t.Errorf("why: a fresh logind session's idle hint is false, not missing or set: %s", r.Stdout)
	}
	r = h.Sshkick(t, "why", s.TTY, "--config", "/tmp/why-policy.toml", "--state", "/tmp/why-state.json")
	if r.Code != 0 || !strings.Contains(r.Stdout, "logind: session "+s.LogindID+", idle hint not set") {
		t.Errorf("why: want logind's idle hint in the evidence:\n%s%s", r.Stdout, r.Stderr)
	}
}
