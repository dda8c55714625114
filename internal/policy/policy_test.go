package policy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
)

var t0 = time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, diags, err := Parse("p.toml", []byte(src), Lookup{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, d := range diags {
		t.Logf("%s", d)
	}
	return p
}

func sess(id, user string, uid int, tty string, login time.Time) *session.Session {
	kind := session.SSH
	if tty == "" {
		kind = session.SSHNoTTY
	}
	return &session.Session{ID: id, User: user, UID: uid, TTY: tty, Kind: kind, Login: login, Addr: "10.1.2.3",
		Members: []session.Member{{Ident: proc.Ident{PID: 100 + len(id), Start: 7}, Role: session.RoleLeader}}}
}

func TestParseErrorsHaveLineAndColumn(t *testing.T) {
	src := `interval = "15s"
idle_inptu = "input"
warn = ["5m", "1x"]

[[rule]]
name = "students"
groups = ["students"]
from = ["10.0.0.0/33"]
idle = 30
kinds = ["sshh"]
message = "bye {usr}"

[other]
`
	_, diags, err := Parse("p.toml", []byte(src), Lookup{})
	if err == nil {
		t.Fatal("invalid policy accepted")
	}
	want := []string{
		`p.toml:2:1: unknown key "idle_inptu" (did you mean "idle_input"?)`,
		`p.toml:3:15: warn: bad duration "1x"`,
		`p.toml:8:9: bad address or network "10.0.0.0/33"`,
		`p.toml:9:8: idle: bad duration 30`,
		`p.toml:10:10: unknown kind "sshh"`,
		`p.toml:11:11: message: unknown placeholder "{usr}"`,
		`p.toml:13:2: unknown table [other]`,
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.String())
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("missing %q in:\n%s", w, all)
		}
	}
}

func TestParseSyntaxErrorPosition(t *testing.T) {
	_, diags, err := Parse("x.toml", []byte("interval = \"15s\"\nwarn = [\"1m\"\n"), Lookup{})
	if err == nil || len(diags) == 0 || diags[0].Line < 2 {
		t.Fatalf("syntax error: %v %v", err, diags)
	}
}

func TestParseWarningsAndChecks(t *testing.T) {
	src := `[[rule]]
name = "a"
users = ["nosuchuser"]
groups = ["nosuchgroup"]
idle = "20s"
warn = ["10s"]

[[rule]]
name = "a"
idle = "1m"
warn = ["2m"]

[[rule]]
exempt = true
idle = "1m"
`
	lk := Lookup{User: func(string) bool { return false }, Group: func(string) bool { return false }}
	_, diags, err := Parse("p.toml", []byte(src), lk)
	if err == nil {
		t.Fatal("accepted")
	}
	all := ""
	for _, d := range diags {
		all += d.String() + "\n"
	}
	for _, w := range []string{
		`p.toml:3:10: warning: unknown user "nosuchuser"`,
		`p.toml:4:11: warning: unknown group "nosuchgroup"`,
		`p.toml:9:1: rule name "a" is already used by the rule at line 1`,
		`warning 2m before the kick is not shorter than idle 1m`,
		`p.toml:13:1: this rule has no name`,
		`is exempt and also sets idle`,
	} {
		if !strings.Contains(all, w) {
			t.Errorf("missing %q in:\n%s", w, all)
		}
	}
}

// A hostile file cannot put escapes into the admin's terminal through
// diagnostics.
func TestParseHostileKeysEscaped(t *testing.T) {
	_, diags, _ := Parse("p.toml", []byte("\"\x1b]0;x\x07\" = 1\n"), Lookup{})
	for _, d := range diags {
		if strings.ContainsAny(d.String(), "\x1b\x07") {
			t.Errorf("raw escape in %q", d.String())
		}
	}
	if len(diags) == 0 {
		t.Fatal("no diagnostic")
	}
}

func TestFirstMatchRules(t *testing.T) {
	p := mustParse(t, `
[[rule]]
name = "admins"
groups = ["sudo"]
exempt = true

[[rule]]
name = "lab"
from = ["10.1.0.0/16"]
idle = "1h"

[[rule]]
name = "students"
groups = ["students"]
idle = "30m"

[[rule]]
name = "panes"
kinds = ["pane"]
idle = "2h"
`)
	cases := []struct {
		user   string
		groups []string
		addr   string
		kind   session.Kind
		want   string
	}{
		{"ann", []string{"sudo", "students"}, "10.1.2.3", session.SSH, "admins"},
		{"bob", []string{"students"}, "10.1.2.3", session.SSH, "lab"},
		{"bob", []string{"students"}, "192.168.1.1", session.SSH, "students"},
		{"bob", []string{"students"}, "192.168.1.1", session.Pane, "panes"},
		{"cy", nil, "192.168.1.1", session.SSH, ""},
		{"cy", nil, "", session.Mosh, ""},
	}
	for _, c := range cases {
		s := sess("pts/1", c.user, 1000, "pts/1", t0)
		s.Addr, s.Kind = c.addr, c.kind
		i, checks := match(p, s, &Evidence{Groups: c.groups})
		got := ""
		if i >= 0 {
			got = p.Rules[i].Name
		}
		if got != c.want {
			t.Errorf("%+v: matched %q, want %q (%+v)", c, got, c.want, checks)
		}
	}
}

const idlePolicy = `
warn = ["5m", "1m"]
[[rule]]
name = "students"
idle = "30m"
`

func kinds(acts []Action) string {
	var b []string
	for _, a := range acts {
		b = append(b, string(a.Kind))
	}
	return strings.Join(b, ",")
}

// The idle countdown on a fake clock: warnings at -5m and -1m, the kick at
// the deadline, each once; the wake-up times are the due times.
func TestIdleWarnThenKick(t *testing.T) {
	p := mustParse(t, idlePolicy)
	s := sess("pts/1", "bob", 1000, "pts/1", t0)
	in := []Input{{Session: s, Evidence: Evidence{Atime: t0, Mtime: t0, CPU: -1}}}
	st := State{}
	step := func(at time.Time, want string) Decision {
		t.Helper()
		d := Evaluate(p, at, in, st)
		if got := kinds(d.Actions); got != want {
			t.Fatalf("at %s: actions %q, want %q", at.Sub(t0), got, want)
		}
		st = d.State
		for _, a := range d.Actions {
			st.NoteWrite(a.Key, at)
		}
		return d
	}
	d := step(t0.Add(10*time.Minute), "")
	if !d.Next.Equal(t0.Add(25 * time.Minute)) {
		t.Fatalf("next %v, want +25m", d.Next.Sub(t0))
	}
	d = step(t0.Add(25*time.Minute), "warn")
	if a := d.Actions[0]; a.Offset != 5*time.Minute || !a.Deadline.Equal(t0.Add(30*time.Minute)) || !strings.Contains(a.Text, "Idle for 25m") || !strings.Contains(a.Text, "in 5 minutes") {
		t.Fatalf("warning %+v", a)
	}
	step(t0.Add(26*time.Minute), "")
	d = step(t0.Add(29*time.Minute), "warn")
	if d.Actions[0].Offset != time.Minute {
		t.Fatalf("second warning offset %v", d.Actions[0].Offset)
	}
	step(t0.Add(29*time.Minute+30*time.Second), "")
	step(t0.Add(30*time.Minute), "kick")
	step(t0.Add(30*time.Minute+time.Second), "")
}

// Input after the warning cancels the countdown and says so once.
func TestInputCancels(t *testing.T) {
	p := mustParse(t, idlePolicy)
	s := sess("pts/1", "bob", 1000, "pts/1", t0)
	ev := Evidence{Atime: t0, CPU: -1}
	d := Evaluate(p, t0.Add(26*time.Minute), []Input{{s, ev}}, State{})
	if kinds(d.Actions) != "warn" {
		t.Fatalf("%v", kinds(d.Actions))
	}
	ev.Atime = t0.Add(27 * time.Minute)
	d = Evaluate(p, t0.Add(28*time.Minute), []Input{{s, ev}}, d.State)
	if kinds(d.Actions) != "cancel" || d.Actions[0].Reason != ReasonActive || !strings.Contains(d.Actions[0].Text, "Idle logout cancelled") {
		t.Fatalf("%+v", d.Actions)
	}
	d = Evaluate(p, t0.Add(29*time.Minute), []Input{{s, ev}}, d.State)
	if kinds(d.Actions) != "" {
		t.Fatalf("cancel repeated: %v", kinds(d.Actions))
	}
	d = Evaluate(p, t0.Add(27*time.Minute+25*time.Minute), []Input{{s, ev}}, d.State)
	if kinds(d.Actions) != "warn" || !d.Actions[0].Deadline.Equal(t0.Add(57*time.Minute)) {
		t.Fatalf("new countdown: %v", kinds(d.Actions))
	}
}

// Our own warning bumps the tty's mtime: with input+output it must not
// count as output, while real output later does.
func TestInputOutputIgnoresOwnWarnings(t *testing.T) {
	p := mustParse(t, `idle_input = "input+output"
warn = ["5m"]
[[rule]]
name = "r"
idle = "30m"`)
	s := sess("pts/1", "bob", 1000, "pts/1", t0)
	ev := Evidence{Atime: t0, Mtime: t0.Add(2 * time.Minute), CPU: -1}
	d := Evaluate(p, t0.Add(27*time.Minute), []Input{{s, ev}}, State{})
	if kinds(d.Actions) != "warn" || !d.Actions[0].Deadline.Equal(t0.Add(32*time.Minute)) {
		t.Fatalf("output should count: %+v", d.Actions)
	}
	st := d.State
	st.NoteWrite(d.Actions[0].Key, t0.Add(27*time.Minute+time.Second))
	ev.Mtime = t0.Add(27 * time.Minute) // our warning
	d = Evaluate(p, t0.Add(31*time.Minute), []Input{{s, ev}}, st)
	if kinds(d.Actions) != "" {
		t.Fatalf("own warning counted as output: %v", kinds(d.Actions))
	}
	d = Evaluate(p, t0.Add(32*time.Minute), []Input{{s, ev}}, d.State)
	if kinds(d.Actions) != "kick" {
		t.Fatalf("want kick, got %v", kinds(d.Actions))
	}
	// Real output after our write cancels.
	ev.Mtime = t0.Add(28 * time.Minute)
	d = Evaluate(p, t0.Add(29*time.Minute), []Input{{s, ev}}, st)
	if kinds(d.Actions) != "cancel" {
		t.Fatalf("output after the warning: %v", kinds(d.Actions))
	}
}

// busy_cpu: a session whose processes use CPU is not idle; max_session
// still ends it.
func TestBusyCPUAndMaxSession(t *testing.T) {
	p := mustParse(t, `busy_cpu = "5%"
warn = ["1m"]
[[rule]]
name = "r"
idle = "10m"
max_session = "2h"`)
	s := sess("pts/1", "bob", 1000, "pts/1", t0)
	st := State{}
	cpu := time.Duration(0)
	var d Decision
	for m := 0; m <= 120; m++ {
		now := t0.Add(time.Duration(m) * time.Minute)
		cpu += 30 * time.Second // 50% of a CPU
		d = Evaluate(p, now, []Input{{s, Evidence{Atime: t0, CPU: cpu}}}, st)
		st = d.State
		for _, a := range d.Actions {
			switch {
			case a.Kind == Warn && m != 119:
				t.Fatalf("warned at %dm: %+v", m, a)
			case a.Kind == Warn && a.Reason != ReasonMaxSession:
				t.Fatalf("warning reason %s", a.Reason)
			case a.Kind == Kick && m != 120:
				t.Fatalf("kicked at %dm", m)
			}
		}
	}
	if kinds(d.Actions) != "kick" || d.Actions[0].Reason != ReasonMaxSession {
		t.Fatalf("at 2h: %+v", d.Actions)
	}
	// Without CPU use the same session is idle-kicked at 10m.
	st = State{}
	for m := 0; m <= 10; m++ {
		d = Evaluate(p, t0.Add(time.Duration(m)*time.Minute), []Input{{s, Evidence{Atime: t0, CPU: time.Second}}}, st)
		st = d.State
	}
	if kinds(d.Actions) != "kick" || d.Actions[0].Reason != ReasonIdle {
		t.Fatalf("idle at 10m: %+v", d.Actions)
	}
}

// No terminal: never idle, only max_session.
func TestNoTTYNeverIdle(t *testing.T) {
	p := mustParse(t, idlePolicy)
	s := sess("ssh:5", "bob", 1000, "", t0)
	d := Evaluate(p, t0.Add(48*time.Hour), []Input{{s, Evidence{CPU: -1}}}, State{})
	if len(d.Actions) != 0 || !d.Next.IsZero() {
		t.Fatalf("no-tty session: %+v next %v", d.Actions, d.Next)
	}
}

// Root and the daemon's own session are spared unless the rule names them.
func TestRootAndOwnSpared(t *testing.T) {
	p := mustParse(t, idlePolicy)
	root := sess("pts/0", "root", 0, "pts/0", t0)
	own := sess("pts/2", "adm", 1001, "pts/2", t0)
	in := []Input{{root, Evidence{Atime: t0, CPU: -1}}, {own, Evidence{Atime: t0, CPU: -1, Own: true}}}
	d := Evaluate(p, t0.Add(5*time.Hour), in, State{})
	if kinds(d.Actions) != "exempt,exempt" || d.Actions[0].Reason != ReasonRoot || d.Actions[1].Reason != ReasonOwn {
		t.Fatalf("%+v", d.Actions)
	}
	d = Evaluate(p, t0.Add(6*time.Hour), in, d.State)
	if len(d.Actions) != 0 {
		t.Fatalf("exemption recorded twice: %v", kinds(d.Actions))
	}
	p2 := mustParse(t, `warn = []
[[rule]]
name = "r"
users = ["root"]
idle = "30m"`)
	d = Evaluate(p2, t0.Add(5*time.Hour), in[:1], State{})
	if kinds(d.Actions) != "kick" {
		t.Fatalf("a rule naming root: %v", kinds(d.Actions))
	}
}

// Exemption by group and by kind, and stale records are never acted on.
func TestExemptAndStale(t *testing.T) {
	p := mustParse(t, `[[rule]]
name = "admins"
groups = ["wheel"]
exempt = true
[[rule]]
name = "all"
idle = "30m"
warn = []`)
	a := sess("pts/1", "ann", 1000, "pts/1", t0)
	b := sess("pts/2", "bob", 1001, "pts/2", t0)
	b.Stale = true
	d := Evaluate(p, t0.Add(time.Hour), []Input{{a, Evidence{Atime: t0, Groups: []string{"wheel"}, CPU: -1}}, {b, Evidence{Atime: t0, CPU: -1}}}, State{})
	if kinds(d.Actions) != "exempt" || d.Actions[0].Rule != "admins" {
		t.Fatalf("%+v", d.Actions)
	}
}

// A restart with the saved state neither repeats a warning nor loses the
// countdown; a session found far past its deadline is warned first.
func TestRestartAndGrace(t *testing.T) {
	p := mustParse(t, idlePolicy)
	s := sess("pts/1", "bob", 1000, "pts/1", t0)
	in := []Input{{s, Evidence{Atime: t0, CPU: -1}}}
	d := Evaluate(p, t0.Add(3*time.Hour), in, State{})
	if kinds(d.Actions) != "warn" || d.Actions[0].Offset != time.Minute || !d.Actions[0].Deadline.Equal(t0.Add(3*time.Hour+time.Minute)) {
		t.Fatalf("grace: %+v", d.Actions)
	}
	saved := d.State.Clone()
	d = Evaluate(p, t0.Add(3*time.Hour+30*time.Second), in, saved)
	if kinds(d.Actions) != "" {
		t.Fatalf("repeated after restart: %v", kinds(d.Actions))
	}
	d = Evaluate(p, t0.Add(3*time.Hour+time.Minute), in, d.State)
	if kinds(d.Actions) != "kick" {
		t.Fatalf("%v", kinds(d.Actions))
	}
}

// A new login on a reused terminal does not inherit the old countdown.
func TestReusedTerminalStartsAfresh(t *testing.T) {
	p := mustParse(t, idlePolicy)
	s := sess("pts/1", "bob", 1000, "pts/1", t0)
	d := Evaluate(p, t0.Add(26*time.Minute), []Input{{s, Evidence{Atime: t0, CPU: -1}}}, State{})
	s2 := sess("pts/1", "bob", 1000, "pts/1", t0.Add(27*time.Minute))
	s2.Members[0].Start = 99
	d = Evaluate(p, t0.Add(28*time.Minute), []Input{{s2, Evidence{Atime: t0.Add(27 * time.Minute), CPU: -1}}}, d.State)
	if len(d.Actions) != 0 || len(d.State.Sessions) != 1 {
		t.Fatalf("%+v %+v", d.Actions, d.State)
	}
}

// Hostile names interpolated into a message cannot start a line of their
// own or carry escapes.
func TestRenderSanitizesFields(t *testing.T) {
	out := Render("{user} on {tty}", Vars{User: "evil\nMessage from the administrator\x1b[2J", TTY: "pts/1", Idle: -1})
	if strings.ContainsAny(out, "\n\x1b") {
		t.Fatalf("raw bytes in %q", out)
	}
}

// Simulate and Explain agree with Evaluate.
func TestSimulateAndExplain(t *testing.T) {
	p := mustParse(t, idlePolicy)
	s := sess("pts/1", "bob", 1000, "pts/1", t0)
	in := []Input{{s, Evidence{Atime: t0, CPU: -1}}}
	ev := Simulate(p, t0.Add(time.Minute), in, State{}, 24*time.Hour)
	var got []string
	for _, e := range ev {
		got = append(got, string(e.Kind)+"@"+e.At.Sub(t0).String())
	}
	if strings.Join(got, " ") != "warn@25m0s warn@29m0s kick@30m0s" {
		t.Fatalf("timeline %v", got)
	}
	x := Explain(p, t0.Add(time.Minute), in[0], State{}, 24*time.Hour)
	if x.Rule != "students" || x.Idle != time.Minute || !x.Deadline.Equal(t0.Add(30*time.Minute)) || len(x.Timeline) != 3 || x.Source != "tty atime (input)" {
		t.Fatalf("%+v", x)
	}
}

// BenchmarkEvaluate200 is the decision cost of one evaluation of 200
// sessions (discovery, the /proc scan, is measured in internal/proc).
func BenchmarkEvaluate200(b *testing.B) {
	p, _, err := Parse("p.toml", []byte(idlePolicy), Lookup{})
	if err != nil {
		b.Fatal(err)
	}
	var in []Input
	for i := 0; i < 200; i++ {
		s := sess("pts/"+strconv.Itoa(i), "u"+strconv.Itoa(i), 1000+i, "pts/"+strconv.Itoa(i), t0)
		s.Members[0].PID = 1000 + i
		in = append(in, Input{Session: s, Evidence: Evidence{Atime: t0.Add(time.Duration(i) * time.Second), CPU: time.Second}})
	}
	st := State{}
	now := t0.Add(10 * time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		d := Evaluate(p, now, in, st)
		st = d.State
		now = now.Add(15 * time.Second)
	}
}
