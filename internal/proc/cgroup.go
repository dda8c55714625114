package proc

import (
	"bytes"
	"strconv"
)

// LogindSession returns the logind session id that /proc/PID/cgroup names:
// the N of a "session-N.scope" path component, in the unified hierarchy
// ("0::/user.slice/user-1000.slice/session-5.scope") or in cgroup v1's
// name=systemd one. ok is false when the process is in no session scope,
// is gone, or its file cannot be read. The file is read up to 4 KiB.
//
// A process cannot move itself into another user's session scope (that
// needs write access to the scope's cgroup.procs, which is root's), so the
// scope is a fact about the process, unlike its title or environment.
func LogindSession(root string, pid int) (id string, ok bool) {
	var buf [cgroupMax]byte
	b, err := readBounded(root+"/"+strconv.Itoa(pid)+"/cgroup", buf[:], cgroupMax, onProcfs(root))
	if err != nil {
		return "", false
	}
	return parseCgroupSession(b)
}

// parseCgroupSession reads the lines "ID:CONTROLLERS:PATH" of a cgroup
// file; only the unified line (ID 0, no controllers) and name=systemd count.
func parseCgroupSession(b []byte) (string, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := bytes.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		hid, ctrl, path := line[:i], line[i+1:i+1+j], line[i+2+j:]
		if !(string(hid) == "0" && len(ctrl) == 0) && string(ctrl) != "name=systemd" {
			continue
		}
		if id, ok := sessionScope(path); ok {
			return id, true
		}
	}
	return "", false
}

// sessionScope finds "session-N.scope" among the components of a cgroup
// path; N is what logind uses for ids: letters and digits.
func sessionScope(path []byte) (string, bool) {
	for len(path) > 0 {
		comp := path
		if i := bytes.IndexByte(path, '/'); i >= 0 {
			comp, path = path[:i], path[i+1:]
		} else {
			path = nil
		}
		n, ok := bytes.CutPrefix(comp, []byte("session-"))
		if !ok {
			continue
		}
		n, ok = bytes.CutSuffix(n, []byte(".scope"))
		if !ok || len(n) == 0 || len(n) > 32 {
			continue
		}
		good := true
		for _, c := range n {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				good = false
				break
			}
		}
		if good {
			return string(n), true
		}
	}
	return "", false
}
