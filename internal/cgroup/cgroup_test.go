package cgroup

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

func TestParseMountinfo(t *testing.T) {
	for _, c := range []struct {
		file, mount, root string
		err               error
	}{
		{"mountinfo-hybrid", "/sys/fs/cgroup/unified", "/", nil},
		{"mountinfo-unified", "/sys/fs/cgroup", "/", nil},
		{"mountinfo-sub", "/sys/fs/cgroup", "/machine.slice/machine-x.scope", nil},
		{"mountinfo-v1", "", "", ErrNoHierarchy},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		h, err := parseMountinfo(b)
		if !errors.Is(err, c.err) || h.Mount != c.mount || h.Root != c.root {
			t.Errorf("%s: got %+v, %v; want %s %s %v", c.file, h, err, c.mount, c.root, c.err)
		}
	}
	if got := unescape(`/weird\040dir\`); got != `/weird dir\` {
		t.Errorf("unescape: %q", got)
	}
}

func TestDirRefusesEscapes(t *testing.T) {
	h := Hierarchy{Mount: "/sys/fs/cgroup", Root: "/"}
	if d, err := h.Dir("/user.slice/user-1000.slice/session-3.scope"); err != nil || d != "/sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope" {
		t.Errorf("Dir: %q %v", d, err)
	}
	for _, bad := range []string{"", "user.slice", "/user.slice/../../etc", "/a//b", "/a/", "/a\x00b"} {
		if d, err := h.Dir(bad); err == nil {
			t.Errorf("Dir(%q) = %q, want an error", bad, d)
		}
	}
	sub := Hierarchy{Mount: "/sys/fs/cgroup", Root: "/machine.slice/m.scope"}
	if d, err := sub.Dir("/machine.slice/m.scope/user.slice"); err != nil || d != "/sys/fs/cgroup/user.slice" {
		t.Errorf("sub Dir: %q %v", d, err)
	}
	for _, bad := range []string{"/user.slice", "/machine.slice/m.scopeX/y"} {
		if d, err := sub.Dir(bad); err == nil {
			t.Errorf("sub Dir(%q) = %q, want an error", bad, d)
		}
	}
}

func TestSessionScope(t *testing.T) {
	if p, ok := SessionScope(1000, "c12"); !ok || p != "/user.slice/user-1000.slice/session-c12.scope" {
		t.Errorf("SessionScope: %q %v", p, ok)
	}
	for _, bad := range []string{"", "../x", "1/2", "a.b", strings.Repeat("9", 33)} {
		if p, ok := SessionScope(1000, bad); ok {
			t.Errorf("SessionScope(%q) = %q", bad, p)
		}
	}
}

// TestKillRealGroup makes a child group of this process's own, moves a
// forking shell into it and ends it with cgroup.kill: the kernel feature
// the kick of a logind user uses, on this machine's kernel.
func TestKillRealGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a cgroup")
	}
	h, err := Find("/proc")
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	_, own, ok := strings.Cut(string(b), "0::")
	if !ok {
		t.Skip("this process is in no cgroup v2 group")
	}
	own, _, _ = strings.Cut(own, "\n")
	parent, err := h.Dir(own)
	if err != nil {
		t.Skip(err)
	}
	dir := filepath.Join(parent, "sshkick-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", parent, err)
	}
	defer os.Remove(dir)
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		t.Skipf("this kernel has no cgroup.kill: %v", err)
	}
	cmd := exec.Command("sh", "-c", "sleep 1000 & sleep 1000 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Skipf("cannot move a process into %s: %v", dir, err)
	}
	if pop, err := Populated(dir); err != nil || !pop {
		t.Fatalf("Populated = %v %v, want true", pop, err)
	}
	if procs, _ := Procs(dir); !slices.Contains(procs, cmd.Process.Pid) {
		t.Fatalf("Procs = %v, want %d in it", procs, cmd.Process.Pid)
	}
	if err := Kill(dir); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if !sshdtest.Poll(time.Minute, func() bool { pop, err := Populated(dir); return err == nil && !pop }) {
		procs, _ := Procs(dir)
		t.Fatalf("group still populated after cgroup.kill: %v", procs)
	}
	if err := Kill(filepath.Join(dir, "gone")); err != nil {
		t.Errorf("Kill of a missing group: %v, want nil", err)
	}
}
