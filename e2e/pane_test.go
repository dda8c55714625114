package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

// TestTmuxPanes: tmux panes write utmp records (through libutempter) whose
// PID is the tmux server. list shows them as panes; kicking one pane ends
// that pane's processes and never the server, which serves the others.
func TestTmuxPanes(t *testing.T) {
	if _, err := os.Stat("/usr/bin/tmux"); err != nil {
		if os.Getenv("SSHKICK_E2E") == "require" {
			t.Fatal("tmux is missing: make check installs it")
		}
		t.Skip("tmux is missing")
	}
	s := sshdtest.Start(t) // for its private /run with a utmp file, and the user
	alice := s.AddUser(t)
	// The socket's directory must be reachable for alice: the server's
	// directory is; t.TempDir()'s parent is not.
	dir := filepath.Join(s.Dir, "tmux")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chown(dir, alice.UID, alice.GID)
	sock := filepath.Join(dir, "tmux.sock")
	// tmux runs as alice in a mount namespace whose /run is the server's,
	// so its utempter helper writes to the test's utmp file.
	tmux := func(args ...string) error {
		cmd := exec.Command("/usr/bin/unshare", append([]string{"--mount", "--propagation", "private", "/bin/sh", "-c",
			`mount --bind "$1" /run && u=$2 g=$3 sock=$4 && shift 4 && exec /usr/bin/setpriv --reuid="$u" --regid="$g" --init-groups /usr/bin/tmux -S "$sock" "$@"`,
			"sh", filepath.Dir(s.Utmp), strconv.Itoa(alice.UID), strconv.Itoa(alice.GID), sock}, args...)...)
		cmd.Env = []string{"HOME=" + alice.Home, "TERM=xterm", "PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("tmux %v: %v %s", args, err, out)
		}
		return err
	}
	if err := tmux("new-session", "-d", "sleep 631"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tmux("kill-server") })
	if err := tmux("new-window", "-d", "sleep 632"); err != nil {
		t.Fatal(err)
	}
	var panes []jsonSession
	sshdtest.Poll(60*time.Second, func() bool {
		panes = nil
		for _, x := range ofUser(listJSON(t, "--utmp", s.Utmp), alice.Name) {
			if x.Kind == "pane" && !x.Stale && x.Command != "" {
				panes = append(panes, x)
			}
		}
		return len(panes) >= 2
	})
	if len(panes) != 2 || panes[0].PID != panes[1].PID {
		t.Fatalf("want two panes of one tmux server: %+v\nwho -u: %+v\nlist: %+v", panes, whoU(t, s.Utmp), listJSON(t, "--utmp", s.Utmp))
	}
	server := panes[0].PID
	for _, w := range whoU(t, s.Utmp) {
		if w.user == alice.Name && w.pid != strconv.Itoa(server) {
			t.Errorf("who -u PID %s, list PID %d", w.pid, server)
		}
	}
	var victim, other jsonSession = panes[0], panes[1]
	rep, r := kickJSON(t, s, filepath.Join(t.TempDir(), "audit.jsonl"), victim.TTY)
	if r.code != 0 || rep.Sessions[0].Result != "ended" {
		t.Fatalf("kick %s: exit %d %+v", victim.TTY, r.code, rep)
	}
	refusedServer := false
	for _, rf := range rep.Sessions[0].Refused {
		if rf.PID == server {
			refusedServer = true
		}
	}
	if !refusedServer || !alive(server) {
		t.Errorf("the tmux server was not spared: alive %v, %+v", alive(server), rep.Sessions[0])
	}
	for _, pid := range victim.PIDs {
		if pid != server && alive(pid) {
			t.Errorf("pane process %d survived", pid)
		}
	}
	for _, pid := range other.PIDs {
		if !alive(pid) {
			t.Errorf("the other pane's process %d died", pid)
		}
	}
}
