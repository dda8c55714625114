package kick

import (
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/session"
)

// Plan is the order in which one session's processes are signalled.
//
// For SSH the order matters (research/security.md §5): the shell's session
// and the user's sshd process get the first signal; sshd's root [priv]
// monitor is left alone, because when its child dies it writes the logout
// record, closes PAM and releases the terminal. Killed first, it leaves a
// stale utmp record and the session running. Only if it is still there
// after everything else is gone does it get SIGKILL.
type Plan struct {
	// First get the requested signal (SIGHUP by default), then SIGCONT so
	// stopped jobs act on it.
	First []session.Member
	// Last are the login processes (sshd's monitor, login(1)): they end by
	// themselves once the session is gone, and are killed only after that.
	Last []session.Member
	// Logout are sshd processes that are their own monitor: a root login
	// before OpenSSH 9.8 has no privilege-separated child (sshd.c,
	// privsep_postauth: "root login", use_privsep = 0), so the one root
	// sshd process of the connection writes the logout record. SIGHUP
	// would kill it on the spot (it runs with SIGHUP at SIG_DFL) and leave
	// the user in utmp; its SIGTERM handler logs out first (serverloop.c:
	// "Clean up sessions, utmp, etc.", cleanup_exit). So it gets SIGTERM
	// once the session's processes are gone, SIGKILL only if it stays.
	Logout []session.Member
	// Refused are members that are never signalled, and why.
	Refused []Refusal
}

// PlanSession plans the end of s. It is pure: no process is looked at.
func PlanSession(s *session.Session) Plan {
	var p Plan
	var sshd []session.Member
	hasMonitor := false
	for _, m := range s.Members {
		if m.Role == session.RoleMonitor {
			hasMonitor = true
		}
	}
	for _, m := range s.Members {
		if m.PID <= 1 {
			p.Refused = append(p.Refused, Refusal{PID: m.PID, Reason: pidReason(m.PID)})
			continue
		}
		isSSHD := m.Comm == "sshd" || m.Comm == "sshd-session"
		switch m.Role {
		case session.RoleServer:
			p.Refused = append(p.Refused, Refusal{PID: m.PID,
				Reason: m.Comm + " serves other panes and sessions too: not signalled"})
		case session.RoleMonitor, session.RoleLogin:
			p.Last = append(p.Last, m)
		case session.RoleSSHD:
			if m.UID == 0 && !hasMonitor {
				p.Logout = append(p.Logout, m)
				continue
			}
			sshd = append(sshd, m)
		default:
			if isSSHD {
				p.Refused = append(p.Refused, Refusal{PID: m.PID,
					Reason: "an sshd process that is not this session's own: never signalled"})
				continue
			}
			p.First = append(p.First, m)
		}
	}
	// Shell and jobs first, then the user's sshd process.
	p.First = append(p.First, sshd...)
	return p
}

// SignalName is "HUP" for SIGHUP.
func SignalName(s unix.Signal) string {
	n := unix.SignalName(s)
	if len(n) > 3 && n[:3] == "SIG" {
		return n[3:]
	}
	if n == "" {
		return "signal " + strconv.Itoa(int(s))
	}
	return n
}

// ParseSignal accepts HUP, SIGHUP, hup, TERM, KILL, INT, 9, 15, 1…
func ParseSignal(s string) (unix.Signal, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 1 && n <= 64 {
			return unix.Signal(n), true
		}
		return 0, false
	}
	up := make([]byte, 0, len(s)+3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up = append(up, c)
	}
	name := string(up)
	if len(name) < 3 || name[:3] != "SIG" {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	return sig, sig != 0
}
