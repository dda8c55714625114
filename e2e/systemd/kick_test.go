package systemd

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sshkick/sshkick/internal/nspawntest"
)

type action struct {
	Via    string `json:"via"`
	Target string `json:"target"`
	Signal string `json:"signal"`
	Result string `json:"result"`
}

type kickReport struct {
	Sessions []struct {
		ID        string `json:"id"`
		User      string `json:"user"`
		TTY       string `json:"tty"`
		Result    string `json:"result"`
		Reason    string `json:"reason"`
		Scope     string `json:"scope"`
		Survivors []int  `json:"survivors"`
		Signals   []struct {
			PID    int    `json:"pid"`
			Comm   string `json:"comm"`
			Role   string `json:"role"`
			Signal string `json:"signal"`
			Result string `json:"result"`
		} `json:"signals"`
		Actions []action `json:"actions"`
		Kept    []struct {
			PID    int    `json:"pid"`
			Comm   string `json:"comm"`
			Reason string `json:"reason"`
		} `json:"kept"`
		Refused []struct {
			PID    int    `json:"pid"`
			Reason string `json:"reason"`
		} `json:"refused"`
	} `json:"sessions"`
	Users []struct {
		User      string   `json:"user"`
		UID       int      `json:"uid"`
		Result    string   `json:"result"`
		Reason    string   `json:"reason"`
		Actions   []action `json:"actions"`
		Survivors []int    `json:"survivors"`
	} `json:"users"`
	Refused []struct {
		Target string `json:"target"`
		Reason string `json:"reason"`
	} `json:"refused"`
	Unmatched []string `json:"unmatched"`
	Notes     []string `json:"notes"`
}

// kick runs `sshkick kick --json --yes ARGS` in the container and wants
// exit code want.
func kick(t *testing.T, h *nspawntest.Host, want int, args ...string) kickReport {
	t.Helper()
	r := h.Sshkick(t, append([]string{"kick", "--json", "--yes"}, args...)...)
	var rep kickReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("kick %v: exit %d, not JSON: %v\n%s\n%s", args, r.Code, err, r.Stdout, r.Stderr)
	}
	if r.Code != want {
		t.Fatalf("kick %v: exit %d, want %d\n%s\n%s", args, r.Code, want, dump(rep), r.Stderr)
	}
	return rep
}

// alive reports whether container PID pid runs (exists, not a zombie).
func alive(t *testing.T, h *nspawntest.Host, pid int) bool {
	t.Helper()
	r := h.Exec(t, "cat", "/proc/"+strconv.Itoa(pid)+"/stat")
	if r.Code != 0 {
		return false
	}
	i := strings.LastIndexByte(r.Stdout, ')')
	return i > 0 && i+2 < len(r.Stdout) && r.Stdout[i+2] != 'Z' && r.Stdout[i+2] != 'X'
}

// scopeActive is systemd's ActiveState of a session's scope unit.
func scopeState(t *testing.T, h *nspawntest.Host, id string) string {
	t.Helper()
	r := h.Exec(t, "systemctl", "show", "-p", "ActiveState", "--value", "session-"+id+".scope")
	return strings.TrimSpace(r.Stdout)
}

func waitOne(t *testing.T, h *nspawntest.Host, u *nspawntest.User, cmdline string) int {
	t.Helper()
	var pids []int
	waitFor(t, cmdline+" to run", func() (bool, string) {
		pids = pidsOf(t, h, u, cmdline)
		return len(pids) == 1, fmt.Sprint(pids)
	})
	return pids[0]
}

func waitGone(t *testing.T, h *nspawntest.Host, what string, pid int) {
	t.Helper()
	waitFor(t, what+" (pid "+strconv.Itoa(pid)+") to end", func() (bool, string) {
		return !alive(t, h, pid), "still running"
	})
}

// kick TTY on a logind host ends the login, its shell and a setsid job in
// its scope; a tmux server started in it is kept (as a logout keeps it),
// and the other user's session survives. The session then is logind's
// "closing" session holding tmux; kicking it with --end-multiplexers ends
// the server, its pane and the scope, through logind and cgroup.kill.
func TestKickTTY(t *testing.T) {
	h := need(t)
	u, other := h.AddUser(t), h.AddUser(t)
	c := h.SSH(t, u, true, "")
	c.Send("setsid nohup sleep 3612 </dev/null >/dev/null 2>&1 & tmux new-session -d 'sleep 3613'; echo ready-$((6*7))\n")
	if !c.WaitFor("ready-42", waitLong) {
		t.Fatalf("the login did not start its jobs: %s %s", c.Out, c.Err)
	}
	o := h.SSH(t, other, true, "sleep 3614")
	job := waitOne(t, h, u, "sleep 3612")
	pane := waitOne(t, h, u, "sleep 3613")
	var s session
	waitFor(t, "the login's session with its jobs", func() (bool, string) {
		for _, x := range ofUser(list(t, h), u.Name) {
			if x.TTY != "" && has(x.Sources, "logind") && slices.Contains(x.PIDs, job) {
				s = x
				return true, ""
			}
		}
		return false, dump(ofUser(list(t, h), u.Name))
	})
	waitSessions(t, h, other, 1, func(s session) bool { return s.Command == "sleep 3614" })
	if s.IdleSource != "tty" || s.IdleSeconds == nil {
		t.Errorf("a tty session's idle time comes from its terminal: %s", dump(s))
	}

	rep := kick(t, h, 0, s.TTY)
	if len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" || rep.Sessions[0].Scope != "/user.slice/user-"+strconv.Itoa(u.UID)+".slice/session-"+s.LogindID+".scope" {
		t.Fatalf("kick %s: %s", s.TTY, dump(rep))
	}
	kept := false
	for _, k := range rep.Sessions[0].Kept {
		kept = kept || strings.HasPrefix(k.Comm, "tmux")
	}
	if !kept {
		t.Errorf("the tmux server is not reported kept: %s", dump(rep.Sessions[0]))
	}
	if !c.Ended(waitLong) {
		t.Fatal("the ssh client is still connected")
	}
	waitGone(t, h, "the setsid job", job)
	if !alive(t, h, pane) {
		t.Fatal("the tmux pane ended with the login: the server must be kept by default")
	}
	if !o.Running() {
		t.Fatal("the other user's session ended too")
	}

	// logind keeps the session, closing, while tmux runs in its scope.
	var closing session
	waitFor(t, "the closing session that holds tmux", func() (bool, string) {
		for _, x := range ofUser(list(t, h), u.Name) {
			if x.LogindID == s.LogindID {
				closing = x
				return true, ""
			}
		}
		return false, dump(ofUser(list(t, h), u.Name))
	})
	rep = kick(t, h, 0, "id:"+closing.ID, "--end-multiplexers", "--wait", "2s")
	if len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick %s --end-multiplexers: %s", closing.ID, dump(rep))
	}
	viaLogind := false
	for _, a := range rep.Sessions[0].Actions {
		viaLogind = viaLogind || a.Via == "logind" && a.Target == "session "+s.LogindID && a.Result == "done"
	}
	if !viaLogind {
		t.Errorf("the outcome does not say logind ended the scope: %s", dump(rep.Sessions[0]))
	}
	waitGone(t, h, "the tmux pane", pane)
	waitFor(t, "the session's scope to stop", func() (bool, string) {
		st := scopeState(t, h, s.LogindID)
		return st == "inactive" || st == "failed" || st == "", st
	})
	if !o.Running() {
		t.Fatal("the other user's session ended with the scope")
	}
}

// kick USER ends every session of the user: with a terminal, without one,
// a forward; the other user's session survives.
func TestKickUser(t *testing.T) {
	h := need(t)
	u, other := h.AddUser(t), h.AddUser(t)
	a := h.SSH(t, u, true, "sleep 3621")
	b := h.SSH(t, u, false, "sleep 3622")
	f := h.Forward(t, u)
	o := h.SSH(t, other, false, "sleep 3623")
	waitSessions(t, h, u, 3, func(s session) bool { return s.Processes > 0 && (s.Command != "" || s.TTY == "") })
	waitSessions(t, h, other, 1, func(s session) bool { return s.Command == "sleep 3623" })
	rep := kick(t, h, 0, u.Name)
	if len(rep.Sessions) != 3 {
		t.Fatalf("kick %s: want 3 sessions ended: %s", u.Name, dump(rep))
	}
	for _, s := range rep.Sessions {
		if s.Result != "ended" || !strings.HasPrefix(s.Scope, "/user.slice/user-"+strconv.Itoa(u.UID)+".slice/session-") {
			t.Errorf("session %s: %s", s.ID, dump(s))
		}
	}
	for name, c := range map[string]*nspawntest.Client{"tty": a, "exec": b, "forward": f} {
		if !c.Ended(waitLong) {
			t.Errorf("the %s client is still connected", name)
		}
	}
	waitFor(t, "no session of "+u.Name, func() (bool, string) {
		var live []session
		for _, s := range ofUser(list(t, h), u.Name) {
			if len(s.PIDs) > 0 {
				live = append(live, s)
			}
		}
		return len(live) == 0, dump(live)
	})
	if !o.Running() {
		t.Fatal("the other user's session ended")
	}
}

// kick USER --all-processes ends every process of the user, a `setsid -f`
// job and a process outside any session included, with the kernel's
// cgroup.kill on the user's slice, verified afterwards.
func TestKickAllProcesses(t *testing.T) {
	h := need(t)
	u, other := h.AddUser(t), h.AddUser(t)
	c := h.SSH(t, u, true, "")
	c.Send("setsid -f sh -c 'trap \"\" HUP TERM; exec sleep 3631' </dev/null >/dev/null 2>&1; echo ready-$((6*7))\n")
	if !c.WaitFor("ready-42", waitLong) {
		t.Fatalf("the login did not start its job: %s %s", c.Out, c.Err)
	}
	// A process of the user outside any session (as cron would run it).
	outside := h.Exec(t, "systemd-run", "--uid="+u.Name, "--unit=sshkick-test-"+u.Name, "sleep", "3632")
	if outside.Code != 0 {
		t.Fatalf("systemd-run: %s %s", outside.Stdout, outside.Stderr)
	}
	o := h.SSH(t, other, false, "sleep 3633")
	job := waitOne(t, h, u, "sleep 3631")
	t.Cleanup(func() { h.Exec(t, "systemctl", "stop", "sshkick-test-"+u.Name) })
	svc := waitOne(t, h, u, "/usr/bin/sleep 3632")
	waitSessions(t, h, other, 1, func(s session) bool { return s.Command == "sleep 3633" })
	rep := kick(t, h, 0, u.Name, "--all-processes")
	if len(rep.Users) != 1 || rep.Users[0].Result != "ended" {
		t.Fatalf("kick %s --all-processes: %s", u.Name, dump(rep))
	}
	slice := false
	for _, a := range rep.Users[0].Actions {
		slice = slice || a.Via == "cgroup" && a.Target == "/user.slice/user-"+strconv.Itoa(u.UID)+".slice" && a.Result == "done"
	}
	if !slice {
		t.Errorf("the outcome does not show cgroup.kill of the user's slice: %s", dump(rep.Users[0]))
	}
	waitGone(t, h, "the setsid -f job", job)
	waitGone(t, h, "the process outside any session", svc)
	if left := h.Exec(t, "pgrep", "-u", u.Name); strings.TrimSpace(left.Stdout) != "" {
		t.Errorf("processes of %s left: %s", u.Name, left.Stdout)
	}
	if !c.Ended(waitLong) {
		t.Error("the ssh client is still connected")
	}
	if !o.Running() {
		t.Fatal("the other user's session ended")
	}
}

// A forward (ssh -N) and an exec session are kicked by their ids. The wait
// takes a session as soon as logind lists it, so about half of the runs
// kick the exec login while it is still being born (only sshd's monitor,
// perhaps no scope yet, pam_motd's scripts running as root, the user's
// sshd forked during the kick): it must end too, the client with it, and
// nothing of it is refused.
func TestKickNoTTY(t *testing.T) {
	h := need(t)
	u := h.AddUser(t)
	f := h.Forward(t, u)
	e := h.SSH(t, u, false, "sleep 3641")
	ss := waitSessions(t, h, u, 2, func(s session) bool { return s.Command == "sleep 3641" || s.Command == "" })
	var reps []kickReport
	for _, s := range ss {
		// id: because a logind id may also be a PID of another session
		// (both are small numbers in the container), which is refused.
		rep := kick(t, h, 0, "id:"+s.ID)
		if len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" || len(rep.Sessions[0].Refused) > 0 {
			t.Fatalf("kick %s: %s", s.ID, dump(rep))
		}
		reps = append(reps, rep)
	}
	for name, c := range map[string]*nspawntest.Client{"forward": f, "exec": e} {
		if !c.Ended(waitLong) {
			ps := h.Exec(t, "ps", "-eo", "pid,ppid,sid,uid,stat,cgroup:60,args")
			t.Errorf("the %s client is still connected (stderr %q)\nsessions: %s\nkicks: %s\nnow: %s\n%s",
				name, c.Err.String(), dump(ss), dump(reps), dump(ofUser(list(t, h), u.Name)), ps.Stdout)
		}
	}
}

// msg reaches a logind session's terminal.
func TestMsg(t *testing.T) {
	h := need(t)
	u := h.AddUser(t)
	c := h.SSH(t, u, true, "")
	s := waitSessions(t, h, u, 1, func(s session) bool { return s.TTY != "" })[0]
	r := h.Sshkick(t, "msg", s.TTY, "--message", "maintenance at noon")
	if r.Code != 0 {
		t.Fatalf("msg %s: exit %d %s %s", s.TTY, r.Code, r.Stdout, r.Stderr)
	}
	if !c.WaitFor("maintenance at noon", waitLong) {
		t.Fatalf("the message did not reach the terminal: %q", c.Out.String())
	}
}

// With logind stopped (and masked, so that the bus cannot start it
// again), list goes on from utmp and /proc and says so once, and a kick
// still ends a session through verified pidfds. Once logind is back, its
// sessions are listed from it again.
func TestLogindStopped(t *testing.T) {
	h := need(t)
	u, other := h.AddUser(t), h.AddUser(t)
	c := h.SSH(t, u, true, "sleep 3651")
	o := h.SSH(t, other, true, "sleep 3652")
	s := waitSessions(t, h, u, 1, func(s session) bool { return s.Command == "sleep 3651" })[0]
	waitSessions(t, h, other, 1, func(s session) bool { return s.Command == "sleep 3652" })
	restart := func() {
		h.Exec(t, "systemctl", "unmask", "--runtime", "systemd-logind")
		h.Exec(t, "systemctl", "start", "systemd-logind")
	}
	t.Cleanup(restart)
	for _, cmd := range [][]string{{"systemctl", "mask", "--runtime", "systemd-logind"}, {"systemctl", "stop", "systemd-logind"}} {
		if r := h.Exec(t, cmd...); r.Code != 0 {
			t.Fatalf("%v: %s %s", cmd, r.Stdout, r.Stderr)
		}
	}
	r := h.Sshkick(t, "list", "--json")
	if r.Code != 0 {
		t.Fatalf("list with logind stopped: exit %d %s", r.Code, r.Stderr)
	}
	n := 0
	for _, line := range strings.Split(r.Stderr, "\n") {
		if strings.Contains(line, "logind") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("list with logind stopped: want one note about logind on stderr, got %d:\n%s", n, r.Stderr)
	}
	var all []session
	if err := json.Unmarshal([]byte(r.Stdout), &all); err != nil {
		t.Fatal(err)
	}
	var found *session
	for i := range all {
		if all[i].User == u.Name && all[i].TTY == s.TTY {
			found = &all[i]
		}
	}
	if found == nil || has(found.Sources, "logind") || !has(found.Sources, "utmp") || found.Stale {
		t.Fatalf("with logind stopped, want %s's session on %s from utmp and /proc:\n%s", u.Name, s.TTY, dump(all))
	}
	rep := kick(t, h, 0, s.TTY)
	if len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" || len(rep.Sessions[0].Signals) == 0 {
		t.Fatalf("kick with logind stopped: %s", dump(rep))
	}
	if !c.Ended(waitLong) {
		t.Fatal("the client is still connected after a kick with logind stopped")
	}
	restart()
	waitFor(t, "logind to list "+other.Name+"'s session again", func() (bool, string) {
		for _, x := range ofUser(list(t, h), other.Name) {
			if has(x.Sources, "logind") && x.Command == "sleep 3652" {
				return true, ""
			}
		}
		return false, dump(ofUser(list(t, h), other.Name))
	})
	if !o.Running() {
		t.Fatal("the other user's session ended")
	}
}

// A login that runs `tmux` directly has the tmux client as its leader: the
// kick ends the client with the login and keeps only the server.
func TestKickTmuxClientLogin(t *testing.T) {
	h := need(t)
	u := h.AddUser(t)
	c := h.SSH(t, u, true, "tmux new-session 'sleep 3671'")
	pane := waitOne(t, h, u, "sleep 3671")
	s := waitSessions(t, h, u, 1, func(s session) bool { return s.TTY != "" && s.Kind == "ssh" })[0]
	rep := kick(t, h, 0, s.TTY)
	if len(rep.Sessions) != 1 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick %s: %s", s.TTY, dump(rep))
	}
	for _, k := range rep.Sessions[0].Kept {
		if k.Comm != "tmux: server" && k.Comm != "sleep" {
			t.Errorf("kept %d (%s): only the server and its pane may be kept: %s", k.PID, k.Comm, dump(rep.Sessions[0]))
		}
	}
	if !c.Ended(waitLong) {
		t.Fatal("the login that ran the tmux client is still connected")
	}
	if !alive(t, h, pane) {
		t.Error("the tmux pane ended: the server must be kept by default")
	}
}
