package session

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sshkick/sshkick/internal/logind"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/utmp"
)

func TestParseSSHDTitle(t *testing.T) {
	tests := []struct {
		title string
		want  sshdTitle
		ok    bool
	}{
		// OpenSSH 9.2, as observed.
		{"sshd: skt-exp1 [priv]", sshdTitle{user: "skt-exp1", priv: true}, true},
		{"sshd: skt-exp1@pts/0", sshdTitle{user: "skt-exp1", ttys: []string{"pts/0"}}, true},
		{"sshd: skt-exp1@notty", sshdTitle{user: "skt-exp1", notty: true}, true},
		{"sshd: skt-exp1", sshdTitle{user: "skt-exp1"}, true}, // ssh -N
		{"sshd: root@pts/0", sshdTitle{user: "root", ttys: []string{"pts/0"}}, true},
		{"sshd: skt-exp1 [priv]  ", sshdTitle{user: "skt-exp1", priv: true}, true},
		// OpenSSH 9.8 and later.
		{"sshd-session: bob [priv]", sshdTitle{user: "bob", priv: true}, true},
		{"sshd-session: bob@pts/3", sshdTitle{user: "bob", ttys: []string{"pts/3"}}, true},
		{"sshd-session: bob@notty", sshdTitle{user: "bob", notty: true}, true},
		// Multiplexed connections.
		{"sshd: alice@pts/0,pts/1", sshdTitle{user: "alice", ttys: []string{"pts/0", "pts/1"}}, true},
		{"sshd: alice@pts/0,notty", sshdTitle{user: "alice", ttys: []string{"pts/0"}, notty: true}, true},
		{"sshd: alice@notty,pts/7,pts/1000", sshdTitle{user: "alice", ttys: []string{"pts/7", "pts/1000"}, notty: true}, true},
		{"sshd: alice@tty1", sshdTitle{user: "alice", ttys: []string{"tty1"}}, true},
		{"sshd: first.last@pts/0", sshdTitle{user: "first.last", ttys: []string{"pts/0"}}, true},

		// Not sessions: the listener and connections still authenticating.
		{"sshd: /usr/sbin/sshd -D -e -f /tmp/exp/sshd_config [listener] 0 of 10-100 startups", sshdTitle{}, false},
		{"sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", sshdTitle{}, false},
		{"sshd: /usr/sbin/sshd", sshdTitle{}, false},
		{"sshd: unknown [preauth]", sshdTitle{}, false},
		{"sshd: alice [net]", sshdTitle{}, false},
		{"sshd: alice [accepted]", sshdTitle{}, false},
		{"sshd: [accepted]", sshdTitle{}, false},
		{"sshd: [net]", sshdTitle{}, false},
		{"sshd-session: root [net]", sshdTitle{}, false},
		{"sshd-auth: root [net]", sshdTitle{}, false},

		// Garbage.
		{"", sshdTitle{}, false},
		{"sshd", sshdTitle{}, false},
		{"sshd:", sshdTitle{}, false},
		{"sshd: ", sshdTitle{}, false},
		{"sshd:  [priv]", sshdTitle{}, false},
		{"sshd:alice@pts/0", sshdTitle{}, false},
		{"-bash", sshdTitle{}, false},
		{"/usr/sbin/sshd -D", sshdTitle{}, false},
		{"sshd: @pts/0", sshdTitle{}, false},
		{"sshd: alice@", sshdTitle{}, false},
		{"sshd: alice@pts/0,", sshdTitle{}, false},
		{"sshd: alice@,pts/0", sshdTitle{}, false},
		{"sshd: alice@pts/0 ", sshdTitle{user: "alice", ttys: []string{"pts/0"}}, true}, // trailing padding
		{"sshd: alice@pts/0 extra", sshdTitle{}, false},
		{"sshd: al ice@pts/0", sshdTitle{}, false},
		{"sshd: alice@../etc/shadow", sshdTitle{}, false},
		{"sshd: alice@/dev/pts/0", sshdTitle{}, false},
		{"sshd: alice@pts/01", sshdTitle{}, false},
		{"sshd: alice@console", sshdTitle{}, false},
		{"sshd: alice@ttyS0", sshdTitle{}, false},
		{"sshd: a/b", sshdTitle{}, false},
		{"sshd: a@b [priv]", sshdTitle{}, false},
		{"sshd: a b [priv]", sshdTitle{}, false},
		{"sshd: [priv]", sshdTitle{}, false},
		{"sshd: alice [priv] [priv]", sshdTitle{}, false},
		{"SSHD: alice@pts/0", sshdTitle{}, false},
		{" sshd: alice@pts/0", sshdTitle{}, false},
	}
	for _, tt := range tests {
		got, ok := parseSSHDTitle(tt.title)
		if ok != tt.ok || !cmp.Equal(got, tt.want, cmp.AllowUnexported(sshdTitle{})) {
			t.Errorf("parseSSHDTitle(%q) = %+v, %v; want %+v, %v", tt.title, got, ok, tt.want, tt.ok)
		}
	}
}

// The fixture trees under testdata/ share the btime of the machine they were
// modelled on; start times are in clock ticks after it.
const btime = 1795725690

func at(ticks int64) time.Time {
	return time.Unix(btime, 0).Add(time.Duration(ticks) * 10 * time.Millisecond)
}

var now = at(200000)

// fixture is everything a Join test feeds in besides the process tree.
type fixture struct {
	tree   string // testdata/<tree>/proc
	users  map[int]string
	utmp   []utmp.Record
	logind []logind.Session
	peers  map[int]netip.AddrPort
	atimes map[string]time.Time
}

func (f fixture) input(t *testing.T) Input {
	t.Helper()
	snap, err := proc.Scan(filepath.Join("testdata", f.tree, "proc"))
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		Now:    now,
		Proc:   snap,
		Utmp:   f.utmp,
		Logind: f.logind,
		Peer: func(pid int) (netip.AddrPort, bool) {
			a, ok := f.peers[pid]
			return a, ok
		},
		TTYAtime: func(tty string) (time.Time, bool) {
			a, ok := f.atimes[tty]
			return a, ok
		},
		UserName: f.userName,
		UserID:   f.userID,
	}
}

func (f fixture) userName(uid int) string {
	if n, ok := f.users[uid]; ok {
		return n
	}
	return strconv.Itoa(uid)
}

func (f fixture) userID(name string) (int, bool) {
	for id, n := range f.users {
		if n == name {
			return id, true
		}
	}
	return -1, false
}

func (f fixture) join(t *testing.T) []Session {
	t.Helper()
	return Join(f.input(t))
}

// view is what the tests compare of a Session. StaleReason in a want is a
// substring of the reason.
type view struct {
	ID, User        string
	UID             int
	TTY, Host, Addr string
	Port, PID       int
	Kind            Kind
	Stale           bool
	StaleReason     string
	Sources         []string
	Command         string
	Processes       int
	PIDs            []int
	LogindID        string
}

func viewOf(s Session) view {
	return view{
		ID: s.ID, User: s.User, UID: s.UID, TTY: s.TTY, Host: s.Host, Addr: s.Addr, Port: s.Port,
		PID: s.PID, Kind: s.Kind, Stale: s.Stale, StaleReason: s.StaleReason, Sources: s.Sources,
		Command: s.Command, Processes: s.Processes, PIDs: s.PIDs, LogindID: s.LogindID,
	}
}

// checkSessions compares got with want, both taken in ID order.
func checkSessions(t *testing.T, got []Session, want []view) {
	t.Helper()
	views := make([]view, len(got))
	for i, s := range got {
		views[i] = viewOf(s)
		if s.Processes != len(s.Members) || len(s.PIDs) != len(s.Members) {
			t.Errorf("%s: Processes %d, PIDs %v, %d members", s.ID, s.Processes, s.PIDs, len(s.Members))
		}
		if s.Stale && len(s.Members) != 0 {
			t.Errorf("%s: stale with members %v", s.ID, s.Members)
		}
	}
	byID := func(a, b view) int { return strings.Compare(a.ID, b.ID) }
	slices.SortStableFunc(views, byID)
	want = slices.Clone(want)
	slices.SortStableFunc(want, byID)
	for i := range views {
		if i < len(want) && want[i].StaleReason != "" && strings.Contains(views[i].StaleReason, want[i].StaleReason) {
			views[i].StaleReason = want[i].StaleReason
		}
	}
	if diff := cmp.Diff(want, views); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
}

func find(t *testing.T, ss []Session, id string) *Session {
	t.Helper()
	for i := range ss {
		if ss[i].ID == id {
			return &ss[i]
		}
	}
	t.Fatalf("no session %q", id)
	return nil
}

func roles(s *Session) map[int]string {
	out := map[int]string{}
	for _, m := range s.Members {
		out[m.PID] = string(m.Role)
	}
	return out
}

// --- OpenSSH 9.2: testdata/ssh92 ------------------------------------------

var users92 = map[int]string{0: "root", 102: "sshd", 105: "postgres", 1001: "skt-exp1", 1002: "carol"}

var peers92 = map[int]netip.AddrPort{
	6608: netip.MustParseAddrPort("192.0.2.10:51234"),
	6611: netip.MustParseAddrPort("192.0.2.11:40001"),
	// ssh -N: only the user's sshd is asked successfully.
	6620: netip.MustParseAddrPort("192.0.2.12:40002"),
	// A connection still authenticating has a peer too.
	6700: netip.MustParseAddrPort("203.0.113.66:33333"),
}

// record92 is what sshd's monitor 6608 wrote for pts/0 (UseDNS yes).
var record92 = utmp.Record{
	Type: utmp.UserProcess, PID: 6608, Line: "pts/0", ID: "ts/0", User: "skt-exp1",
	Host: "ws1.example.org", Session: 6608, Time: at(34953),
	Addr: netip.MustParseAddr("192.0.2.10"),
}

func ssh92(recs ...utmp.Record) fixture {
	return fixture{
		tree: "ssh92", users: users92, utmp: recs, peers: peers92,
		atimes: map[string]time.Time{"pts/0": now.Add(-300 * time.Second)},
	}
}

// The three connections of testdata/ssh92 as proc alone finds them.
var (
	pts0FromProc = view{
		ID: "pts/0", User: "skt-exp1", UID: 1001, TTY: "pts/0", Host: "192.0.2.10",
		Addr: "192.0.2.10", Port: 51234, PID: 6608, Kind: SSH, Sources: []string{"proc"},
		Command: "-bash", Processes: 4, PIDs: []int{6608, 6619, 6622, 6650},
	}
	notty92 = view{
		ID: "ssh:6624", User: "skt-exp1", UID: 1001, Host: "192.0.2.11", Addr: "192.0.2.11",
		Port: 40001, PID: 6611, Kind: SSHNoTTY, Sources: []string{"proc"}, Command: "sleep 61",
		Processes: 3, PIDs: []int{6611, 6618, 6624},
	}
	forward92 = view{
		ID: "ssh:6609", User: "skt-exp1", UID: 1001, Host: "192.0.2.12", Addr: "192.0.2.12",
		Port: 40002, PID: 6609, Kind: SSHNoTTY, Sources: []string{"proc"}, Command: "",
		Processes: 2, PIDs: []int{6609, 6620},
	}
)

// pts0WithUtmp is pts/0 once record92 joined it.
func pts0WithUtmp() view {
	v := pts0FromProc
	v.Host, v.Sources = "ws1.example.org", []string{"utmp", "proc"}
	return v
}

// Case 1: an SSH login with a terminal and its utmp record.
func TestJoinSSHWithUtmp(t *testing.T) {
	got := ssh92(record92).join(t)
	checkSessions(t, got, []view{pts0WithUtmp(), notty92, forward92})

	s := find(t, got, "pts/0")
	if !s.Login.Equal(record92.Time) {
		t.Errorf("Login = %v, want the record's %v", s.Login, record92.Time)
	}
	if s.IdleSeconds == nil || *s.IdleSeconds != 300 || s.Idle != 300*time.Second {
		t.Errorf("idle = %v, %v; want 300 s", s.IdleSeconds, s.Idle)
	}
	if s.TTYDev != 34816 {
		t.Errorf("TTYDev = %d, want 34816", s.TTYDev)
	}
	if diff := cmp.Diff(map[int]string{6608: "monitor", 6619: "sshd", 6622: "leader", 6650: "member"}, roles(s)); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
	if !slices.Equal(s.SIDs, []int{6622}) {
		t.Errorf("SIDs = %v, want [6622]", s.SIDs)
	}
	for _, m := range s.Members {
		if m.Ident != (proc.Ident{PID: m.PID, Start: startOf(t, "ssh92", m.PID)}) {
			t.Errorf("member %d: identity %+v", m.PID, m.Ident)
		}
	}
	for _, id := range []string{"ssh:6624", "ssh:6609"} {
		if s := find(t, got, id); s.IdleSeconds != nil {
			t.Errorf("%s: a session without a terminal has idle %d", id, *s.IdleSeconds)
		}
	}
	// Sessions are listed in login order.
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID)
	}
	if want := []string{"ssh:6609", "ssh:6624", "pts/0"}; !slices.Equal(ids, want) {
		t.Errorf("order = %v, want %v", ids, want)
	}
}

func startOf(t *testing.T, tree string, pid int) uint64 {
	t.Helper()
	p, err := proc.Read(filepath.Join("testdata", tree, "proc"), pid)
	if err != nil {
		t.Fatal(err)
	}
	return p.Start
}

// Case 2: no utmp at all (Debian 13): /proc alone finds the login.
func TestJoinSSHWithoutUtmp(t *testing.T) {
	got := ssh92().join(t)
	checkSessions(t, got, []view{pts0FromProc, notty92, forward92})
	if s := find(t, got, "pts/0"); !s.Login.Equal(at(34911)) {
		t.Errorf("Login = %v, want the monitor's start %v", s.Login, at(34911))
	}
}

// Case 3: ssh host cmd and ssh -N.
func TestJoinSSHNoTTY(t *testing.T) {
	got := ssh92(record92).join(t)
	s := find(t, got, "ssh:6624")
	if diff := cmp.Diff(map[int]string{6611: "monitor", 6618: "sshd", 6624: "leader"}, roles(s)); diff != "" {
		t.Errorf("ssh host cmd: roles (-want +got):\n%s", diff)
	}
	if s.TTY != "" || s.TTYDev != 0 {
		t.Errorf("ssh host cmd: TTY %q, %d", s.TTY, s.TTYDev)
	}
	s = find(t, got, "ssh:6609")
	if diff := cmp.Diff(map[int]string{6609: "monitor", 6620: "sshd"}, roles(s)); diff != "" {
		t.Errorf("ssh -N: roles (-want +got):\n%s", diff)
	}
	if len(s.SIDs) != 0 {
		t.Errorf("ssh -N: SIDs = %v, want none", s.SIDs)
	}
}

// A connection still authenticating already has a monitor titled
// "sshd: USER [priv]" (the user is whoever the client claims to be), with
// the unprivileged "sshd: USER [net]" child: it is no login.
func TestJoinPreauthIsNoSession(t *testing.T) {
	for _, tree := range []string{"ssh92", "ssh98"} {
		f := ssh92()
		f.tree = tree
		for _, s := range f.join(t) {
			if s.User == "root" || s.User == "admin" || s.PID == 6700 || s.PID == 3300 || s.PID == 3400 {
				t.Errorf("%s: a connection still authenticating is listed: %+v", tree, viewOf(s))
			}
		}
	}
}

// Case 4: OpenSSH 9.8 and later name the per-connection process sshd-session.
func TestJoinSSHSession98(t *testing.T) {
	pts3 := view{
		ID: "pts/3", User: "bob", UID: 1002, TTY: "pts/3", Host: "203.0.113.5", Addr: "203.0.113.5",
		Port: 61000, PID: 3100, Kind: SSH, Sources: []string{"proc"}, Command: "top -d 5",
		Processes: 4, PIDs: []int{3100, 3105, 3106, 3120},
	}
	sftp := view{
		ID: "ssh:3206", User: "bob", UID: 1002, Host: "203.0.113.5", Addr: "203.0.113.5",
		Port: 61001, PID: 3200, Kind: SSHNoTTY, Sources: []string{"proc"},
		Command: "/usr/lib/openssh/sftp-server", Processes: 3, PIDs: []int{3200, 3205, 3206},
	}
	f := fixture{
		tree:  "ssh98",
		users: map[int]string{0: "root", 101: "sshd", 1002: "bob"},
		peers: map[int]netip.AddrPort{
			3100: netip.MustParseAddrPort("203.0.113.5:61000"),
			3200: netip.MustParseAddrPort("203.0.113.5:61001"),
		},
	}
	checkSessions(t, f.join(t), []view{pts3, sftp})

	f.utmp = []utmp.Record{{Type: utmp.UserProcess, PID: 3100, Line: "pts/3", ID: "ts/3", User: "bob",
		Host: "203.0.113.5", Time: at(50044), Addr: netip.MustParseAddr("203.0.113.5")}}
	pts3.Sources = []string{"utmp", "proc"}
	got := f.join(t)
	checkSessions(t, got, []view{pts3, sftp})
	if diff := cmp.Diff(map[int]string{3100: "monitor", 3105: "sshd", 3106: "leader", 3120: "member"}, roles(find(t, got, "pts/3"))); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
}

// Case 5: root before OpenSSH 9.8: no [priv] monitor, "sshd: root@pts/0"
// is the listener's child, and utmp's ut_pid is the shell.
func TestJoinRootBefore98(t *testing.T) {
	f := fixture{
		tree:  "root92",
		users: map[int]string{0: "root", 105: "postgres"},
		peers: map[int]netip.AddrPort{7000: netip.MustParseAddrPort("192.0.2.20:50000")},
	}
	want := view{
		ID: "pts/0", User: "root", UID: 0, TTY: "pts/0", Host: "192.0.2.20", Addr: "192.0.2.20",
		Port: 50000, PID: 7000, Kind: SSH, Sources: []string{"proc"}, Command: "-bash",
		Processes: 2, PIDs: []int{7000, 7003},
	}
	checkSessions(t, f.join(t), []view{want})

	f.utmp = []utmp.Record{{Type: utmp.UserProcess, PID: 7003, Line: "pts/0", ID: "ts/0", User: "root",
		Host: "192.0.2.20", Time: at(60010), Addr: netip.MustParseAddr("192.0.2.20")}}
	want.PID, want.Sources = 7003, []string{"utmp", "proc"}
	got := f.join(t)
	checkSessions(t, got, []view{want})
	if diff := cmp.Diff(map[int]string{7000: "sshd", 7003: "leader"}, roles(find(t, got, "pts/0"))); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}

	// Here the shell is the listener's grandchild: a forged record naming
	// the listener must still not pass for this login (kick would signal
	// the process a record names).
	forged := utmp.Record{Type: utmp.UserProcess, PID: 2145, Line: "pts/0", ID: "ts/0", User: "root",
		Host: "192.0.2.20", Time: at(60010), Addr: netip.MustParseAddr("192.0.2.20")}
	staleView := view{
		ID: "stale:pts/0:2145", User: "root", UID: 0, TTY: "pts/0", Host: "192.0.2.20", Addr: "192.0.2.20",
		PID: 2145, Kind: Local, Stale: true, StaleReason: "process 2145 is not a session of root on pts/0",
		Sources: []string{"utmp"}, PIDs: []int{},
	}
	for _, recs := range [][]utmp.Record{{forged, f.utmp[0]}, {f.utmp[0], forged}} {
		f.utmp = recs
		checkSessions(t, f.join(t), []view{want, staleView})
	}
	f.utmp = []utmp.Record{forged}
	want.PID, want.Sources = 7000, []string{"proc"}
	checkSessions(t, f.join(t), []view{want, staleView})
}

// Titles listing several terminals: one session per terminal.
func TestJoinMultiplexed(t *testing.T) {
	f := fixture{
		tree:  "mux",
		users: map[int]string{0: "root", 1003: "dave"},
		peers: map[int]netip.AddrPort{8000: netip.MustParseAddrPort("[2001:db8::7]:60000")},
		utmp: []utmp.Record{
			{Type: utmp.UserProcess, PID: 8000, Line: "pts/1", ID: "ts/1", User: "dave", Host: "2001:db8::7",
				Time: at(70044), Addr: netip.MustParseAddr("2001:db8::7")},
			{Type: utmp.UserProcess, PID: 8000, Line: "pts/2", ID: "ts/2", User: "dave", Host: "2001:db8::7",
				Time: at(70999), Addr: netip.MustParseAddr("2001:db8::7")},
		},
	}
	base := view{
		User: "dave", UID: 1003, Host: "2001:db8::7", Addr: "2001:db8::7", Port: 60000, PID: 8000,
		Kind: SSH, Sources: []string{"utmp", "proc"},
	}
	pts1, pts2 := base, base
	pts1.ID, pts1.TTY, pts1.Command, pts1.Processes, pts1.PIDs = "pts/1", "pts/1", "-bash", 3, []int{8000, 8005, 8006}
	pts2.ID, pts2.TTY, pts2.Command, pts2.Processes, pts2.PIDs = "pts/2", "pts/2", "less /var/log/syslog", 4, []int{8000, 8005, 8010, 8011}
	checkSessions(t, f.join(t), []view{pts1, pts2})
}

// Case 6: utmp records that no live session backs are listed, stale, and
// leave the live session on the same terminal as it was.
func TestJoinStaleRecords(t *testing.T) {
	rec := func(pid int32, line, user string, ticks int64) utmp.Record {
		return utmp.Record{Type: utmp.UserProcess, PID: pid, Line: line, ID: "ts/0", User: user,
			Host: "ws1.example.org", Time: at(ticks), Addr: netip.MustParseAddr("192.0.2.10")}
	}
	// The user of a record is looked up only when its process lives.
	stale := func(line string, pid int, user string, uid int, reason string) view {
		return view{
			ID: "stale:" + line + ":" + strconv.Itoa(pid), User: user, UID: uid, TTY: line,
			Host: "ws1.example.org", Addr: "192.0.2.10", PID: pid, Kind: Local, Stale: true,
			StaleReason: reason, Sources: []string{"utmp"}, PIDs: []int{},
		}
	}
	tests := []struct {
		name string
		rec  utmp.Record
		want view
	}{
		{"pid gone", rec(9999, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 9999, "skt-exp1", -1, "process 9999 is gone")},
		{"pid is the listener", rec(2145, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 2145, "skt-exp1", 1001, "process 2145 is not a session of skt-exp1 on pts/0")},
		{"pid is another user's daemon", rec(800, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 800, "skt-exp1", 1001, "process 800 is not a session of skt-exp1 on pts/0")},
		{"pid is a root daemon", rec(700, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 700, "skt-exp1", 1001, "is not a session of skt-exp1")},
		{"pid is a kernel thread", rec(2, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 2, "skt-exp1", 1001, "is not a session of skt-exp1")},
		{"pid is another connection's monitor", rec(6611, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 6611, "skt-exp1", 1001, "is not a session of skt-exp1")},
		{"pid reused by an unrelated process", rec(6624, "pts/0", "skt-exp1", 20000),
			stale("pts/0", 6624, "skt-exp1", 1001, "started after the login record: the PID was reused")},
		{"pid reused inside the live session", rec(6650, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 6650, "skt-exp1", 1001, "the PID was reused")},
		{"line escapes /dev", rec(6608, "../etc/shadow", "skt-exp1", 34953),
			stale("../etc/shadow", 6608, "skt-exp1", 1001, "not a terminal sshkick accepts")},
		{"line with /dev/", rec(6608, "/dev/pts/0", "skt-exp1", 34953),
			stale("/dev/pts/0", 6608, "skt-exp1", 1001, "not a terminal")},
		{"line is the console", rec(6608, "console", "skt-exp1", 34953),
			stale("console", 6608, "skt-exp1", 1001, "not a terminal")},
		{"unknown user", rec(6608, "pts/0", "mallory", 34953),
			stale("pts/0", 6608, "mallory", -1, "no user mallory in the password database")},
		{"another user on the live terminal", rec(6622, "pts/0", "carol", 34953),
			stale("pts/0", 6622, "carol", 1002, "process 6622 is not a session of carol on pts/0")},
		{"pid 0", rec(0, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 0, "skt-exp1", -1, "PID 0 cannot be a login")},
		{"pid -1", rec(-1, "pts/0", "skt-exp1", 34953),
			stale("pts/0", -1, "skt-exp1", -1, "PID -1 cannot be a login")},
		{"pid 1", rec(1, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 1, "skt-exp1", 1001, "PID 1 cannot be a login")},
		// Case 11: zombies are not live processes.
		{"pid is a zombie sshd", rec(6630, "pts/0", "skt-exp1", 33000),
			stale("pts/0", 6630, "skt-exp1", -1, "process 6630 is gone")},
		{"pid is a zombie of the session", rec(6651, "pts/0", "skt-exp1", 34953),
			stale("pts/0", 6651, "skt-exp1", -1, "process 6651 is gone")},
		{"line of a terminal nobody uses", rec(6608, "pts/9", "skt-exp1", 34953),
			stale("pts/9", 6608, "skt-exp1", 1001, "process 6608 is not a session of skt-exp1 on pts/9")},
	}
	for _, tt := range tests {
		// utmp is slotted by terminal, so a forged record may come before
		// or after the genuine one.
		for _, order := range []string{"before", "after"} {
			t.Run(tt.name+"/"+order, func(t *testing.T) {
				recs := []utmp.Record{tt.rec, record92}
				if order == "after" {
					recs = []utmp.Record{record92, tt.rec}
				}
				checkSessions(t, ssh92(recs...).join(t), []view{pts0WithUtmp(), notty92, forward92, tt.want})
			})
		}
		t.Run(tt.name+"/alone", func(t *testing.T) {
			checkSessions(t, ssh92(tt.rec).join(t), []view{pts0FromProc, notty92, forward92, tt.want})
		})
	}
}

func TestJoinIgnoresOtherRecordTypes(t *testing.T) {
	recs := []utmp.Record{
		{Type: utmp.BootTime, Line: "~", ID: "~~", User: "reboot", Time: at(0)},
		{Type: utmp.LoginProcess, PID: 880, Line: "tty2", ID: "2", User: "LOGIN", Time: at(900)},
		{Type: utmp.DeadProcess, PID: 6000, Line: "pts/4", ID: "ts/4", Time: at(30000)},
		{Type: utmp.UserProcess, PID: 6608, Line: "pts/0", ID: "ts/0", User: "", Time: at(34953)},
	}
	checkSessions(t, ssh92(recs...).join(t), []view{pts0FromProc, notty92, forward92})
}

// Without a process table every record is stale, and says why.
func TestJoinWithoutProc(t *testing.T) {
	in := ssh92(record92).input(t)
	in.Proc = nil
	got := Join(in)
	want := view{
		ID: "stale:pts/0:6608", User: "skt-exp1", UID: -1, TTY: "pts/0", Host: "ws1.example.org",
		Addr: "192.0.2.10", PID: 6608, Kind: Local, Stale: true,
		StaleReason: "the process table could not be read", Sources: []string{"utmp"}, PIDs: []int{},
	}
	checkSessions(t, got, []view{want})
	if len(Join(Input{})) != 0 {
		t.Error("Join of nothing found sessions")
	}
}

// Case 7: a nohup job reparented to PID 1 still carries the shell's session.
func TestJoinNohupJob(t *testing.T) {
	s := find(t, ssh92(record92).join(t), "pts/0")
	if !s.hasMember(6650) {
		t.Fatalf("the nohup job 6650 is not a member: %v", s.PIDs)
	}
	for _, m := range s.Members {
		if m.PID == 6650 && (m.Role != RoleMember || m.SID != 6622 || m.UID != 1001) {
			t.Errorf("nohup job: %+v", m)
		}
	}
}

// Case 11: zombies count nowhere.
func TestJoinZombies(t *testing.T) {
	f := ssh92(record92)
	f.logind = []logind.Session{{ID: "11", UID: 1001, User: "skt-exp1", Class: "user", Type: "unspecified",
		Service: "sshd", Remote: true, Leader: 6630, Timestamp: at(34000)}}
	in := f.input(t)
	got := Join(in)
	for _, s := range got {
		for _, m := range s.Members {
			if p := in.Proc.Procs[m.PID]; p == nil || p.Zombie() {
				t.Errorf("%s: member %d is a zombie or missing", s.ID, m.PID)
			}
		}
		if slices.Contains(s.PIDs, 6651) || slices.Contains(s.PIDs, 6630) {
			t.Errorf("%s: PIDs %v hold a zombie", s.ID, s.PIDs)
		}
	}
	s := find(t, got, "11")
	if !slices.Equal(s.Sources, []string{"logind"}) || len(s.PIDs) != 0 {
		t.Errorf("logind session led by a zombie: sources %v, pids %v", s.Sources, s.PIDs)
	}
}

// Case 8: a tmux pane that wrote utmp through utempter: ut_pid is the
// server, the host "tmux(PID).%N".
func TestJoinTmuxPane(t *testing.T) {
	f := fixture{
		tree:  "tmux",
		users: map[int]string{0: "root", 105: "postgres", 1001: "alice"},
		peers: map[int]netip.AddrPort{6608: netip.MustParseAddrPort("192.0.2.10:51234")},
		utmp: []utmp.Record{
			{Type: utmp.UserProcess, PID: 6608, Line: "pts/0", ID: "ts/0", User: "alice", Host: "192.0.2.10",
				Time: at(34953), Addr: netip.MustParseAddr("192.0.2.10")},
			{Type: utmp.UserProcess, PID: 6702, Line: "pts/5", ID: "ts/5", User: "alice", Host: "tmux(6702).%0",
				Time: at(35003)},
		},
	}
	pts0 := view{
		ID: "pts/0", User: "alice", UID: 1001, TTY: "pts/0", Host: "192.0.2.10", Addr: "192.0.2.10",
		Port: 51234, PID: 6608, Kind: SSH, Sources: []string{"utmp", "proc"}, Command: "tmux",
		Processes: 4, PIDs: []int{6608, 6619, 6622, 6700},
	}
	pane := view{
		ID: "pts/5", User: "alice", UID: 1001, TTY: "pts/5", Host: "tmux(6702).%0", PID: 6702,
		Kind: Pane, Sources: []string{"utmp", "proc"}, Command: "vim todo", Processes: 3,
		PIDs: []int{6702, 6703, 6710},
	}
	got := f.join(t)
	checkSessions(t, got, []view{pts0, pane})
	if diff := cmp.Diff(map[int]string{6702: "server", 6703: "leader", 6710: "member"}, roles(find(t, got, "pts/5"))); diff != "" {
		t.Errorf("pane roles (-want +got):\n%s", diff)
	}
}

// Case 9: a console login: root login(1) → -bash on tty1.
func TestJoinConsole(t *testing.T) {
	f := fixture{
		tree:   "console",
		users:  map[int]string{0: "root", 1001: "alice"},
		atimes: map[string]time.Time{"tty1": now.Add(-3 * time.Hour)},
	}
	want := view{
		ID: "tty1", User: "alice", UID: 1001, TTY: "tty1", PID: 900, Kind: Console,
		Sources: []string{"proc"}, Command: "-bash", Processes: 2, PIDs: []int{900, 905},
	}
	got := f.join(t)
	checkSessions(t, got, []view{want})
	s := find(t, got, "tty1")
	if diff := cmp.Diff(map[int]string{900: "login", 905: "leader"}, roles(s)); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
	if s.IdleSeconds == nil || *s.IdleSeconds != 3*3600 {
		t.Errorf("idle = %v, want 3 h", s.IdleSeconds)
	}
	if !s.Login.Equal(at(950)) {
		t.Errorf("Login = %v, want login's start %v", s.Login, at(950))
	}

	f.utmp = []utmp.Record{
		{Type: utmp.LoginProcess, PID: 880, Line: "tty2", ID: "2", User: "LOGIN", Time: at(900)},
		{Type: utmp.UserProcess, PID: 900, Line: "tty1", ID: "1", User: "alice", Time: at(1990)},
	}
	want.Sources = []string{"utmp", "proc"}
	got = f.join(t)
	checkSessions(t, got, []view{want})
	if s := find(t, got, "tty1"); !s.Login.Equal(at(1990)) {
		t.Errorf("Login = %v, want the record's %v", s.Login, at(1990))
	}
}

// Case 10: logind.
func TestJoinLogind(t *testing.T) {
	ssh5 := logind.Session{ID: "5", UID: 1001, User: "skt-exp1", TTY: "pts/0", RemoteHost: "192.0.2.10",
		Service: "sshd", Type: "tty", Class: "user", State: "active", Scope: "session-5.scope",
		Remote: true, Leader: 6608, Timestamp: at(34911)}
	ssh6 := logind.Session{ID: "6", UID: 1001, User: "skt-exp1", RemoteHost: "192.0.2.11",
		Service: "sshd", Type: "unspecified", Class: "user", State: "active", Scope: "session-6.scope",
		Remote: true, Leader: 6611, Timestamp: at(34912)}
	manager := logind.Session{ID: "7", UID: 1001, User: "skt-exp1", Service: "systemd-user",
		Type: "unspecified", Class: "manager", State: "active", Leader: 4000, Timestamp: at(34930)}
	greeter := logind.Session{ID: "c1", UID: 119, User: "gdm", Seat: "seat0", Service: "gdm-launch-environment",
		Type: "wayland", Class: "greeter", State: "online", Leader: 4990, VTNr: 1, Timestamp: at(2000)}
	desktop := logind.Session{ID: "c2", UID: 1002, User: "carol", Seat: "seat0", Service: "gdm-password",
		Type: "wayland", Class: "user", State: "active", Leader: 5000, VTNr: 2, Timestamp: at(20000)}
	dead := logind.Session{ID: "9", UID: 1001, User: "skt-exp1", TTY: "pts/9", RemoteHost: "198.51.100.9",
		Service: "sshd", Type: "tty", Class: "user", State: "closing", Remote: true, Leader: 31337,
		Timestamp: at(30000)}
	all := []logind.Session{greeter, ssh5, manager, ssh6, desktop, dead}

	desktopView := view{
		ID: "c2", User: "carol", UID: 1002, PID: 5000, Kind: Local, Sources: []string{"logind", "proc"},
		Command: "/usr/libexec/gnome-session-binary --session=ubuntu", Processes: 3,
		PIDs: []int{5000, 5010, 5011}, LogindID: "c2",
	}
	deadView := view{
		// Closing: the login is gone and its terminal free (maybe
		// another login's already), so the session claims none.
		ID: "9", User: "skt-exp1", UID: 1001, TTY: "", Host: "198.51.100.9", PID: 31337, Kind: SSH,
		Sources: []string{"logind"}, PIDs: []int{}, LogindID: "9",
	}
	notty := notty92
	notty.ID, notty.LogindID, notty.Sources = "6", "6", []string{"logind", "proc"}

	t.Run("with utmp", func(t *testing.T) {
		f := ssh92(record92)
		f.logind = all
		pts0 := pts0WithUtmp()
		pts0.ID, pts0.LogindID, pts0.Sources = "5", "5", []string{"logind", "utmp", "proc"}
		got := f.join(t)
		checkSessions(t, got, []view{pts0, notty, forward92, desktopView, deadView})
		if diff := cmp.Diff(map[int]string{5000: "login", 5010: "leader", 5011: "member"}, roles(find(t, got, "c2"))); diff != "" {
			t.Errorf("c2 roles (-want +got):\n%s", diff)
		}
	})
	t.Run("without utmp", func(t *testing.T) {
		f := ssh92()
		f.logind = all
		pts0 := pts0FromProc
		pts0.ID, pts0.LogindID, pts0.Sources = "5", "5", []string{"logind", "proc"}
		checkSessions(t, f.join(t), []view{pts0, notty, forward92, desktopView, deadView})
	})
	t.Run("matched by terminal", func(t *testing.T) {
		f := ssh92(record92)
		byTTY := ssh5
		byTTY.Leader = 0
		f.logind = []logind.Session{byTTY}
		pts0 := pts0WithUtmp()
		pts0.ID, pts0.LogindID, pts0.Sources = "5", "5", []string{"logind", "utmp", "proc"}
		checkSessions(t, f.join(t), []view{pts0, notty92, forward92})
	})
	t.Run("classes that are no login", func(t *testing.T) {
		for _, class := range []string{"greeter", "lock-screen", "background", "background-light", "manager", "manager-early", "none"} {
			f := ssh92(record92)
			l := desktop
			l.Class = class
			m := ssh5
			m.Class = class
			f.logind = []logind.Session{l, m}
			checkSessions(t, f.join(t), []view{pts0WithUtmp(), notty92, forward92})
		}
	})
}

// Sessions whose terminal is shared (a stale record aside) are told apart
// by PID in their ids.
func TestJoinIDs(t *testing.T) {
	got := ssh92(record92).join(t)
	seen := map[string]bool{}
	for _, s := range got {
		if seen[s.ID] {
			t.Errorf("id %q listed twice", s.ID)
		}
		seen[s.ID] = true
		if !s.HasSource(SourceProc) && !s.Stale && s.LogindID == "" {
			t.Errorf("%s: neither stale nor seen by proc or logind", s.ID)
		}
	}
}

// Discover always fills the look-up functions; Join must not need them.
func TestJoinWithoutLookups(t *testing.T) {
	in := ssh92(record92).input(t)
	in.Peer, in.TTYAtime, in.UserName, in.UserID = nil, nil, nil, nil
	in.Logind = []logind.Session{{ID: "c2", UID: 1002, User: "carol", Class: "user", Leader: 5000}}
	got := Join(in)
	// The record joins the live session: that needs no look-up.
	s := find(t, got, "pts/0")
	if s.Host != "ws1.example.org" || s.Addr != "192.0.2.10" || s.Port != 0 || s.IdleSeconds != nil ||
		s.UID != 1001 || !slices.Equal(s.Sources, []string{"utmp", "proc"}) {
		t.Errorf("pts/0 without look-ups: %+v", viewOf(*s))
	}
	// A record on its own cannot be checked without the password database.
	lone := record92
	lone.Line = "pts/9"
	in.Utmp = []utmp.Record{lone}
	got = Join(in)
	if s := find(t, got, "stale:pts/9:6608"); !strings.Contains(s.StaleReason, "no user skt-exp1") {
		t.Errorf("record without a user database: %q", s.StaleReason)
	}
	if s := find(t, got, "c2"); s.User != "carol" || s.Processes != 3 {
		t.Errorf("c2: %+v", viewOf(*s))
	}
}

// TestJoinForgedSSHDTitles: any user can call a process "sshd: root@pts/0"
// or "sshd: mallory [priv]"; titles count only from processes of the right
// owner (root for the monitor, the named user for the user's sshd).
func TestJoinForgedSSHDTitles(t *testing.T) {
	f := fixture{tree: "forgedtitle", users: map[int]string{0: "root", 1001: "skt-exp1", 1005: "mallory"}}
	got := Join(f.input(t))
	for _, s := range got {
		if s.User == "root" || s.User == "mallory" || s.PID >= 7000 {
			t.Errorf("a forged sshd title made a session: %+v", s)
		}
	}
	want := Join(fixture{tree: "ssh92", users: f.users}.input(t))
	if len(got) != len(want) {
		t.Errorf("forged titles changed the real sessions: %d sessions, want %d", len(got), len(want))
	}
}

// TestAlive: a session is alive while its leader is the process discovery
// saw; a reused PID or a vanished leader is not.
func TestAlive(t *testing.T) {
	snap, err := proc.Read("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	me := Member{Ident: snap.Ident(), Role: RoleLeader}
	if s := (&Session{Members: []Member{me}}); !s.Alive("/proc") {
		t.Errorf("a session led by this test process is not alive")
	}
	reused := me
	reused.Start++
	if s := (&Session{Members: []Member{reused}}); s.Alive("/proc") {
		t.Errorf("a leader with another start time counts as alive")
	}
	// A live sshd does not keep a session whose leader is gone alive.
	gone := Member{Ident: proc.Ident{PID: 1 << 30}, Role: RoleLeader}
	if s := (&Session{Members: []Member{gone, {Ident: snap.Ident(), Role: RoleSSHD}}}); s.Alive("/proc") {
		t.Errorf("a session whose leader is gone counts as alive")
	}
	if s := (&Session{Members: []Member{{Ident: snap.Ident(), Role: RoleSSHD}}}); !s.Alive("/proc") {
		t.Errorf("a forward-only session with its sshd counts as gone")
	}
}

// TestIdleFromLogind: a graphical session's idle time is logind's idle
// hint; a session with a terminal uses the terminal's atime; a no-tty
// session logind does not call idle has no idle time.
func TestIdleFromLogind(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	in := Input{Now: now, Logind: []logind.Session{
		{ID: "3", UID: 1000, User: "gina", Type: "wayland", Class: "user", Seat: "seat0", IdleHint: true, IdleSince: now.Add(-10 * time.Minute), Timestamp: now.Add(-time.Hour)},
		{ID: "4", UID: 1001, User: "hal", Type: "x11", Class: "user", Seat: "seat0", Timestamp: now.Add(-time.Hour)},
		{ID: "5", UID: 1002, User: "ivy", Type: "unspecified", Class: "user", Service: "sshd", Remote: true, Timestamp: now.Add(-time.Hour)},
	}, UserName: func(int) string { return "" }, UserID: func(string) (int, bool) { return 0, false }}
	got := map[string]Session{}
	for _, s := range Join(in) {
		got[s.LogindID] = s
	}
	if s := got["3"]; s.IdleSource != IdleLogind || s.IdleSeconds == nil || s.Idle != 10*time.Minute {
		t.Errorf("idle graphical session: source %q idle %v", s.IdleSource, s.Idle)
	}
	if s := got["4"]; s.IdleSource != IdleLogind || s.IdleSeconds == nil || s.Idle != 0 {
		t.Errorf("active graphical session: source %q idle %v", s.IdleSource, s.Idle)
	}
	if s := got["5"]; s.IdleSource != "" || s.IdleSeconds != nil {
		t.Errorf("no-tty session: source %q idle %v", s.IdleSource, s.IdleSeconds)
	}
}
