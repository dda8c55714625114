package install

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/nspawntest"
	"github.com/sshkick/sshkick/internal/sshdtest"
)

// inside is where the test copies the packages in the container's tree.
const inside = "/opt/sshkick-e2e"

// pathEnv leaves out /usr/local/bin, where nspawntest binds a binary of
// its own: sshkick must be found where the package put it.
const pathEnv = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

// The .deb in a clean Debian 12 host booted with systemd, as an
// administrator meets it: installed with dpkg; its version, pages,
// completion, unit and policy; upgraded with an edited policy; removed;
// purged.
func TestDebOnDebian12(t *testing.T) {
	need(t)
	// nspawntest binds a binary at its InsideBin: the package's own.
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", deb(version1), x)
	start := time.Now()
	h, err := nspawntest.Boot(os.Stderr, filepath.Join(x, "usr/bin/sshkick"))
	if err != nil {
		t.Fatalf("boot the Debian 12 container: %v", err)
	}
	t.Cleanup(h.Stop)
	t.Logf("container %s booted in %v", h.Name, time.Since(start).Round(time.Millisecond))
	if err := os.MkdirAll(filepath.Join(h.Root, inside), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{version1, version2} {
		copyFile(t, deb(v), filepath.Join(h.Root, inside, filepath.Base(deb(v))))
	}
	sh := func(script string) nspawntest.Result {
		t.Helper()
		return h.Exec(t, "env", pathEnv, "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive", "sh", "-c", script)
	}
	mustSh := func(script string) string {
		t.Helper()
		r := sh(script)
		if r.Code != 0 {
			t.Fatalf("in the container: %s: exit %d\n%s%s", script, r.Code, r.Stdout, r.Stderr)
		}
		return r.Stdout
	}
	status := func() string {
		t.Helper()
		return strings.TrimSpace(sh("dpkg-query -W -f '${Status} ${Version}' sshkick 2>/dev/null").Stdout)
	}

	// Install.
	mustSh("dpkg -i " + inside + "/" + filepath.Base(deb(version1)) + " </dev/null")
	if got := status(); got != "install ok installed "+version1 {
		t.Fatalf("dpkg-query after dpkg -i: %q", got)
	}
	if got := strings.TrimSpace(mustSh("command -v sshkick")); got != "/usr/bin/sshkick" {
		t.Errorf("command -v sshkick = %q, want /usr/bin/sshkick", got)
	}

	t.Run("version", func(t *testing.T) {
		out := mustSh("sshkick --version")
		if !strings.Contains(out, version1) || !regexp.MustCompile(`[0-9a-f]{12}`).MatchString(out) {
			t.Errorf("sshkick --version: want version %s and a commit; got %q", version1, out)
		}
	})

	t.Run("man", func(t *testing.T) {
		for name, want := range map[string]string{"sshkick": "/usr/share/man/man8/sshkick.8.gz",
			"sshkick-policy.toml": "/usr/share/man/man5/sshkick-policy.toml.5.gz",
			"sshkick-kick":        "/usr/share/man/man8/sshkick-kick.8.gz"} {
			if got := strings.TrimSpace(mustSh("man -w " + name)); got != want {
				t.Errorf("man -w %s = %q, want %s", name, got, want)
			}
		}
		pages := strings.Fields(mustSh("dpkg -L sshkick | grep '^/usr/share/man/.*\\.gz$'"))
		if len(pages) < 3 {
			t.Fatalf("the package lists %d manual pages: %v", len(pages), pages)
		}
		for _, p := range pages {
			if r := sh("man --warnings -E UTF-8 -l " + p + " 2>&1 >/dev/null"); r.Code != 0 || r.Stdout != "" {
				t.Errorf("man --warnings %s: exit %d:\n%s%s", p, r.Code, r.Stdout, r.Stderr)
			}
			if r := sh("man -E UTF-8 -l " + p + " | wc -l"); strings.TrimSpace(r.Stdout) == "0" {
				t.Errorf("man %s renders nothing", p)
			}
		}
	})

	t.Run("policy", func(t *testing.T) {
		if r := sh("sshkick policy check /etc/sshkick/policy.toml"); r.Code != 0 {
			t.Errorf("sshkick policy check of the shipped policy: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
	})

	t.Run("unit", func(t *testing.T) {
		r := sh("systemd-analyze verify /usr/lib/systemd/system/sshkick-watch.service")
		if r.Code != 0 || strings.Contains(r.Stdout+r.Stderr, "sshkick") {
			t.Errorf("systemd-analyze verify: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		if got := strings.TrimSpace(sh("systemctl is-enabled sshkick-watch.service").Stdout); got != "disabled" {
			t.Errorf("systemctl is-enabled after install = %q, want disabled (the admin enables it)", got)
		}
		// Type=notify: start returns once the daemon sent READY=1, and
		// its STATUS= is systemd's StatusText.
		if r := sh("systemctl start sshkick-watch.service"); r.Code != 0 {
			t.Fatalf("systemctl start sshkick-watch: exit %d\n%s%s\n%s", r.Code, r.Stdout, r.Stderr,
				sh("journalctl -u sshkick-watch --no-pager -n 40").Stdout)
		}
		var show string
		waitFor(t, "sshkick-watch to be active with its sd_notify status", func() (bool, string) {
			show = sh("systemctl show -p Type,ActiveState,SubState,StatusText sshkick-watch.service").Stdout
			return strings.Contains(show, "ActiveState=active\n") && strings.Contains(show, "SubState=running\n") &&
				strings.Contains(show, "StatusText=watching sessions\n"), show
		})
		if !strings.Contains(show, "Type=notify\n") {
			t.Errorf("unit type: %s", show)
		}
		if r := sh("systemctl stop sshkick-watch.service"); r.Code != 0 {
			t.Errorf("systemctl stop sshkick-watch: exit %d\n%s", r.Code, r.Stderr)
		}
	})

	t.Run("completion", func(t *testing.T) {
		u := h.AddUser(t)
		c := h.SSH(t, u, true, "")
		c.Send("exec sleep 3600\n")
		var tty string
		waitFor(t, "the SSH login's tty in sshkick list", func() (bool, string) {
			out := sh("sshkick list --user " + u.Name).Stdout
			if m := regexp.MustCompile(`\bpts/[0-9]+\b`).FindString(out); m != "" && strings.Contains(out, "sleep 3600") {
				tty = m
				return true, out
			}
			return false, out
		})
		// What Tab after `sshkick kick ` offers: bash-completion's loader
		// finds the package's file, whose function fills COMPREPLY.
		script := `. /usr/share/bash-completion/bash_completion
_completion_loader sshkick
spec=$(complete -p sshkick) || exit 3
fn=${spec##*-F }; fn=${fn%% *}
COMP_LINE="sshkick kick "; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9; COMP_KEY=9
COMP_WORDS=(sshkick kick ""); COMP_CWORD=2
"$fn" sshkick "" kick
printf '%s\n' "${COMPREPLY[@]}"`
		var got string
		waitFor(t, "bash completion of `sshkick kick <TAB>` to offer "+tty, func() (bool, string) {
			r := h.Exec(t, "env", pathEnv, "LANG=C.UTF-8", "bash", "--norc", "--noprofile", "-c", script)
			got = r.Stdout
			for _, l := range strings.Split(got, "\n") {
				if f := strings.Fields(l); len(f) > 0 && f[0] == tty {
					return true, got
				}
			}
			return false, "exit " + strconv.Itoa(r.Code) + "\n" + got + r.Stderr
		})
		t.Logf("sshkick kick <TAB> offers:\n%s", got)
		c.Close()
	})

	// Upgrade with an edited policy and the daemon enabled and running:
	// the admin's file stays, the daemon is restarted on the new binary.
	edited := mustSh("printf '\\n# edited by the install test\\n' >>/etc/sshkick/policy.toml; cat /etc/sshkick/policy.toml")
	mustSh("systemctl enable --now sshkick-watch.service")
	pid1 := watchPID(t, sh)
	mustSh("dpkg -i " + inside + "/" + filepath.Base(deb(version2)) + " </dev/null")
	if pid2 := watchPID(t, sh); pid2 == pid1 {
		t.Errorf("the upgrade did not restart the running daemon (MainPID %s before and after)", pid1)
	}
	if got := status(); got != "install ok installed "+version2 {
		t.Errorf("dpkg-query after the upgrade: %q", got)
	}
	if out := mustSh("sshkick --version"); !strings.Contains(out, version2) {
		t.Errorf("sshkick --version after the upgrade: %q, want %s", out, version2)
	}
	if got := mustSh("cat /etc/sshkick/policy.toml"); got != edited {
		t.Errorf("the upgrade changed the edited policy:\n%s", got)
	}
	if r := sh("ls /etc/sshkick/policy.toml.dpkg-* 2>/dev/null"); r.Stdout != "" {
		t.Errorf("the upgrade left %s", r.Stdout)
	}

	// Remove: the program goes and the daemon stops; the configuration
	// (and the enablement, for a reinstall) stays.
	mustSh("dpkg -r sshkick </dev/null")
	if out := sh("systemctl show -p ActiveState sshkick-watch.service").Stdout; out != "ActiveState=inactive\n" {
		t.Errorf("after dpkg -r the daemon is still %q", out)
	}
	if r := sh("pgrep -x sshkick"); r.Stdout != "" {
		t.Errorf("after dpkg -r sshkick processes remain: %s", r.Stdout)
	}
	if got := status(); !strings.HasPrefix(got, "deinstall ok config-files") {
		t.Errorf("dpkg-query after dpkg -r: %q", got)
	}
	for _, p := range []string{"/usr/bin/sshkick", "/usr/share/man/man8/sshkick.8.gz", "/usr/lib/systemd/system/sshkick-watch.service",
		"/usr/share/bash-completion/completions/sshkick"} {
		if r := sh("test -e " + p); r.Code == 0 {
			t.Errorf("dpkg -r left %s", p)
		}
	}
	if got := sh("cat /etc/sshkick/policy.toml").Stdout; got != edited {
		t.Errorf("dpkg -r did not keep the edited policy: %q", got)
	}
	if r := sh("test -f /etc/logrotate.d/sshkick"); r.Code != 0 {
		t.Errorf("dpkg -r removed /etc/logrotate.d/sshkick (a conffile)")
	}

	// Purge: the configuration goes too.
	mustSh("dpkg -P sshkick </dev/null")
	if got := status(); got != "" && !strings.HasPrefix(got, "unknown ok not-installed") {
		t.Errorf("dpkg-query after dpkg -P: %q", got)
	}
	for _, p := range []string{"/etc/sshkick/policy.toml", "/etc/logrotate.d/sshkick", "/etc/sshkick",
		"/etc/systemd/system/multi-user.target.wants/sshkick-watch.service"} {
		if r := sh("test -e " + p + " || test -L " + p); r.Code == 0 {
			t.Errorf("dpkg -P left %s", p)
		}
	}
}

// watchPID waits for sshkick-watch to be active and returns its MainPID.
func watchPID(t *testing.T, sh func(string) nspawntest.Result) string {
	t.Helper()
	var pid string
	waitFor(t, "sshkick-watch to be active", func() (bool, string) {
		out := sh("systemctl show -p ActiveState,SubState,MainPID sshkick-watch.service").Stdout
		m := regexp.MustCompile(`MainPID=([1-9][0-9]*)`).FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "ActiveState=active\n") || !strings.Contains(out, "SubState=running\n") {
			return false, out
		}
		pid = m[1]
		return true, out
	})
	return pid
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp %s %s: %v %s", from, to, err, out)
	}
}

// waitFor polls cond for up to three minutes (the machine is shared and
// slow at times) and fails the test with what it last saw.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	sshdtest.WaitFor(t, 3*time.Minute, what, cond)
}
