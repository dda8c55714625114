package kick

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

func mem(pid int, comm string, role session.Role) session.Member {
	return session.Member{Ident: proc.Ident{PID: pid, Start: uint64(pid) * 10}, UID: 1000, SID: 0, Comm: comm, Role: role}
}

func asRoot(m session.Member) session.Member {
	m.UID = 0
	return m
}

func pidsOf(ms []session.Member) []int {
	var out []int
	for _, m := range ms {
		out = append(out, m.PID)
	}
	return out
}

func TestPlanSession(t *testing.T) {
	type refusal struct {
		pid    int
		reason string
	}
	tests := []struct {
		name    string
		members []session.Member
		first   []int
		last    []int
		logout  []int
		refused []refusal
	}{
		{
			name: "ssh: shell and jobs, then sshd; monitor last",
			members: []session.Member{
				mem(100, "sshd-session", session.RoleMonitor),
				mem(101, "sshd-session", session.RoleSSHD),
				mem(102, "bash", session.RoleLeader),
				mem(103, "vim", session.RoleMember),
				mem(104, "make", session.RoleMember),
			},
			first: []int{102, 103, 104, 101},
			last:  []int{100},
		},
		{
			name: "sshd listed before the shell still goes last within First",
			members: []session.Member{
				mem(201, "sshd", session.RoleSSHD),
				mem(200, "sshd", session.RoleMonitor),
				mem(202, "zsh", session.RoleLeader),
			},
			first: []int{202, 201},
			last:  []int{200},
		},
		{
			name: "login(1) goes last",
			members: []session.Member{
				mem(300, "login", session.RoleLogin),
				mem(301, "bash", session.RoleLeader),
			},
			first: []int{301},
			last:  []int{300},
		},
		{
			name: "pane: the multiplexer server is never signalled",
			members: []session.Member{
				mem(400, "tmux: server", session.RoleServer),
				mem(401, "bash", session.RoleLeader),
				mem(402, "top", session.RoleMember),
			},
			first:   []int{401, 402},
			refused: []refusal{{400, "serves other panes"}},
		},
		{
			name: "an sshd that is only a member is refused",
			members: []session.Member{
				mem(501, "bash", session.RoleLeader),
				mem(502, "sshd", session.RoleMember),
				mem(503, "sshd-session", session.RoleMember),
				mem(504, "sshd", session.RoleLeader),
			},
			first: []int{501},
			refused: []refusal{
				{502, "not this session's own"},
				{503, "not this session's own"},
				{504, "not this session's own"},
			},
		},
		{
			name: "PID 1 and below are refused whatever their role",
			members: []session.Member{
				mem(1, "systemd", session.RoleMonitor),
				mem(0, "swapper", session.RoleLeader),
				mem(-3, "x", session.RoleMember),
				mem(600, "bash", session.RoleLeader),
			},
			first: []int{600},
			refused: []refusal{
				{1, "init"},
				{0, "PID 0"},
				{-3, "negative PID"},
			},
		},
		{
			name: "root login before OpenSSH 9.8: the one root sshd logs out, on SIGTERM, after the shell",
			members: []session.Member{
				asRoot(mem(700, "sshd", session.RoleSSHD)),
				asRoot(mem(701, "bash", session.RoleLeader)),
				asRoot(mem(702, "sleep", session.RoleMember)),
			},
			first:  []int{701, 702},
			logout: []int{700},
		},
		{
			name: "root login since OpenSSH 9.8: a privilege-separated child as for any user",
			members: []session.Member{
				asRoot(mem(800, "sshd-session", session.RoleMonitor)),
				asRoot(mem(801, "sshd-session", session.RoleSSHD)),
				asRoot(mem(802, "bash", session.RoleLeader)),
			},
			first: []int{802, 801},
			last:  []int{800},
		},
		{name: "empty session"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &session.Session{ID: "x", Members: tc.members}
			p := PlanSession(s)
			if got := pidsOf(p.First); !slices.Equal(got, tc.first) {
				t.Errorf("First = %v, want %v", got, tc.first)
			}
			if got := pidsOf(p.Last); !slices.Equal(got, tc.last) {
				t.Errorf("Last = %v, want %v", got, tc.last)
			}
			if got := pidsOf(p.Logout); !slices.Equal(got, tc.logout) {
				t.Errorf("Logout = %v, want %v", got, tc.logout)
			}
			if len(p.Refused) != len(tc.refused) {
				t.Fatalf("Refused = %+v, want %+v", p.Refused, tc.refused)
			}
			for i, w := range tc.refused {
				if p.Refused[i].PID != w.pid || !strings.Contains(p.Refused[i].Reason, w.reason) {
					t.Errorf("Refused[%d] = %+v, want pid %d with %q", i, p.Refused[i], w.pid, w.reason)
				}
			}
			// Invariants: nothing refused is planned, nothing at PID <= 1
			// or with the server role is planned.
			for _, m := range slices.Concat(p.First, p.Last, p.Logout) {
				if m.PID <= 1 || m.Role == session.RoleServer {
					t.Errorf("planned %+v", m)
				}
				for _, r := range p.Refused {
					if r.PID == m.PID {
						t.Errorf("pid %d both planned and refused", m.PID)
					}
				}
			}
			if len(p.First)+len(p.Last)+len(p.Logout)+len(p.Refused) != len(tc.members) {
				t.Errorf("plan lost or duplicated members: %d+%d+%d+%d != %d", len(p.First), len(p.Last), len(p.Logout), len(p.Refused), len(tc.members))
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want unix.Signal
		ok   bool
	}{
		{"HUP", unix.SIGHUP, true},
		{"hup", unix.SIGHUP, true},
		{"SIGHUP", unix.SIGHUP, true},
		{"sighup", unix.SIGHUP, true},
		{"SigHup", unix.SIGHUP, true},
		{"1", unix.SIGHUP, true},
		{"9", unix.SIGKILL, true},
		{"15", unix.SIGTERM, true},
		{"64", unix.Signal(64), true},
		{"KILL", unix.SIGKILL, true},
		{"TERM", unix.SIGTERM, true},
		{"INT", unix.SIGINT, true},
		{"CONT", unix.SIGCONT, true},
		{"bogus", 0, false},
		{"SIG", 0, false},
		{"sig", 0, false},
		{"SIGSIGHUP", 0, false},
		{"0", 0, false},
		{"65", 0, false},
		{"-1", 0, false},
		{"-9", 0, false},
		{"", 0, false},
		{" HUP", 0, false},
		{"HUP ", 0, false},
	}
	for _, tc := range tests {
		got, ok := ParseSignal(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
		if !ok && got != 0 {
			t.Errorf("ParseSignal(%q) failed but returned signal %d", tc.in, got)
		}
	}
}

func TestSignalName(t *testing.T) {
	tests := []struct {
		sig  unix.Signal
		want string
	}{
		{unix.SIGHUP, "HUP"},
		{unix.SIGKILL, "KILL"},
		{unix.SIGTERM, "TERM"},
		{unix.SIGCONT, "CONT"},
		{unix.Signal(0), "signal 0"},
		{unix.Signal(64), "signal 64"},
		{unix.Signal(200), "signal 200"},
	}
	for _, tc := range tests {
		if got := SignalName(tc.sig); got != tc.want {
			t.Errorf("SignalName(%d) = %q, want %q", tc.sig, got, tc.want)
		}
	}
	// Every name SignalName prints for 1..31 parses back.
	for s := unix.Signal(1); s < 32; s++ {
		n := SignalName(s)
		if strings.HasPrefix(n, "signal ") {
			continue
		}
		if got, ok := ParseSignal(n); !ok || got != s {
			t.Errorf("ParseSignal(SignalName(%d) = %q) = %v, %v", s, n, got, ok)
		}
	}
}
