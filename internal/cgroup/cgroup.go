// Package cgroup reads and acts on the cgroup v2 (unified) hierarchy as
// systemd lays it out: user-UID.slice/session-N.scope for logind sessions.
// Membership in a scope is a fact about a process that its user cannot
// change (moving a process needs write access to the target's cgroup.procs,
// which is root's), unlike its title or environment.
//
// Every path handed in is checked to stay inside the hierarchy; every file
// read is bounded.
package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const syscallNoFollow = syscall.O_NOFOLLOW | syscall.O_CLOEXEC

// ErrNoKill is returned by Kill when the kernel has no cgroup.kill (before
// Linux 5.14) or the hierarchy is not cgroup v2.
var ErrNoKill = errors.New("cgroup.kill is not available (cgroup v2 on Linux 5.14 or later)")

// ErrNoHierarchy is returned by Find when no cgroup v2 hierarchy is mounted.
var ErrNoHierarchy = errors.New("no cgroup v2 hierarchy is mounted")

// Hierarchy is a mounted cgroup v2 hierarchy.
type Hierarchy struct {
	// Mount is where it is mounted ("/sys/fs/cgroup", or
	// "/sys/fs/cgroup/unified" on a hybrid host).
	Mount string
	// Root is the cgroup path the mount shows as its root ("/" unless the
	// mount is of a sub-tree, as inside some containers).
	Root string
}

// Find returns the cgroup2 mount of procRoot's mount namespace (from
// procRoot/self/mountinfo), preferring /sys/fs/cgroup.
func Find(procRoot string) (Hierarchy, error) {
	b, err := readBounded(filepath.Join(procRoot, "self", "mountinfo"), 1<<20)
	if err != nil {
		return Hierarchy{}, err
	}
	return parseMountinfo(b)
}

func parseMountinfo(b []byte) (Hierarchy, error) {
	var found []Hierarchy
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(f) || f[sep+1] != "cgroup2" {
			continue
		}
		found = append(found, Hierarchy{Mount: unescape(f[4]), Root: unescape(f[3])})
	}
	if len(found) == 0 {
		return Hierarchy{}, ErrNoHierarchy
	}
	for _, h := range found {
		if h.Mount == "/sys/fs/cgroup" {
			return h, nil
		}
	}
	return found[0], nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				out = append(out, byte(n))
				i += 3
				continue
			}
		}
		out = append(out, s[i])
	}
	return string(out)
}

// Dir returns the directory of cgroup path p in the hierarchy. It refuses a
// path that is not clean and absolute, or that lies outside the mount's
// root: a path comes from /proc or logind, and neither may steer root's
// writes elsewhere.
func (h Hierarchy) Dir(p string) (string, error) {
	if p == "" || p[0] != '/' || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("cgroup path %q is not a clean absolute path", p)
	}
	root := h.Root
	if root == "" {
		root = "/"
	}
	rel := p
	if root != "/" {
		r, ok := strings.CutPrefix(p, root)
		if !ok || r != "" && r[0] != '/' {
			return "", fmt.Errorf("cgroup path %q is outside this hierarchy's root %q", p, root)
		}
		rel = r
	}
	return filepath.Join(h.Mount, rel), nil
}

// Procs lists the PIDs in the group dir (cgroup.procs), not its children's.
func Procs(dir string) ([]int, error) {
	b, err := readBounded(filepath.Join(dir, "cgroup.procs"), 16<<20)
	if err != nil {
		return nil, err
	}
	var out []int
	for f := range bytes.FieldsSeq(b) {
		if n, err := strconv.Atoi(string(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out, nil
}

// Populated reports whether the group dir or a group below it holds a live
// process (cgroup.events). A group that is gone is not populated.
func Populated(dir string) (bool, error) {
	b, err := readBounded(filepath.Join(dir, "cgroup.events"), 4096)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("populated ")); ok {
			return string(bytes.TrimSpace(v)) == "1", nil
		}
	}
	return false, fmt.Errorf("%s/cgroup.events has no populated line", dir)
}

// Kill SIGKILLs every process of the group dir and the groups below it in
// one step (cgroup.kill): the kernel also catches what forks meanwhile. A
// group that is already gone is not an error.
func Kill(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.kill"), os.O_WRONLY|syscallNoFollow, 0)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		return ErrNoKill
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write([]byte("1")); err != nil {
		return fmt.Errorf("write %s/cgroup.kill: %w", dir, err)
	}
	return nil
}

// UserSlice is the cgroup path of a user's slice as systemd names it.
func UserSlice(uid int) string {
	return "/user.slice/user-" + strconv.Itoa(uid) + ".slice"
}

// SessionScope is the cgroup path of logind session id's scope under its
// user's slice. The id is checked to be what logind uses (letters and
// digits); ok is false otherwise.
func SessionScope(uid int, id string) (string, bool) {
	if id == "" || len(id) > 32 {
		return "", false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", false
		}
	}
	return UserSlice(uid) + "/session-" + id + ".scope", true
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}
