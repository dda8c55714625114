// Package debtree gives tests a Debian 12 (bookworm) root tree with systemd,
// dbus, systemd-logind, OpenSSH with pam_systemd, man-db and bash-completion:
// the host that the systemd container tests boot (internal/nspawntest) and
// the one the packages are installed into (the install test).
//
// The tree is built once with debootstrap and kept as a zstd tarball under
// CacheDir; a missing cache is built, a damaged one removed and built again
// on the next run. Builders are serialised with a lock, so test binaries
// that start together build it once. Extract gives every test its own copy.
//
// Only tests import this package. It needs root, debootstrap, zstd and
// Debian's mirror (the one apt uses here).
package debtree

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CacheDir holds the cached tarball.
const CacheDir = "/var/cache/sshkick-test"

// cacheVersion names the tarball; bump it when Packages or the build change.
const cacheVersion = "debian12-v1"

// Packages are installed into the tree besides debootstrap's minbase.
var Packages = []string{"systemd", "systemd-sysv", "dbus", "libpam-systemd", "openssh-server",
	"openssh-client", "procps", "iproute2", "tmux", "psmisc", "man-db", "bash-completion", "less"}

// Tools the tree's build and use need on the host.
var Tools = []string{"/usr/sbin/debootstrap", "/usr/bin/zstd", "/usr/bin/tar"}

// Missing says what building or extracting the tree needs and this machine
// lacks, or "".
func Missing() string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, p := range Tools {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "the Debian test tree needs " + strings.Join(missing, ", ") +
		" (run make deps, or make check, as root: it installs debootstrap and zstd)"
}

// Require stops the test unless the tree can be had here. Under make check
// (SSHKICK_E2E=require) it fails instead of skipping, so CI cannot pass by
// testing nothing.
func Require(t testing.TB) {
	t.Helper()
	if why := Missing(); why != "" {
		if os.Getenv("SSHKICK_E2E") == "require" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

// Extract untars the tree (building the cache first when needed) into dir,
// which must exist and should be empty.
func Extract(log io.Writer, dir string) error {
	tarball, err := Tarball(log)
	if err != nil {
		return err
	}
	if out, err := exec.Command("tar", "--numeric-owner", "--zstd", "-xf", tarball, "-C", dir).CombinedOutput(); err != nil {
		// A damaged cache: remove it so that the next run builds it again.
		os.Remove(tarball)
		return fmt.Errorf("untar %s: %v: %s (the cache was removed; the next run builds it again)", tarball, err, lastLines(string(out), 10))
	}
	return nil
}

// Tarball returns the cached tarball, building it when it is missing.
func Tarball(log io.Writer) (string, error) {
	tarball := filepath.Join(CacheDir, cacheVersion+".tar.zst")
	if st, err := os.Stat(tarball); err == nil && st.Size() > 0 {
		return tarball, nil
	}
	if err := os.MkdirAll(CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(CacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if st, err := os.Stat(tarball); err == nil && st.Size() > 0 {
		return tarball, nil // another builder finished while we waited
	}
	build, err := os.MkdirTemp("/var/tmp", "sshkick-debootstrap-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(build)
	root := filepath.Join(build, "root")
	fmt.Fprintf(log, "debtree: building the Debian 12 tree (debootstrap, a minute or two; cached in %s)\n", tarball)
	start := time.Now()
	cmd := exec.Command("/usr/sbin/debootstrap", "--variant=minbase", "--include="+strings.Join(Packages, ","), "bookworm", root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("debootstrap bookworm failed (%v); it needs the Debian mirror apt uses:\n%s", err, lastLines(out.String(), 20))
	}
	// Package caches, documentation and locales are not needed. The man
	// directory stays (the install test reads sshkick's pages with man).
	for _, d := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/locale"} {
		p := filepath.Join(root, d)
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if e.Name() != "partial" && e.Name() != "lock" {
				os.RemoveAll(filepath.Join(p, e.Name()))
			}
		}
	}
	// Debian makes SSH host keys at install time: every user of the tree
	// makes its own.
	keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		os.Remove(k)
	}
	tmp := tarball + ".tmp"
	tar := exec.Command("tar", "--numeric-owner", "--zstd", "-cf", tmp, "-C", root, ".")
	if b, err := tar.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("tar the tree: %v: %s", err, b)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "debtree: tree built and cached in %v\n", time.Since(start).Round(time.Second))
	return tarball, nil
}

func lastLines(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
