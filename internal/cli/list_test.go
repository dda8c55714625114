package cli

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/engine/enginetest"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
)

var listNow = time.Date(2025, 6, 15, 17, 30, 0, 0, time.Local)

func secs(n int64) *int64 { return &n }

func cannedSessions() []session.Session {
	return []session.Session{
		{
			ID: "pts/0", User: "alice", UID: 1000, TTY: "pts/0", Host: "192.0.2.10", Addr: "192.0.2.10", Port: 50022, HostSource: "socket", HostVerified: true,
			Login: time.Date(2025, 6, 15, 9, 5, 0, 0, time.Local), IdleSeconds: secs(42), Idle: 42 * time.Second,
			PID: 1234, Kind: session.SSH, Sources: []string{"logind", "utmp", "proc"}, Command: "vim notes.txt",
			Processes: 3, PIDs: []int{1234, 1240, 1241}, LogindID: "c7",
		},
		{
			ID: "ssh:2345", User: "bob", UID: 1001, Host: "2001:db8::7", Addr: "2001:db8::7", Port: 40000, HostSource: "socket", HostVerified: true,
			Login: time.Date(2025, 6, 14, 8, 0, 0, 0, time.Local),
			PID:   2345, Kind: session.SSHNoTTY, Sources: []string{"proc"}, Command: "/usr/lib/openssh/sftp-server",
			Processes: 2, PIDs: []int{2345, 2346},
		},
		{
			ID: "stale:pts/7:700", User: "carol", UID: -1, TTY: "pts/7", Host: "old.example.org",
			Login: time.Date(2024, 1, 2, 3, 4, 5, 0, time.Local),
			PID:   700, Kind: session.Local, Stale: true, StaleReason: "process 700 is gone",
			Sources: []string{"utmp"}, PIDs: []int{},
		},
		{
			ID: "tty1", User: "root", UID: 0, TTY: "tty1", IdleSeconds: secs(3*86400 + 4*3600), Idle: 76 * time.Hour,
			PID: 900, Kind: session.Console, Sources: []string{"proc"}, Command: "-bash",
			Processes: 1, PIDs: []int{901},
		},
	}
}

// runListWith runs list on a fake host; edit sets the options.
func runListWith(t *testing.T, h *enginetest.Host, edit func(*listOptions)) (code int, stdout, stderr string) {
	t.Helper()
	ios, out, errw := testIO()
	var got *engine.SystemOptions
	o := &listOptions{IO: ios, Now: func() time.Time { return listNow },
		Engine: func(so engine.SystemOptions) (*engine.Engine, error) { got = &so; return h.Engine(), nil }}
	if edit != nil {
		edit(o)
	}
	code = exitCode(ios, runList(context.Background(), o))
	if got != nil {
		lastSystem = *got
	}
	return code, out.String(), errw.String()
}

// lastSystem is what the last command asked the engine to read.
var lastSystem engine.SystemOptions

func TestListTable(t *testing.T) {
	f := enginetest.NewHost(cannedSessions()...)
	f.Discoverer.Notes = []string{"3 process(es) could not be read; run with sudo to see them"}
	code, stdout, stderr := runListWith(t, f, func(o *listOptions) { o.Select.utmp = "/nonexistent/utmp" })
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if f.Discoverer.Calls != 1 || lastSystem.UtmpPath != "/nonexistent/utmp" {
		t.Errorf("Discover called %d times with %+v", f.Discoverer.Calls, lastSystem)
	}
	if stderr != "sshkick: note: 3 process(es) could not be read; run with sudo to see them\n" {
		t.Errorf("stderr %q", stderr)
	}
	want := "" +
		"ID               USER   TTY    FROM              LOGIN       IDLE   PID   KIND       WHAT\n" +
		"pts/0            alice  pts/0  192.0.2.10        09:05       42s    1234  ssh        vim notes.txt\n" +
		"ssh:2345         bob    -      2001:db8::7       Jun14       -      2345  ssh-notty  /usr/lib/openssh/sftp-server\n" +
		"stale:pts/7:700  carol  pts/7  old.example.org?  2024-01-02  -      700   local      (stale: process 700 is gone)\n" +
		"tty1             root   tty1   -                 -           3d04h  900   console    -bash\n"
	if stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", stdout, want)
	}
	// Every column starts where its header does.
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	head := lines[0]
	var starts []int
	for i := range head {
		if head[i] != ' ' && (i == 0 || head[i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	if len(starts) != 9 {
		t.Fatalf("header %q has %d columns, want 9", head, len(starts))
	}
	for _, line := range lines[1:] {
		for _, s := range starts[1:] {
			if s >= len(line) || line[s] == ' ' || line[s-1] != ' ' || line[s-2] != ' ' {
				t.Errorf("line %q: no column at %d", line, s)
			}
		}
	}

	_, noHead, _ := runListWith(t, f, func(o *listOptions) { o.NoHead = true })
	if noHead != strings.SplitN(want, "\n", 2)[1] {
		t.Errorf("--no-headers:\n%s", noHead)
	}
}

func TestListFilter(t *testing.T) {
	f := enginetest.NewHost(cannedSessions()...)
	tests := []struct {
		name string
		sel  selectFlags
		ids  []string
	}{
		{"all", selectFlags{}, []string{"pts/0", "ssh:2345", "stale:pts/7:700", "tty1"}},
		{"user", selectFlags{users: []string{"alice"}}, []string{"pts/0"}},
		{"uid", selectFlags{users: []string{"1001"}}, []string{"ssh:2345"}},
		{"idle", selectFlags{idle: "1h"}, []string{"tty1"}},
		{"idle in days", selectFlags{idle: "3d"}, []string{"tty1"}},
		{"from network", selectFlags{from: []string{"2001:db8::/32"}}, []string{"ssh:2345"}},
		{"kind", selectFlags{kinds: []string{"ssh", "console"}}, []string{"pts/0", "tty1"}},
		{"nothing", selectFlags{users: []string{"root"}, kinds: []string{"ssh"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runListWith(t, f, func(o *listOptions) { o.Select = tc.sel; o.JSON = true })
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got []map[string]any
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("JSON: %v\n%s", err, stdout)
			}
			var ids []string
			for _, s := range got {
				ids = append(ids, s["id"].(string))
			}
			if !slices.Equal(ids, tc.ids) {
				t.Errorf("ids %q, want %q", ids, tc.ids)
			}
			if tc.ids == nil && strings.TrimSpace(stdout) != "[]" {
				t.Errorf("no match: %q, want []", stdout)
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	f := enginetest.NewHost()
	f.Discoverer.Err = errors.New("/proc: permission denied")
	code, stdout, stderr := runListWith(t, f, nil)
	if code != ExitError || stdout != "" || stderr != "sshkick: /proc: permission denied\n" {
		t.Errorf("discovery error: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	// A bad selector is a usage error found before discovery.
	f = enginetest.NewHost(cannedSessions()...)
	code, stdout, _ = runListWith(t, f, func(o *listOptions) { o.Select.idle = "30" })
	if code != ExitUsage || stdout != "" || f.Discoverer.Calls != 0 {
		t.Errorf("bad --idle: code %d stdout %q, discover called %d times", code, stdout, f.Discoverer.Calls)
	}
	// An unknown user is a usage error, like pkill -u; nothing is listed.
	code, stdout, stderr = runListWith(t, f, func(o *listOptions) { o.Select.users = []string{"nosuchuser"} })
	if code != ExitUsage || stdout != "" || !strings.Contains(stderr, `no such user "nosuchuser"`) {
		t.Errorf("unknown user: code %d stdout %q stderr %q", code, stdout, stderr)
	}
	// A user the password database lost who is still logged in is found.
	f = enginetest.NewHost(cannedSessions()...)
	delete(f.Users, "carol")
	if code, stdout, _ := runListWith(t, f, func(o *listOptions) { o.Select.users = []string{"carol"} }); code != ExitOK || !strings.Contains(stdout, "carol") {
		t.Errorf("deleted user: code %d stdout %q", code, stdout)
	}
}

func TestListJSON(t *testing.T) {
	f := enginetest.NewHost(cannedSessions()...)
	code, stdout, stderr := runListWith(t, f, func(o *listOptions) { o.JSON = true })
	if code != ExitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout)
	}
	if len(raw) != 4 {
		t.Fatalf("%d sessions, want 4", len(raw))
	}
	// Every key is always there.
	base := []string{"id", "user", "uid", "tty", "host", "addr", "port", "login", "idle_seconds", "idle_source", "pid",
		"kind", "stale", "stale_reason", "sources", "command", "processes", "pids", "logind_id", "host_source", "host_verified"}
	wantKeys := [][]string{base, base, base, base}
	for i, s := range raw {
		var keys []string
		for k := range s {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := slices.Clone(wantKeys[i])
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("session %d keys %q, want %q", i, keys, want)
		}
	}
	// Values.
	var got []map[string]any
	json.Unmarshal([]byte(stdout), &got)
	a := got[0]
	if a["id"] != "pts/0" || a["user"] != "alice" || a["uid"] != 1000.0 || a["tty"] != "pts/0" || a["host"] != "192.0.2.10" ||
		a["addr"] != "192.0.2.10" || a["port"] != 50022.0 || a["idle_seconds"] != 42.0 || a["pid"] != 1234.0 || a["kind"] != "ssh" ||
		a["stale"] != false || a["command"] != "vim notes.txt" || a["processes"] != 3.0 || a["logind_id"] != "c7" {
		t.Errorf("session 0 = %v", a)
	}
	if !slices.Equal(toStrings(a["sources"]), []string{"logind", "utmp", "proc"}) {
		t.Errorf("sources %v", a["sources"])
	}
	if pids, _ := json.Marshal(a["pids"]); string(pids) != "[1234,1240,1241]" {
		t.Errorf("pids %s", pids)
	}
	// login: RFC 3339, the same instant; or null.
	for i, s := range cannedSessions() {
		l := string(raw[i]["login"])
		if s.Login.IsZero() {
			if l != "null" {
				t.Errorf("session %d: login %s, want null", i, l)
			}
			continue
		}
		var str string
		if err := json.Unmarshal(raw[i]["login"], &str); err != nil {
			t.Fatalf("session %d: login %s: %v", i, l, err)
		}
		p, err := time.Parse(time.RFC3339, str)
		if err != nil || !p.Equal(s.Login) {
			t.Errorf("session %d: login %q (%v), want %v", i, str, err, s.Login)
		}
	}
	// idle_seconds: null without a terminal (and for a stale record).
	if string(raw[1]["idle_seconds"]) != "null" || string(raw[2]["idle_seconds"]) != "null" {
		t.Errorf("idle_seconds %s %s, want null", raw[1]["idle_seconds"], raw[2]["idle_seconds"])
	}
	if string(raw[3]["idle_seconds"]) != "273600" {
		t.Errorf("idle_seconds %s, want 273600", raw[3]["idle_seconds"])
	}
	if got[2]["stale"] != true || got[2]["stale_reason"] != "process 700 is gone" || got[2]["uid"] != -1.0 {
		t.Errorf("stale session %v", got[2])
	}
	// pids is [] and never null.
	if string(raw[2]["pids"]) != "[]" {
		t.Errorf("pids of a stale record %s, want []", raw[2]["pids"])
	}

	// nil Sources and PIDs are [] too.
	f = enginetest.NewHost(session.Session{ID: "x", User: "u", Kind: session.Local})
	_, stdout, _ = runListWith(t, f, func(o *listOptions) { o.JSON = true })
	if !strings.Contains(stdout, `"sources": []`) || !strings.Contains(stdout, `"pids": []`) || !strings.Contains(stdout, `"login": null`) {
		t.Errorf("empty session JSON %s", stdout)
	}
	// No sessions: an empty array, not null.
	f = enginetest.NewHost()
	_, stdout, _ = runListWith(t, f, func(o *listOptions) { o.JSON = true })
	if stdout != "[]\n" {
		t.Errorf("no sessions: %q, want []", stdout)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// hostileSessions carry terminal escapes, bidi overrides, C1 controls and
// invalid UTF-8 in every string a user or client controls.
func hostileSessions() []session.Session {
	return []session.Session{
		{
			ID: "pts/3", User: "ev\x1b[31mil\a", UID: 1000, TTY: "pts/3",
			Host:    "h\u202eost\xc2\x9b2J.example\n",
			Command: "rm\xff\xfe -rf \x1b]0;pwned\a \u202egnp.exe\r\t\\",
			PID:     42, Kind: session.SSH, Sources: []string{"utmp"}, PIDs: []int{42},
			Login: listNow.Add(-time.Hour), IdleSeconds: secs(5),
		},
		{
			ID: "stale:pts/4:43", User: "mallory\x9b", UID: -1, TTY: "pts/4", Host: "x\x1bP+q\x1b\\",
			PID: 43, Kind: session.Local, Stale: true, StaleReason: "no user mallory\x9b in the password database\x1b[2J",
			Sources: []string{"utmp"},
		},
	}
}

func checkClean(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s is not valid UTF-8: %q", what, s)
	}
	for _, r := range s {
		if r == '\n' {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			t.Errorf("%s contains %U: %q", what, r, s)
			return
		}
	}
}

func TestListHostile(t *testing.T) {
	f := enginetest.NewHost(hostileSessions()...)
	code, table, _ := runListWith(t, f, nil)
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	checkClean(t, "table", table)
	if n := strings.Count(table, "\n"); n != 3 {
		t.Errorf("table has %d lines, want 3 (header and two rows):\n%s", n, table)
	}
	for _, want := range []string{`ev\x1b[31mil\x07`, `h\u202eost\u009b2J.example\n`, `rm\xff\xfe -rf \x1b]0;pwned\x07 \u202egnp.exe\r\t\\`,
		`(stale: no user mallory\x9b in the password database\x1b[2J)`, `x\x1bP+q\x1b\\`} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %s:\n%s", want, table)
		}
	}

	code, out, _ := runListWith(t, f, func(o *listOptions) { o.JSON = true })
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !json.Valid([]byte(out)) {
		t.Fatalf("invalid JSON: %s", out)
	}
	checkClean(t, "JSON", out)
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	for i, s := range hostileSessions() {
		for key, orig := range map[string]string{"user": s.User, "host": s.Host, "command": s.Command, "stale_reason": s.StaleReason} {
			if orig == "" {
				continue
			}
			v, _ := got[i][key].(string)
			if v != sanitize.Field(orig) {
				t.Errorf("session %d %s = %q, want %q", i, key, v, sanitize.Field(orig))
			}
			checkClean(t, key, v)
			if strings.Contains(v, "\n") {
				t.Errorf("session %d %s has a raw newline", i, key)
			}
		}
	}
}

func TestTableWrite(t *testing.T) {
	tests := []struct {
		name string
		rows [][]string
		want string
	}{
		{"empty", nil, ""},
		{"one cell", [][]string{{"a"}}, "a\n"},
		{"last column unpadded", [][]string{{"ID", "WHAT"}, {"pts/10", "x"}}, "ID      WHAT\npts/10  x\n"},
		{"width in runes", [][]string{{"é", "1"}, {"ab", "2"}}, "é   1\nab  2\n"},
		{"empty cells, no trailing blanks", [][]string{{"", "a", ""}, {"b", "", "c"}}, "   a\nb     c\n"},
		{"ragged rows", [][]string{{"a", "b", "c"}, {"dddd"}}, "a     b  c\ndddd\n"},
	}
	for _, tc := range tests {
		var buf strings.Builder
		tb := &table{}
		for _, r := range tc.rows {
			tb.add(r...)
		}
		if err := tb.write(&buf); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, buf.String(), tc.want)
		}
	}
}
