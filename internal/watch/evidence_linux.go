package watch

import (
	"os"
	"os/user"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/policy"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc: 100 on
// every Linux architecture.
const clockTicks = 100

// SystemEvidence gathers the evidence the policy needs from this host:
// the terminal's atime and mtime (only for a valid tty name whose device is
// the one discovery saw, so a forged utmp line never makes us stat another
// file), the session's CPU time from the snapshot, the user's groups and
// whether sshkick itself runs in the session.
func SystemEvidence(res *session.Result) []policy.Input {
	return Evidence(res, "/dev", os.Getpid(), groupsOf)
}

// Evidence is SystemEvidence with its sources as parameters.
func Evidence(res *session.Result, devRoot string, self int, groups func(user string) []string) []policy.Input {
	own := map[int]bool{}
	if res.Proc != nil {
		for pid, i := self, 0; pid > 1 && i < 4096; i++ {
			own[pid] = true
			p := res.Proc.Procs[pid]
			if p == nil {
				break
			}
			pid = p.PPID
		}
	}
	cache := map[string][]string{}
	out := make([]policy.Input, 0, len(res.Sessions))
	for i := range res.Sessions {
		s := &res.Sessions[i]
		ev := policy.Evidence{CPU: -1}
		if s.TTY != "" && !s.Stale {
			ev.Atime, ev.Mtime = ttyTimes(devRoot, s.TTY, s.TTYDev)
		}
		if res.Proc != nil {
			var ticks uint64
			for _, m := range s.Members {
				if own[m.PID] && m.PID > 1 && m.Role != session.RoleMonitor {
					ev.Own = true
				}
				if p := res.Proc.Procs[m.PID]; p != nil && p.Start == m.Start {
					ticks += p.UTime + p.STime
				}
			}
			ev.CPU = time.Duration(ticks) * time.Second / clockTicks
		}
		g, ok := cache[s.User]
		if !ok && s.User != "" {
			g = groups(s.User)
			cache[s.User] = g
		}
		ev.Groups = g
		out = append(out, policy.Input{Session: s, Evidence: ev})
	}
	return out
}

func ttyTimes(devRoot, tty string, dev uint64) (atime, mtime time.Time) {
	if _, ok := proc.TTYDevice(tty); !ok {
		return
	}
	var st unix.Stat_t
	if err := unix.Lstat(devRoot+"/"+tty, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return
	}
	if dev != 0 && st.Rdev != dev {
		return
	}
	return time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix())
}

// groupsOf returns the names of a user's groups, primary included.
func groupsOf(name string) []string {
	u, err := user.Lookup(name)
	if err != nil {
		return nil
	}
	ids, err := u.GroupIds()
	if err != nil {
		ids = []string{u.Gid}
	}
	var out []string
	for _, id := range ids {
		if g, err := user.LookupGroupId(id); err == nil {
			out = append(out, g.Name)
		}
	}
	return out
}

// SystemRefresh is the cheap evaluation between discoveries (see
// Options.Refresh): the inputs of the last discovery with each terminal's
// atime and mtime stat()ed again and, when cpu, each member's CPU time
// read again from /proc/PID/stat — one read per process instead of a
// whole /proc scan; without cpu, CPU is unknown (-1). ok is false when a member is gone or was replaced (a
// session may have ended): then only a discovery will do.
func SystemRefresh(in []policy.Input, cpu bool) ([]policy.Input, bool) {
	return Refresh(in, "/dev", "/proc", cpu)
}

// Refresh is SystemRefresh with its roots as parameters.
func Refresh(in []policy.Input, devRoot, procRoot string, cpu bool) ([]policy.Input, bool) {
	out := make([]policy.Input, len(in))
	buf := make([]byte, 1024) // a stat line is ~300 bytes
	for i, x := range in {
		s := x.Session
		ev := x.Evidence
		if s.TTY != "" && !s.Stale {
			ev.Atime, ev.Mtime = ttyTimes(devRoot, s.TTY, s.TTYDev)
		}
		if !cpu {
			// Unknown, not unchanged: the next sample's growth is then
			// measured from the last real one.
			ev.CPU = -1
		} else if ev.CPU >= 0 {
			var ticks uint64
			for _, m := range s.Members {
				p, err := readStat(procRoot+"/"+strconv.Itoa(m.PID)+"/stat", buf)
				if err != nil || p.Start != m.Start {
					return nil, false
				}
				ticks += p.UTime + p.STime
			}
			ev.CPU = time.Duration(ticks) * time.Second / clockTicks
		}
		out[i] = policy.Input{Session: s, Evidence: ev}
	}
	return out, true
}

// readStat reads and parses one stat file with one read (procfs returns
// it whole), into buf.
func readStat(path string, buf []byte) (*proc.Process, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	return proc.ParseStat(buf[:n])
}
