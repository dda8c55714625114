package cli

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/session"
)

// fakeCompletionSessions replaces discovery for one test with sessions,
// and records the options it was called with.
func fakeCompletionSessions(t *testing.T, sessions ...session.Session) *session.Options {
	t.Helper()
	var got session.Options
	old := completionDiscover
	completionDiscover = func(_ context.Context, o session.Options) (*session.Result, error) {
		got = o
		return &session.Result{Sessions: sessions}, nil
	}
	t.Cleanup(func() { completionDiscover = old })
	return &got
}

// complete runs cobra's hidden __complete command, as the shell scripts
// do, and returns the candidates (without descriptions) and the rest.
func complete(t *testing.T, args ...string) (words []string, lines []string) {
	t.Helper()
	code, out, errOut := run(append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %q: exit %d, stderr %q", args, code, errOut)
	}
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if strings.HasPrefix(l, ":") { // the directive line
			continue
		}
		lines = append(lines, l)
		w, _, _ := strings.Cut(l, "\t")
		words = append(words, w)
	}
	return words, lines
}

func TestCompleteTargets(t *testing.T) {
	got := fakeCompletionSessions(t,
		session.Session{ID: "pts/3", TTY: "pts/3", User: "alice", Host: "10.0.0.7", Kind: session.SSH},
		session.Session{ID: "ssh:4242", User: "alice", Kind: session.SSHNoTTY},
		session.Session{ID: "c2", TTY: "tty1", User: "bob", Kind: session.Console},
		session.Session{ID: "stale:pts/9:77", TTY: "pts/9", User: "carol", Stale: true},
	)
	for _, cmd := range []string{"kick", "msg"} {
		words, _ := complete(t, cmd, "")
		want := []string{"pts/3", "ssh:4242", "c2", "tty1", "alice", "bob"}
		if !slices.Equal(words, want) {
			t.Errorf("%s <TAB> = %q, want %q", cmd, words, want)
		}
	}
	// A prefix narrows; words already on the line are not offered again.
	if words, _ := complete(t, "kick", "pts"); !slices.Equal(words, []string{"pts/3"}) {
		t.Errorf("kick pts<TAB> = %q", words)
	}
	if words, _ := complete(t, "kick", "alice", "a"); len(words) != 0 {
		t.Errorf("kick alice a<TAB> = %q, want nothing", words)
	}
	// --utmp on the command line is where discovery reads.
	complete(t, "kick", "--utmp", "/tmp/other-utmp", "")
	if got.UtmpPath != "/tmp/other-utmp" {
		t.Errorf("discovery read %q, want the --utmp file", got.UtmpPath)
	}
}

// Attack: user names and hosts come from utmp, which a user can write
// through a multiplexer. A candidate is inserted into root's command line,
// and the protocol is one candidate per line: a name with a newline, a tab,
// a shell metacharacter or an escape must never become a candidate, and a
// description must not carry an escape sequence to the admin's terminal.
func TestCompleteHostileSessions(t *testing.T) {
	fakeCompletionSessions(t,
		session.Session{ID: "pts/1", TTY: "pts/1", User: "eve\nKILL", Host: "\x1b]0;pwned\a", Kind: session.Local},
		session.Session{ID: "pts/2", TTY: "pts/2", User: "x;rm -rf /", Kind: session.Local},
		session.Session{ID: "pts/4", TTY: "pts/4", User: "$(id)", Kind: session.Local},
		session.Session{ID: "pts/5", TTY: "pts/5", User: "-9", Kind: session.Local},
		session.Session{ID: "pts/6", TTY: "pts/6", User: "tab\tuser", Kind: session.Local},
		session.Session{ID: "pts/7", TTY: "pts/7", User: "mallory", Host: "h\u202eost\x1b[2J", Kind: session.Local},
	)
	words, lines := complete(t, "kick", "")
	want := []string{"pts/1", "pts/2", "pts/4", "pts/5", "pts/6", "pts/7", "mallory"}
	if !slices.Equal(words, want) {
		t.Errorf("kick <TAB> = %q, want %q", words, want)
	}
	for _, l := range lines {
		_, desc, _ := strings.Cut(l, "\t")
		if strings.ContainsAny(desc, "\x1b\a\t\n\u202e") {
			t.Errorf("description %q carries a control or bidi character", desc)
		}
	}
}

func TestCompleteFlagValues(t *testing.T) {
	fakeCompletionSessions(t,
		session.Session{ID: "pts/3", TTY: "pts/3", User: "alice", Kind: session.SSH},
		session.Session{ID: "pts/4", TTY: "pts/4", User: "bob", Kind: session.SSH},
	)
	kinds := make([]string, len(session.Kinds))
	for i, k := range session.Kinds {
		kinds[i] = string(k)
	}
	for _, args := range [][]string{{"list", "--kind", ""}, {"kick", "--kind", ""}, {"msg", "--kind", ""}, {"--kind", ""}} {
		if words, _ := complete(t, args...); !slices.Equal(words, kinds) {
			t.Errorf("%q<TAB> = %q, want %q", args, words, kinds)
		}
	}
	words, _ := complete(t, "kick", "--signal", "")
	for _, s := range []string{"HUP", "TERM", "KILL"} {
		if !slices.Contains(words, s) {
			t.Errorf("kick --signal <TAB> = %q, missing %s", words, s)
		}
	}
	for _, s := range words {
		if _, ok := kick.ParseSignal(s); !ok {
			t.Errorf("kick --signal offers %q, which kick refuses", s)
		}
	}
	if words, _ := complete(t, "list", "--user", ""); !slices.Equal(words, []string{"alice", "bob"}) {
		t.Errorf("list --user <TAB> = %q", words)
	}
}

// The completion command is visible: `sshkick --help` lists it, and it
// writes the three scripts the package installs.
func TestCompletionCommand(t *testing.T) {
	_, out, _ := run("--help")
	if !strings.Contains(out, "completion") {
		t.Errorf("--help does not list the completion command:\n%s", out)
	}
	for shell, want := range map[string]string{"bash": "__start_sshkick", "zsh": "#compdef sshkick", "fish": "complete -c sshkick"} {
		code, out, errOut := run("completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stderr %q, script lacks %q", shell, code, errOut, want)
		}
	}
}

func TestVersionStamped(t *testing.T) {
	old := [3]string{Version, Commit, Date}
	t.Cleanup(func() { Version, Commit, Date = old[0], old[1], old[2] })
	Version, Commit, Date = "1.2.3", "0123456789ab", "2026-12-02T18:00:00Z"
	_, out, _ := run("--version")
	if want := "sshkick version 1.2.3 (commit 0123456789ab, built 2026-12-02T18:00:00Z)\n"; out != want {
		t.Errorf("--version = %q, want %q", out, want)
	}
	Version, Commit, Date = "", "", ""
	if _, out, _ := run("--version"); !strings.HasPrefix(out, "sshkick version devel") && !strings.HasPrefix(out, "sshkick version v") {
		t.Errorf("unstamped --version = %q", out)
	}
}
