package debtree

import (
	"os"
	"path/filepath"
	"testing"
)

// The cached tree is one a test can use: it has the programs the
// container and install tests run.
func TestExtract(t *testing.T) {
	Require(t)
	dir := t.TempDir()
	if err := Extract(os.Stderr, dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"lib/systemd/systemd", "lib/systemd/systemd-logind", "usr/sbin/sshd",
		"usr/bin/dbus-daemon", "usr/bin/man", "usr/share/bash-completion/bash_completion", "usr/bin/dpkg"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("the tree lacks %s: %v", p, err)
		}
	}
	if keys, _ := filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*")); len(keys) != 0 {
		t.Errorf("the cached tree carries SSH host keys %v: every user must make its own", keys)
	}
}
