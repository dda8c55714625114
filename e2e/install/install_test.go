// Package install builds the sshkick packages (packaging/build.sh, as make
// package does) and checks them as an administrator would meet them: the
// .deb installed with dpkg into a clean Debian 12 host booted with systemd
// (internal/nspawntest), its pages read with man, Tab pressed in bash, the
// watch unit started with systemctl, removed, purged and upgraded; lintian
// on the .deb; the .rpm holding the same files as the .deb.
//
// Under make check (SSHKICK_E2E=require) a machine that cannot boot the
// container or lacks lintian fails instead of skipping.
package install

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/nspawntest"
)

// The two builds: the second is the upgrade.
const (
	version1 = "9.8.7+e2e1"
	version2 = "9.8.7+e2e2"
)

var (
	dist     string // the packages, on the host
	buildErr error
)

func TestMain(m *testing.M) {
	code := func() int {
		if nspawntest.Missing() != "" {
			return m.Run() // every test reports it through need()
		}
		var err error
		if dist, err = os.MkdirTemp("", "sshkick-install-"); err != nil {
			buildErr = err
			return m.Run()
		}
		defer os.RemoveAll(dist)
		start := time.Now()
		for _, v := range []string{version1, version2} {
			if buildErr = build(v); buildErr != nil {
				return m.Run()
			}
		}
		fmt.Fprintf(os.Stderr, "install: packages %s and %s built in %v\n", version1, version2, time.Since(start).Round(time.Second))
		return m.Run()
	}()
	os.Exit(code)
}

// build runs packaging/build.sh for amd64 with VERSION v into dist.
func build(v string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command("bash", "../../packaging/build.sh", dist)
	cmd.Env = append(os.Environ(), "GO="+gobin, "VERSION="+v, "ARCHES=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("packaging/build.sh VERSION=%s: %v\n%s", v, err, out)
	}
	return nil
}

func need(t *testing.T) {
	t.Helper()
	nspawntest.Require(t)
	if buildErr != nil {
		t.Fatalf("building the packages failed: %v", buildErr)
	}
}

func deb(v string) string { return filepath.Join(dist, "sshkick_"+v+"_amd64.deb") }
func rpm(v string) string { return filepath.Join(dist, "sshkick-"+v+"-1.x86_64.rpm") }

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %v: %v\n%s%s", name, args, err, out, stderr)
	}
	return string(out)
}

// The .rpm holds the same files, directories aside, as the .deb, and marks
// the same ones as configuration.
func TestRPMMatchesDeb(t *testing.T) {
	need(t)
	for _, p := range []string{"/usr/bin/rpm", "/usr/bin/dpkg-deb"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing (make deps installs rpm)", p)
		}
	}
	var debFiles []string
	for _, l := range strings.Split(run(t, "dpkg-deb", "-c", deb(version1)), "\n") {
		f := strings.Fields(l)
		if len(f) >= 6 && !strings.HasPrefix(f[0], "d") {
			debFiles = append(debFiles, strings.TrimPrefix(f[len(f)-1], "."))
		}
	}
	sort.Strings(debFiles)
	rpmFiles := strings.Fields(run(t, "rpm", "-qlp", rpm(version1)))
	sort.Strings(rpmFiles)
	if strings.Join(debFiles, "\n") != strings.Join(rpmFiles, "\n") {
		t.Errorf("rpm -qlp and dpkg-deb -c differ:\n--- deb ---\n%s\n--- rpm ---\n%s", strings.Join(debFiles, "\n"), strings.Join(rpmFiles, "\n"))
	}
	if len(debFiles) < 10 || !contains(debFiles, "/usr/bin/sshkick") {
		t.Errorf("the .deb lacks files: %v", debFiles)
	}
	if got := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "%{NAME} %{VERSION}", rpm(version1))); got != "sshkick "+version1 {
		t.Errorf("rpm name and version: %q", got)
	}
	if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb(version1), "Package", "Version")); got != "Package: sshkick\nVersion: "+version1 {
		t.Errorf("deb name and version: %q", got)
	}
	info := t.TempDir()
	run(t, "dpkg-deb", "-e", deb(version1), info)
	conffiles, _ := os.ReadFile(filepath.Join(info, "conffiles"))
	c1 := strings.Fields(string(conffiles))
	c2 := strings.Fields(run(t, "rpm", "-qp", "--configfiles", rpm(version1)))
	sort.Strings(c1)
	sort.Strings(c2)
	want := []string{"/etc/logrotate.d/sshkick", "/etc/sshkick/policy.toml"}
	if strings.Join(c1, " ") != strings.Join(want, " ") || strings.Join(c2, " ") != strings.Join(want, " ") {
		t.Errorf("configuration files: deb %v, rpm %v, want %v", c1, c2, want)
	}
	// The .rpm runs the same maintainer scripts (one file serves both).
	scripts := run(t, "rpm", "-qp", "--scripts", rpm(version1))
	for _, want := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet",
		"try-restart sshkick-watch.service", "stop sshkick-watch.service"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm -qp --scripts lacks %q:\n%s", want, scripts)
		}
	}
	for _, p := range []string{deb(version1), rpm(version1)} {
		if st, err := os.Stat(p); err == nil {
			t.Logf("%s: %d bytes", filepath.Base(p), st.Size())
		}
	}
}

// lintian finds no error and no warning in the .deb. The tag the package
// overrides (packaging/lintian-overrides: statically-linked-binary) is
// explained there; with --show-overrides lintian would count it as an
// error again, so it is not passed.
func TestLintian(t *testing.T) {
	need(t)
	if _, err := os.Stat("/usr/bin/lintian"); err != nil {
		if os.Getenv("SSHKICK_E2E") == "require" {
			t.Fatal("lintian is missing (make deps installs it)")
		}
		t.Skip("lintian is missing (make deps installs it)")
	}
	cmd := exec.Command("lintian", "--fail-on", "error,warning", "--tag-display-limit", "0", "-I", deb(version1))
	out, err := cmd.CombinedOutput()
	t.Logf("lintian:\n%s", out)
	if err != nil {
		t.Errorf("lintian reports errors or warnings (%v):\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			t.Errorf("lintian: %s", l)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
