package proc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseCgroupSession(t *testing.T) {
	tests := []struct {
		in, id string
		ok     bool
	}{
		{"0::/user.slice/user-1000.slice/session-5.scope\n", "5", true},
		{"0::/user.slice/user-1000.slice/session-c2.scope", "c2", true},
		// cgroup v1 with the name=systemd hierarchy beside the controllers.
		{"12:cpu,cpuacct:/user.slice\n1:name=systemd:/user.slice/user-1001.slice/session-17.scope\n0::/\n", "17", true},
		// Not a session: a user service, the user manager, a system service.
		{"0::/user.slice/user-1000.slice/user@1000.service/app.slice/tmux-spawn-1.scope\n", "", false},
		{"0::/system.slice/ssh.service\n", "", false},
		{"0::/\n", "", false},
		// A controller hierarchy of v1 that is not systemd's is not looked at.
		{"4:memory:/user.slice/user-1000.slice/session-9.scope\n", "", false},
		// Malformed.
		{"", "", false},
		{"garbage", "", false},
		{"0::/session-.scope", "", false},
		{"0::/session-5.scope.x", "", false},
		{"0::/session-5.scopex", "", false},
		{"0::/session-../.scope", "", false},
		{"0::/session-5\x1b.scope", "", false},
		{"0:x:/session-5.scope", "", false},
	}
	for _, tt := range tests {
		id, ok := parseCgroupSession([]byte(tt.in))
		if id != tt.id || ok != tt.ok {
			t.Errorf("parseCgroupSession(%q) = %q, %v; want %q, %v", tt.in, id, ok, tt.id, tt.ok)
		}
	}
}

func TestLogindSession(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A session line beyond the 4 KiB bound is not read.
	long := make([]byte, 0, 5000)
	for len(long) < 4200 {
		long = append(long, "7:blkio:/x\n"...)
	}
	long = append(long, "0::/user.slice/user-1.slice/session-3.scope\n"...)
	if err := os.WriteFile(filepath.Join(root, "42", "cgroup"), long, 0o644); err != nil {
		t.Fatal(err)
	}
	if id, ok := LogindSession(root, 42); ok {
		t.Errorf("a session line past the bound was read: %q", id)
	}
	if err := os.WriteFile(filepath.Join(root, "42", "cgroup"), []byte("0::/user.slice/user-1.slice/session-3.scope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if id, ok := LogindSession(root, 42); !ok || id != "3" {
		t.Errorf("LogindSession = %q, %v", id, ok)
	}
	if _, ok := LogindSession(root, 43); ok {
		t.Error("a missing process is in a session")
	}
}
