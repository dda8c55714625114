package session

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/logind"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/utmp"
)

// fp is one process of a generated /proc tree.
type fp struct {
	pid, ppid, pgrp, sid int
	tty                  uint64
	uid, euid            int
	comm, cmdline        string
	start                uint64
	cgroup, exe, environ string
	state                byte
}

// writeTree writes a fake /proc with the given processes (btime as the
// committed fixtures).
func writeTree(t testing.TB, procs []fp) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte(fmt.Sprintf("cpu 1 2 3\nbtime %d\n", btime)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		dir := filepath.Join(root, fmt.Sprint(p.pid))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		st := p.state
		if st == 0 {
			st = 'S'
		}
		tpgid := -1
		if p.tty != 0 {
			tpgid = p.pgrp
		}
		stat := fmt.Sprintf("%d (%s) %c %d %d %d %d %d 4194560 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n",
			p.pid, p.comm, st, p.ppid, p.pgrp, p.sid, p.tty, tpgid, p.start)
		euid := p.euid
		if euid == 0 && p.uid != 0 {
			euid = p.uid
		}
		files := map[string]string{
			"stat":    stat,
			"status":  fmt.Sprintf("Name:\t%s\nUid:\t%d\t%d\t%d\t%d\n", p.comm, p.uid, euid, euid, euid),
			"cmdline": strings.ReplaceAll(p.cmdline, " ", "\x00") + "\x00",
		}
		if strings.HasPrefix(p.cmdline, "sshd") {
			files["cmdline"] = p.cmdline + "\x00"
		}
		if p.cgroup != "" {
			files["cgroup"] = p.cgroup
		}
		if p.environ != "" {
			files["environ"] = p.environ
		}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if p.exe != "" {
			if err := os.Symlink(p.exe, filepath.Join(dir, "exe")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

const pts0 = 34816 // tty_nr of pts/0

// base is a host with init, an sshd listener and one SSH login of uid 1001
// (skt-a) on pts/0: monitor 100 → user's sshd 101 → -bash 102.
func base() []fp {
	return []fp{
		{pid: 1, ppid: 0, pgrp: 1, sid: 1, comm: "init", cmdline: "/sbin/init", start: 1},
		{pid: 50, ppid: 1, pgrp: 50, sid: 50, comm: "sshd", cmdline: "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", start: 100, exe: "/usr/sbin/sshd"},
		{pid: 100, ppid: 50, pgrp: 100, sid: 100, comm: "sshd", cmdline: "sshd: skt-a [priv]", start: 1000, exe: "/usr/sbin/sshd"},
		{pid: 101, ppid: 100, pgrp: 100, sid: 100, uid: 1001, comm: "sshd", cmdline: "sshd: skt-a@pts/0", start: 1001, exe: "/usr/sbin/sshd"},
		{pid: 102, ppid: 101, pgrp: 102, sid: 102, tty: pts0, uid: 1001, comm: "bash", cmdline: "-bash", start: 1002,
			cgroup:  "0::/user.slice/user-1001.slice/session-4.scope\n",
			environ: "USER=skt-a\x00SSH_CONNECTION=192.0.2.10 51234 10.0.2.15 22\x00"},
	}
}

var attackUsers = map[int]string{0: "root", 1001: "skt-a", 1018: "skt-b"}

func joinTree(t testing.TB, procs []fp, mod func(*Input)) []Session {
	t.Helper()
	root := writeTree(t, procs)
	snap, err := proc.Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{users: attackUsers}
	in := Input{
		Now: now, Proc: snap, UserName: f.userName, UserID: f.userID,
		Peer: func(pid int) (netip.AddrPort, bool) {
			if pid == 100 {
				return netip.MustParseAddrPort("192.0.2.10:51234"), true
			}
			return netip.AddrPort{}, false
		},
		Exe: func(pid int) (string, bool) {
			e, err := proc.Exe(root, pid)
			return e, err == nil
		},
		Scope: func(pid int) (string, bool) { return proc.LogindSession(root, pid) },
		Env: func(pid int) (netip.AddrPort, bool) {
			v, err := proc.Getenv(root, pid, "SSH_CONNECTION")
			if err != nil {
				return netip.AddrPort{}, false
			}
			return parseSSHConnection(v)
		},
	}
	if mod != nil {
		mod(&in)
	}
	return Join(in)
}

// setsidChain: n processes under the shell, each a child of the one before
// that called setsid() — the attack of issue 8 item 2.
func setsidChain(n int) []fp {
	procs := base()
	parent := 102
	for i := 0; i < n; i++ {
		pid := 1000 + i
		procs = append(procs, fp{pid: pid, ppid: parent, pgrp: pid, sid: pid, uid: 1001, comm: "sh",
			cmdline: "sh -c chain", start: uint64(2000 + i)})
		parent = pid
	}
	return procs
}

// A chain of 2,000 processes that each called setsid(): one session holding
// all of them, not 2,001 sessions (which was quadratic in time and memory).
func TestJoinSetsidChainIsOneSession(t *testing.T) {
	got := joinTree(t, setsidChain(2000), nil)
	if len(got) != 1 {
		t.Fatalf("%d sessions, want 1", len(got))
	}
	s := got[0]
	if s.ID != "pts/0" || s.User != "skt-a" || s.Processes != 2003 || s.Kind != SSH {
		t.Errorf("session %s user %s kind %s: %d processes, want pts/0 skt-a ssh with 2003", s.ID, s.User, s.Kind, s.Processes)
	}
	seen := map[int]bool{}
	for _, m := range s.Members {
		if seen[m.PID] {
			t.Fatalf("process %d listed twice", m.PID)
		}
		seen[m.PID] = true
	}
	if r := roles(&s); r[100] != "monitor" || r[101] != "sshd" || r[102] != "leader" || r[2999] != "member" {
		t.Errorf("roles: 100 %s, 101 %s, 102 %s, 2999 %s", r[100], r[101], r[102], r[2999])
	}
}

// A `setsid nohup` job started in the session and left behind by its
// parent (ppid 1, its own session id): the logind scope says whose it is.
// Only the user's own processes in the scope count, never root's, and a
// process of the scope that is in another session stays there.
func TestJoinScopeClaimsLeftovers(t *testing.T) {
	procs := base()
	scope4 := "0::/user.slice/user-1001.slice/session-4.scope\n"
	procs = append(procs,
		fp{pid: 300, ppid: 1, pgrp: 300, sid: 300, uid: 1001, comm: "sleep", cmdline: "sleep 1000", start: 3000, cgroup: scope4},
		fp{pid: 301, ppid: 300, pgrp: 300, sid: 300, uid: 1001, comm: "sleep", cmdline: "sleep 1001", start: 3001, cgroup: scope4},
		// v1 name=systemd hierarchy
		fp{pid: 302, ppid: 1, pgrp: 302, sid: 302, uid: 1001, comm: "job", cmdline: "job", start: 3002,
			cgroup: "3:cpu:/\n1:name=systemd:/user.slice/user-1001.slice/session-4.scope\n"},
		// root in the scope (sudo's leftovers): never claimed by the scope
		fp{pid: 303, ppid: 1, pgrp: 303, sid: 303, uid: 0, comm: "rootjob", cmdline: "rootjob", start: 3003, cgroup: scope4},
		// the user's processes elsewhere: their systemd --user, another scope
		fp{pid: 304, ppid: 1, pgrp: 304, sid: 304, uid: 1001, comm: "systemd", cmdline: "/lib/systemd/systemd --user", start: 3004,
			cgroup: "0::/user.slice/user-1001.slice/user@1001.service/init.scope\n"},
		fp{pid: 305, ppid: 1, pgrp: 305, sid: 305, uid: 1001, comm: "other", cmdline: "other", start: 3005,
			cgroup: "0::/user.slice/user-1001.slice/session-9.scope\n"},
		// another user's process claiming the scope's name
		fp{pid: 306, ppid: 1, pgrp: 306, sid: 306, uid: 1018, comm: "x", cmdline: "x", start: 3006, cgroup: scope4},
	)
	l := logind.Session{ID: "4", UID: 1001, User: "skt-a", TTY: "pts/0", RemoteHost: "192.0.2.10", Service: "sshd",
		Class: "user", Type: "tty", Remote: true, Leader: 100, Timestamp: at(1000)}
	var scopeReads []int
	got := joinTree(t, procs, func(in *Input) {
		in.Logind = []logind.Session{l}
		scope := in.Scope
		in.Scope = func(pid int) (string, bool) {
			scopeReads = append(scopeReads, pid)
			return scope(pid)
		}
	})
	if len(got) != 1 {
		t.Fatalf("%d sessions, want 1: %+v", len(got), got)
	}
	s := got[0]
	if want := []int{100, 101, 102, 300, 301, 302}; !slices.Equal(s.PIDs, want) {
		t.Errorf("PIDs %v, want %v", s.PIDs, want)
	}
	slices.Sort(scopeReads)
	// 301 comes with its parent; root's 303, 306 of another user with no
	// logind session, and the session's own members are never read.
	if want := []int{300, 302, 304, 305}; !slices.Equal(scopeReads, want) {
		t.Errorf("cgroup files read for %v, want %v", scopeReads, want)
	}
	// Without logind, no scope is looked at.
	scopeReads = nil
	got = joinTree(t, procs, func(in *Input) {
		in.Scope = func(pid int) (string, bool) { scopeReads = append(scopeReads, pid); return "", false }
	})
	if len(scopeReads) != 0 || got[0].Processes != 3 {
		t.Errorf("without logind: %d cgroup reads, %d processes", len(scopeReads), got[0].Processes)
	}
}

// Forged sshd titles (issue 8 item 8): a user's own binary named sshd,
// with titles naming root in Cyrillic letters, a user who does not exist,
// another user's uid, a real user whose uid is not the process's, and a
// fake SSH_CONNECTION; also a "monitor" that is the user's and a real
// monitor's "child" running another program.
func TestJoinForgedTitlesOfUsers(t *testing.T) {
	procs := base()
	fake := func(pid, ppid int, title string) fp {
		return fp{pid: pid, ppid: ppid, pgrp: pid, sid: pid, uid: 1001, comm: "sshd", cmdline: title, start: uint64(5000 + pid),
			exe: "/home/skt-a/sshd", environ: "SSH_CONNECTION=203.0.113.66 4444 10.0.2.15 22\x00"}
	}
	procs = append(procs,
		fake(400, 102, "sshd: r\u043e\u043et@pts/0"),
		fake(401, 102, "sshd: \u0430dva@notty"),
		fake(402, 102, "sshd: 1018@notty"),
		fake(403, 102, "sshd: skt-b@notty"),
		fake(404, 102, "sshd: skt-a@notty"), // the user's own name, but no monitor
		fake(405, 102, "sshd: skt-a [priv]"),
		fake(406, 405, "sshd: skt-a@notty"),
		fp{pid: 407, ppid: 406, pgrp: 407, sid: 407, uid: 1001, comm: "sh", cmdline: "sh", start: 6000,
			environ: "SSH_CONNECTION=203.0.113.66 4444 10.0.2.15 22\x00"},
		// a root monitor whose "child" is the user's own program
		fp{pid: 500, ppid: 50, pgrp: 500, sid: 500, comm: "sshd", cmdline: "sshd: skt-a [priv]", start: 7000, exe: "/usr/sbin/sshd"},
		fp{pid: 501, ppid: 500, pgrp: 500, sid: 500, uid: 1001, comm: "sshd", cmdline: "sshd: skt-a@notty", start: 7001, exe: "/home/skt-a/sshd"},
	)
	got := joinTree(t, procs, nil)
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID+"/"+s.User+"/"+s.Addr)
		if s.Addr == "203.0.113.66" || s.User != "skt-a" {
			t.Errorf("a forged title made a session: %+v", viewOf(s))
		}
	}
	// The real login holds the fake processes; the root monitor 500 with
	// no real child is listed as the connection it is (no login yet).
	if len(got) != 2 || got[0].Processes+got[1].Processes != 3+8+1 {
		t.Errorf("sessions %v", ids)
	}
	for _, s := range got {
		for _, m := range s.Members {
			if m.PID >= 400 && m.PID < 500 && m.Role != RoleMember {
				t.Errorf("forged sshd %d has role %s", m.PID, m.Role)
			}
			if m.PID == 501 {
				t.Errorf("the user's program under a real monitor counts as its sshd: %+v", m)
			}
		}
	}
}

// SSH_CONNECTION is the user's word: without the socket (not root), the
// address from it is listed as "env", unverified, and read from the
// session's leader only.
func TestJoinEnvAddressUnverified(t *testing.T) {
	got := joinTree(t, base(), func(in *Input) { in.Peer = nil })
	if len(got) != 1 {
		t.Fatalf("%d sessions", len(got))
	}
	s := got[0]
	if s.Addr != "192.0.2.10" || s.HostSource != HostEnv || s.HostVerified {
		t.Errorf("addr %q source %q verified %v", s.Addr, s.HostSource, s.HostVerified)
	}
	f, _ := ParseFrom("192.0.2.0/24")
	if (Filter{From: []netip.Prefix{f}}).Match(&s) {
		t.Error("--from selects an unverified address")
	}
	if !(Filter{From: []netip.Prefix{f}, FromUnverified: true}).Match(&s) {
		t.Error("--from with FromUnverified does not select it")
	}
	got = joinTree(t, base(), nil)
	if s := got[0]; s.HostSource != HostSocket || !s.HostVerified || s.Port != 51234 {
		t.Errorf("with the socket: source %q verified %v port %d", s.HostSource, s.HostVerified, s.Port)
	}
}

// A fake source through utempter (issue 8 item 9): the user writes a record
// for their own pty naming any host, with their own process as ut_pid. It
// never replaces the verified address, --from does not select it, and the
// pty is listed once.
func TestJoinUtempterRecord(t *testing.T) {
	procs := base()
	procs = append(procs, fp{pid: 110, ppid: 102, pgrp: 110, sid: 102, tty: pts0, uid: 1001, comm: "utempter",
		cmdline: "utempter", start: 1100})
	sshdRec := utmp.Record{Type: utmp.UserProcess, PID: 100, Line: "pts/0", ID: "ts/0", User: "skt-a",
		Host: "ws1.example.org", Time: at(1005), Addr: netip.MustParseAddr("192.0.2.10")}
	fakeRec := func(pid int32, line string) utmp.Record {
		return utmp.Record{Type: utmp.UserProcess, PID: pid, Line: line, ID: "ts/0", User: "skt-a",
			Host: "203.0.113.66", Time: at(1200), Addr: netip.MustParseAddr("203.0.113.66")}
	}
	from, _ := ParseFrom("203.0.113.0/24")
	for name, recs := range map[string][]utmp.Record{
		"beside sshd's":           {sshdRec, fakeRec(102, "pts/0")},
		"before sshd's":           {fakeRec(110, "pts/0"), sshdRec},
		"in place of sshd's":      {fakeRec(102, "pts/0")},
		"naming another of its":   {sshdRec, fakeRec(110, "pts/0")},
		"naming a process's pty0": {fakeRec(110, "pts/0")},
	} {
		for _, peer := range []bool{true, false} {
			got := joinTree(t, procs, func(in *Input) {
				in.Utmp = recs
				if !peer {
					in.Peer, in.Env = nil, nil
				}
			})
			live := 0
			for _, s := range got {
				if !s.Stale {
					live++
				}
				if (Filter{From: []netip.Prefix{from}}).Match(&s) {
					t.Errorf("%s (socket %v): --from selects the forged host: %+v", name, peer, viewOf(s))
				}
				if peer && !s.Stale && (s.Addr != "192.0.2.10" || !s.HostVerified) {
					t.Errorf("%s: the socket's address lost: %+v", name, viewOf(s))
				}
			}
			if live != 1 {
				t.Errorf("%s (socket %v): %d live sessions for one pty: %+v", name, peer, live, got)
			}
		}
	}
}

// The argv flood (issue 8 item 3): many processes named sshd with a huge
// command line cost a bounded read each.
func TestJoinArgvFlood(t *testing.T) {
	procs := base()
	huge := "sshd: " + strings.Repeat("A", 200000)
	for i := 0; i < 50; i++ {
		procs = append(procs, fp{pid: 600 + i, ppid: 102, pgrp: 600 + i, sid: 102, uid: 1001, comm: "sshd", cmdline: huge, start: uint64(8000 + i)})
	}
	root := writeTree(t, procs)
	snap, err := proc.Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if c := snap.Cmdline(600 + i); len(c) > proc.CmdlineMax {
			t.Fatalf("cmdline of %d is %d bytes", 600+i, len(c))
		}
	}
	got := joinTree(t, procs, nil)
	if len(got) != 1 || got[0].Processes != 53 {
		t.Errorf("%d sessions", len(got))
	}
}

// BenchmarkJoinSetsidChain: 10,000 processes in one session (issue 8
// target: list ≤ 0.5 s and ≤ 60 MB RSS).
func BenchmarkJoinSetsidChain(b *testing.B) {
	root := writeTree(b, setsidChain(10000))
	f := fixture{users: attackUsers}
	for b.Loop() {
		fresh, _ := proc.Scan(root)
		got := Join(Input{Now: time.Now(), Proc: fresh, UserName: f.userName, UserID: f.userID})
		if len(got) != 1 {
			b.Fatalf("%d sessions", len(got))
		}
	}
}
