package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

// The attacks of issue 8 (items 2 and 8) made by a real user in a real
// SSH login; the join's fixture tests (internal/session/attack_test.go)
// hold the same cases on generated /proc trees.

// TestListSetsidChainIsOneLogin: the login runs a chain of processes, each
// of which called setsid() and then started the next. Every one of them
// once became a "session" of its own holding all its descendants (2,000
// made list take 1.8 s and kick refuse most of them); they are the
// login's processes, in one session, and a kick of the user names one.
func TestListSetsidChainIsOneLogin(t *testing.T) {
	s := sshdtest.Start(t)
	u := s.AddUser(t)
	const n = 300
	// setsid(1) in a background job of a non-interactive shell (not a
	// group leader) calls setsid() itself, then runs the next link; each
	// link then becomes sleep.
	s.Login(t, u, false, fmt.Sprintf(`cat > "$HOME/chain.sh" <<'EOF'
if [ "$1" -gt 0 ]; then setsid sh "$0" $(($1 - 1)) & fi
exec sleep 3600
EOF
exec sh "$HOME/chain.sh" %d`, n))
	sshdtest.WaitFor(t, 2*time.Minute, "the chain to be up", func() (bool, string) {
		c := u.CountComm("sleep")
		return c >= n+1, strconv.Itoa(c) + " sleeps"
	})
	got := ofUser(listJSON(t, "--utmp", s.Utmp), u.Name)
	if len(got) != 1 || got[0].Processes < n+1 || got[0].Kind != "ssh-notty" {
		t.Fatalf("the chain's login: %d session(s) %+v, want one of at least %d processes", len(got), brief(got), n+1)
	}
	audit := t.TempDir() + "/audit.jsonl"
	rep, r := kickJSON(t, s, audit, u.Name, "--dry-run")
	if r.code != 0 || len(rep.Sessions) != 1 || rep.Sessions[0].Result != "dry-run" {
		t.Fatalf("kick --dry-run: exit %d, %d session(s)\n%s", r.code, len(rep.Sessions), r.stderr)
	}
	rep, r = kickJSON(t, s, audit, u.Name, "--yes")
	if r.code != 0 || len(rep.Sessions) != 1 {
		t.Fatalf("kick: exit %d, %d session(s)\n%s", r.code, len(rep.Sessions), r.stderr)
	}
	sshdtest.WaitFor(t, 2*time.Minute, "the chain to end", func() (bool, string) {
		c := u.CountComm("sleep")
		return c == 0, strconv.Itoa(c) + " sleeps left"
	})
}

// TestListForgedSSHDTitles: the user runs their own program named sshd
// with the titles of logins that are not theirs — root with Cyrillic
// letters, another user's uid, another user's name — and a made-up
// SSH_CONNECTION. None is a session; they are processes of the user's
// own login, and no --user or --from selects anything by them.
func TestListForgedSSHDTitles(t *testing.T) {
	s := sshdtest.Start(t)
	u, other := s.AddUser(t), s.AddUser(t)
	titles := []string{
		"sshd: r\u043e\u043et@pts/0",
		"sshd: " + strconv.Itoa(other.UID) + "@notty",
		"sshd: " + other.Name + "@notty",
		"sshd: " + u.Name + " [priv]",
	}
	var script strings.Builder
	script.WriteString(`mkdir -p "$HOME/bin" && cp /bin/cat "$HOME/bin/sshd" && cd "$HOME/bin"` + "\n")
	script.WriteString(`export SSH_CONNECTION='203.0.113.66 4444 10.9.9.9 22'` + "\n")
	// cat with no arguments reads its standard input: a FIFO opened for
	// reading and writing, which never ends. argv is the title alone.
	script.WriteString(`mkfifo "$HOME/wait"` + "\n")
	for _, title := range titles {
		fmt.Fprintf(&script, "(exec -a '%s' ./sshd 0<>\"$HOME/wait\") &\n", title)
	}
	script.WriteString("exec sleep 3600\n")
	s.Login(t, u, false, script.String())
	sshdtest.WaitFor(t, 2*time.Minute, "the forged sshds to run", func() (bool, string) {
		c := u.CountComm("sshd")
		return c >= 1+len(titles), strconv.Itoa(c) + " processes named sshd"
	})
	all := listJSON(t, "--utmp", s.Utmp)
	for _, x := range all {
		switch {
		case x.Addr == "203.0.113.66", x.Host == "203.0.113.66",
			x.User == "r\u043e\u043et", x.User == other.Name, x.UID == other.UID:
			t.Errorf("a forged title made a session: %+v", x)
		}
	}
	mine := ofUser(all, u.Name)
	if len(mine) != 1 || mine[0].Processes < 1+len(titles) || mine[0].Addr != "127.0.0.1" {
		t.Errorf("the user's own login: %+v, want one from 127.0.0.1 holding the %d fakes", brief(mine), len(titles))
	}
	for _, sel := range [][]string{
		{"--user", strconv.Itoa(other.UID)},
		{"--user", other.Name},
		{"--from", "203.0.113.0/24"},
		{"--from-any", "--from", "203.0.113.0/24"},
	} {
		if got := listJSON(t, append([]string{"--utmp", s.Utmp}, sel...)...); len(got) != 0 {
			t.Errorf("list %v selects %+v", sel, brief(got))
		}
	}
}

func brief(ss []jsonSession) []string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("%s/%s/%s/%d procs", s.ID, s.User, s.Addr, s.Processes))
	}
	return out
}
