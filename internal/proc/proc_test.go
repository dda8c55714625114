package proc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testdata/proc is a fake /proc (see testdata/README.md). Its btime:
const fixtureBoot = 1795725690

const fixtureRoot = "testdata/proc"

func scanFixture(t *testing.T) *Snapshot {
	t.Helper()
	s, err := Scan(fixtureRoot)
	if err != nil {
		t.Fatalf("Scan(%s): %v", fixtureRoot, err)
	}
	return s
}

func TestScan(t *testing.T) {
	s := scanFixture(t)
	if s.Root != fixtureRoot {
		t.Errorf("Root = %q, want %q", s.Root, fixtureRoot)
	}
	if want := time.Unix(fixtureBoot, 0); !s.BootTime.Equal(want) {
		t.Errorf("BootTime = %v, want %v", s.BootTime, want)
	}
	if s.Denied != 0 {
		t.Errorf("Denied = %d, want 0", s.Denied)
	}
	var pids []int
	for pid, p := range s.Procs {
		if p.PID != pid {
			t.Errorf("Procs[%d].PID = %d", pid, p.PID)
		}
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	// 200 (a directory without stat) and 201 (stat without status) vanished
	// while being read: skipped, not errors. net/ is not a process.
	want := []int{1, 2, 15, 100, 300, 480, 490, 500, 510, 511, 600, 700, 1040, 1050}
	if diff := cmp.Diff(want, pids); diff != "" {
		t.Errorf("PIDs (-want +got):\n%s", diff)
	}
}

func TestScanProcesses(t *testing.T) {
	s := scanFixture(t)
	tests := []struct {
		name string
		want Process
	}{
		{"name with spaces and parentheses", Process{
			PID: 100, PPID: 1, PGRP: 100, SID: 100, TPGID: -1, State: 'S', Comm: "(a) b) R 1 1 1",
			Start: 5000, Flags: 4194560, UTime: 1, UID: 1001, EUID: 1001}},
		{"kernel thread", Process{
			PID: 15, PPID: 2, TPGID: -1, State: 'I', Comm: "rcu_preempt", Start: 14,
			Flags: 2129984, UTime: 6, STime: 13, UID: 0, EUID: 0}},
		{"zombie", Process{
			PID: 300, PPID: 1, PGRP: 300, SID: 300, TPGID: -1, State: 'Z', Comm: "sshd",
			Start: 5200, Flags: 4194560, UTime: 1, UID: 1001, EUID: 1001}},
		{"login shell on pts/0", Process{
			PID: 500, PPID: 490, PGRP: 500, SID: 500, TTY: 34816, TPGID: 510, State: 'S',
			Comm: "bash", Start: 34956, Flags: 4194304, UTime: 1, UID: 1001, EUID: 1001}},
		{"setuid program", Process{
			PID: 700, PPID: 500, PGRP: 700, SID: 500, TTY: 34816, TPGID: 510, State: 'S',
			Comm: "passwd", Start: 41000, Flags: 4194560, UTime: 1, UID: 1001, EUID: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Procs[tt.want.PID]
			if got == nil {
				t.Fatalf("pid %d not scanned", tt.want.PID)
			}
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("Procs[%d] (-want +got):\n%s", tt.want.PID, diff)
			}
		})
	}
}

func TestProcessPredicates(t *testing.T) {
	s := scanFixture(t)
	tests := []struct {
		pid            int
		kthread, dead  bool
		tty, identName string
	}{
		{pid: 1},
		{pid: 2, kthread: true},  // kthreadd: PF_KTHREAD, pid 2
		{pid: 15, kthread: true}, // PF_KTHREAD, ppid 2
		{pid: 300, dead: true},
		{pid: 500, tty: "pts/0"},
		{pid: 1040, tty: "pts/1000"},
		{pid: 1050, tty: "tty1"},
	}
	for _, tt := range tests {
		p := s.Procs[tt.pid]
		if p == nil {
			t.Fatalf("pid %d not scanned", tt.pid)
		}
		if got := p.KernelThread(); got != tt.kthread {
			t.Errorf("pid %d: KernelThread() = %v, want %v", tt.pid, got, tt.kthread)
		}
		if got := p.Zombie(); got != tt.dead {
			t.Errorf("pid %d: Zombie() = %v, want %v", tt.pid, got, tt.dead)
		}
		if got := TTYName(p.TTY); got != tt.tty {
			t.Errorf("pid %d: TTYName(%d) = %q, want %q", tt.pid, p.TTY, got, tt.tty)
		}
		if got := p.Ident(); got != (Ident{PID: tt.pid, Start: p.Start}) {
			t.Errorf("pid %d: Ident() = %+v", tt.pid, got)
		}
	}
	for _, st := range []byte{'Z', 'X'} {
		if !(&Process{State: st}).Zombie() {
			t.Errorf("state %c: Zombie() = false", st)
		}
	}
	// A kernel thread is recognised by its parent too, whatever its flags say.
	if !(&Process{PID: 99, PPID: 2}).KernelThread() {
		t.Error("child of kthreadd: KernelThread() = false")
	}
}

// TestScanSkipsMalformed: one process whose stat cannot be parsed is
// counted and left out; the rest of the table is still read.
func TestScanSkipsMalformed(t *testing.T) {
	s, err := Scan("testdata/badstat")
	if err != nil {
		t.Fatalf("Scan(badstat): %v", err)
	}
	if s.Unreadable != 1 || len(s.Procs) != 0 {
		t.Errorf("Scan(badstat): %d processes, %d unreadable; want 0 and 1", len(s.Procs), s.Unreadable)
	}
	if _, err := Read("testdata/badstat", 1); err == nil || !strings.Contains(err.Error(), "malformed stat") {
		t.Errorf("Read of a malformed stat: %v", err)
	}
}

func TestScanErrors(t *testing.T) {
	tests := []struct {
		root, want string
	}{
		{"testdata/does-not-exist", "boot time"},
		{"testdata/nobtime", "no btime"},
	}
	for _, tt := range tests {
		t.Run(tt.root, func(t *testing.T) {
			s, err := Scan(tt.root)
			if err == nil {
				t.Fatalf("Scan(%s) = %d processes, want an error", tt.root, len(s.Procs))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Scan(%s) error %q does not mention %q", tt.root, err, tt.want)
			}
			if errors.Is(err, ErrGone) {
				t.Errorf("Scan(%s) error %q is ErrGone", tt.root, err)
			}
		})
	}
}

func TestRead(t *testing.T) {
	p, err := Read(fixtureRoot, 500)
	if err != nil {
		t.Fatalf("Read(500): %v", err)
	}
	if p.PID != 500 || p.UID != 1001 || p.Start != 34956 || p.Comm != "bash" {
		t.Errorf("Read(500) = %+v", *p)
	}
	for _, pid := range []int{200, 201, 99999, 0, -1} {
		p, err := Read(fixtureRoot, pid)
		if !errors.Is(err, ErrGone) {
			t.Errorf("Read(%d) = %v, %v; want ErrGone", pid, p, err)
		}
	}
	if _, err := Read("testdata/badstat", 1); err == nil || errors.Is(err, ErrGone) {
		t.Errorf("Read of a malformed stat: err = %v, want a parse error", err)
	}
}

func TestGone(t *testing.T) {
	for _, err := range []error{
		fs.ErrNotExist,
		&fs.PathError{Op: "open", Path: "/proc/1/stat", Err: syscall.ENOENT},
		&fs.PathError{Op: "read", Path: "/proc/1/stat", Err: syscall.ESRCH},
		&fs.PathError{Op: "read", Path: "/proc/1/status", Err: syscall.EINVAL},
	} {
		if !errors.Is(gone(1, err), ErrGone) {
			t.Errorf("gone(%v) is not ErrGone", err)
		}
	}
	if errors.Is(gone(1, fs.ErrPermission), ErrGone) {
		t.Error("gone(ErrPermission) is ErrGone")
	}
}

// realStat is /proc/PID/stat of a live `cat` on the machine the fixtures
// were modelled on.
const realStat = "8965 (cat) R 8945 8945 8019 0 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 39055 3133440 361 18446744073709551615 94519530614784 94519530634665 140734166629744 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94519530650672 94519530652288 94520097882112 140734166637251 140734166637271 140734166637271 140734166638571 0\n"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     *Process // nil: an error is expected
	}{
		{"real", realStat, &Process{PID: 8965, PPID: 8945, PGRP: 8945, SID: 8019, TPGID: -1,
			State: 'R', Comm: "cat", Start: 39055, Flags: 4194304}},
		{"kthreadd", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 14 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			&Process{PID: 2, TPGID: -1, State: 'S', Comm: "kthreadd", Start: 14, Flags: 2129984}},
		{"tty and times", "6621 (bash) S 6617 6621 6621 34817 6621 4194304 401 234 0 1 17 9 0 0 20 0 1 0 34956 4304896 783 18446744073709551615\n",
			&Process{PID: 6621, PPID: 6617, PGRP: 6621, SID: 6621, TTY: 34817, TPGID: 6621,
				State: 'S', Comm: "bash", Start: 34956, Flags: 4194304, UTime: 17, STime: 9}},
		{"name that looks like fields", "100 ((a) b) R 1 1 1) S 1 100 100 0 -1 4194560 0 0 0 0 1 0 0 0 20 0 1 0 5000 0",
			&Process{PID: 100, PPID: 1, PGRP: 100, SID: 100, TPGID: -1, State: 'S',
				Comm: "(a) b) R 1 1 1", Start: 5000, Flags: 4194560, UTime: 1}},
		{"name is a closing parenthesis", "7 ()) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0",
			&Process{PID: 7, PPID: 1, PGRP: 7, SID: 7, TPGID: -1, State: 'Z', Comm: ")", Start: 77}},
		{"empty name", "7 () S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0",
			&Process{PID: 7, PPID: 1, PGRP: 7, SID: 7, TPGID: -1, State: 'S', Start: 77}},
		{"exactly through starttime", "7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77",
			&Process{PID: 7, PPID: 1, PGRP: 7, SID: 7, TPGID: -1, State: 'S', Comm: "x", Start: 77}},
		{"double spaces", "7  (x)  S  1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0",
			&Process{PID: 7, PPID: 1, PGRP: 7, SID: 7, TPGID: -1, State: 'S', Comm: "x", Start: 77}},
		{"negative tty_nr wraps to 32 bits", "7 (x) S 1 7 7 -1 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0",
			&Process{PID: 7, PPID: 1, PGRP: 7, SID: 7, TTY: 0xffffffff, TPGID: -1, State: 'S', Comm: "x", Start: 77}},

		{"empty", "", nil},
		{"newline", "\n", nil},
		{"pid only", "1", nil},
		{"no closing parenthesis", "1 (bash S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", nil},
		{"no opening parenthesis", "1 bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", nil},
		{"parentheses reversed", "1 )bash( S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", nil},
		{"no pid", "(bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", nil},
		{"blank pid", "  (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", nil},
		{"pid not a number", "x1 (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", nil},
		{"pid overflows", "99999999999999999999999 (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77 0", nil},
		{"name only", "1 (bash)", nil},
		{"name only, newline", "1 (bash)\n", nil},
		{"truncated before starttime", "1 (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0", nil},
		{"truncated, trailing spaces", "1 (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0      ", nil},
		{"only parentheses", "()", nil},
		{"nul bytes", "\x00\x00(\x00)\x00", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if tt.want == nil {
				if err == nil {
					t.Fatalf("ParseStat(%q) = %+v, want an error", tt.in, *got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStat(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(*tt.want, *got); diff != "" {
				t.Errorf("ParseStat(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(realStat))
	f.Add([]byte("100 ((a) b) R 1 1 1) S 1 100 100 0 -1 4194560 0 0 0 0 1 0 0 0 20 0 1 0 5000 0"))
	f.Add([]byte("7 ()) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 77"))
	f.Add([]byte("1 (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0"))
	f.Add([]byte("1 )bash( S"))
	f.Add([]byte("(x)"))
	f.Add([]byte(""))
	f.Add([]byte("-5 (x) S -1 -1 -1 -34816 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseStat(b)
		if err != nil {
			return
		}
		// The name is what lies between the first '(' and the last ')'.
		open, closing := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if open < 0 || closing < open || p.Comm != string(b[open+1:closing]) {
			t.Fatalf("ParseStat(%q).Comm = %q", b, p.Comm)
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open]))); err != nil || pid != p.PID {
			t.Fatalf("ParseStat(%q).PID = %d", b, p.PID)
		}
	})
}

func TestParseStatusUIDs(t *testing.T) {
	tests := []struct {
		in        string
		uid, euid int
	}{
		{"Name:\tpasswd\nUmask:\t0022\nUid:\t1001\t0\t0\t0\nGid:\t1001\t1001\t1001\t1001\n", 1001, 0},
		{"Name:\tx\nUid:\t0\t0\t0\t0", 0, 0},
		{"Name:\tx\nUid:\t7\n", -1, -1},
		{"Name:\tx\nGid:\t7\t7\t7\t7\n", -1, -1},
		{"Uid:\t7\t7\t7\t7\n", -1, -1}, // status always starts with Name:
		{"", -1, -1},
	}
	for _, tt := range tests {
		uid, euid := parseStatusUIDs([]byte(tt.in))
		if uid != tt.uid || euid != tt.euid {
			t.Errorf("parseStatusUIDs(%q) = %d, %d; want %d, %d", tt.in, uid, euid, tt.uid, tt.euid)
		}
	}
}

func pidsOf(ps []*Process) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.PID)
	}
	slices.Sort(out)
	return out
}

func TestTree(t *testing.T) {
	s := scanFixture(t)
	// 1 → 480 sshd [priv] → 490 sshd alice@pts/0 → 500 -bash → 510 vim → 511 make
	//                                                         → 700 passwd
	if got, want := pidsOf(s.Children(500)), []int{510, 700}; !slices.Equal(got, want) {
		t.Errorf("Children(500) = %v, want %v", got, want)
	}
	if got := s.Children(511); len(got) != 0 {
		t.Errorf("Children(511) = %v, want none", pidsOf(got))
	}
	if got, want := pidsOf(s.Children(2)), []int{15}; !slices.Equal(got, want) {
		t.Errorf("Children(2) = %v, want %v", got, want)
	}

	d := s.Descendants(480)
	if got, want := pidsOf(d), []int{490, 500, 510, 511, 700}; !slices.Equal(got, want) {
		t.Errorf("Descendants(480) = %v, want %v", got, want)
	}
	// Depth first: every process comes after its parent.
	pos := map[int]int{480: -1}
	for i, p := range d {
		pp, ok := pos[p.PPID]
		if !ok || pp >= i {
			t.Errorf("Descendants(480): %d listed before its parent %d", p.PID, p.PPID)
		}
		pos[p.PID] = i
	}
	if got := s.Descendants(99999); len(got) != 0 {
		t.Errorf("Descendants(99999) = %v", pidsOf(got))
	}

	tests := []struct {
		anc, pid int
		want     bool
	}{
		{500, 500, true},
		{500, 511, true},
		{480, 511, true},
		{1, 511, true},
		{511, 500, false},
		{700, 511, false},
		{490, 100, false},
		{500, 99999, false}, // no such process
		{99999, 99999, true},
		{0, 511, false},
		{100, 0, false},
	}
	for _, tt := range tests {
		if got := s.IsAncestor(tt.anc, tt.pid); got != tt.want {
			t.Errorf("IsAncestor(%d, %d) = %v, want %v", tt.anc, tt.pid, got, tt.want)
		}
	}
}

// A parent loop cannot happen in the kernel, but a snapshot read while PIDs
// were reused could show one: the walks must still end.
func TestTreeLoop(t *testing.T) {
	s := &Snapshot{Procs: map[int]*Process{
		10: {PID: 10, PPID: 11},
		11: {PID: 11, PPID: 10},
		12: {PID: 12, PPID: 12},
	}}
	if got := pidsOf(s.Descendants(10)); !slices.Equal(got, []int{11}) {
		t.Errorf("Descendants(10) = %v, want [11]", got)
	}
	if got := pidsOf(s.Descendants(12)); len(got) != 0 {
		t.Errorf("Descendants(12) = %v, want none", got)
	}
	if s.IsAncestor(99, 10) || s.IsAncestor(99, 12) {
		t.Error("IsAncestor found an ancestor in a loop")
	}
	if !s.IsAncestor(11, 10) {
		t.Error("IsAncestor(11, 10) = false")
	}
}

func TestCmdline(t *testing.T) {
	s := scanFixture(t)
	long := "/usr/bin/python3 -c " + strings.Repeat("x", 5000) + " end"
	tests := []struct {
		pid  int
		want string
	}{
		{480, "sshd: alice [priv]"}, // title padded with spaces, then NULs
		{490, "sshd: alice@pts/0"},  // padded with NULs
		{500, "-bash"},
		{510, "vim notes.txt"},
		{600, long[:CmdlineMax]}, // cut at CmdlineMax: never read whole
		{1050, `/sbin/agetty -o -p -- \u --noclear - linux`},
		{2, ""},   // kernel thread
		{300, ""}, // zombie
		{99999, ""},
	}
	for _, tt := range tests {
		if got := s.Cmdline(tt.pid); got != tt.want {
			t.Errorf("Cmdline(%d) = %q, want %q", tt.pid, got, tt.want)
		}
		if got := ReadCmdline(fixtureRoot, tt.pid); got != tt.want {
			t.Errorf("ReadCmdline(%d) = %q, want %q", tt.pid, got, tt.want)
		}
	}
}

func TestCmdlineCached(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("stat", "cpu 1 2 3\nbtime 1000\n")
	write("42/stat", "42 (sshd) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n")
	write("42/status", "Name:\tsshd\nUid:\t0\t0\t0\t0\n")
	write("42/cmdline", "sshd: alice [priv]\x00\x00\x00")
	s, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Cmdline(42); got != "sshd: alice [priv]" {
		t.Fatalf("Cmdline(42) = %q", got)
	}
	write("42/cmdline", "sshd: alice@pts/0\x00")
	if got := s.Cmdline(42); got != "sshd: alice [priv]" {
		t.Errorf("Cmdline(42) after the title changed = %q, want the cached title", got)
	}
	if got := ReadCmdline(root, 42); got != "sshd: alice@pts/0" {
		t.Errorf("ReadCmdline(42) = %q", got)
	}
}

func TestStartTime(t *testing.T) {
	s := scanFixture(t)
	boot := time.Unix(fixtureBoot, 0)
	tests := []struct {
		ticks uint64
		want  time.Time
	}{
		{0, boot},
		{1, boot.Add(10 * time.Millisecond)},
		{14, boot.Add(140 * time.Millisecond)},
		{34956, time.Unix(fixtureBoot+349, 560e6)},
		{8640000, boot.Add(24 * time.Hour)},
	}
	for _, tt := range tests {
		if got := s.StartTime(tt.ticks); !got.Equal(tt.want) {
			t.Errorf("StartTime(%d) = %v, want %v", tt.ticks, got, tt.want)
		}
	}
	if got, want := s.StartTime(s.Procs[500].Start), time.Unix(fixtureBoot+349, 560e6); !got.Equal(want) {
		t.Errorf("start of pid 500 = %v, want %v", got, want)
	}
}

func TestGetenv(t *testing.T) {
	tests := []struct {
		key, want string
	}{
		{"SSH_CONNECTION", "192.0.2.10 51234 10.0.2.15 22"},
		{"SSH", "not-the-one"}, // not SSH_CLIENT or SSH_CONNECTION
		{"SSH_TTY", "/dev/pts/0"},
		{"USER", "alice"},
		{"TERM", "xterm-256color"}, // the last entry, without a NUL after it
		{"EMPTY", ""},
		{"MISSING", ""},
		{"", ""},
		{"SSH_CONNECTION=192.0.2.10", ""},
	}
	for _, tt := range tests {
		got, err := Getenv(fixtureRoot, 500, tt.key)
		if err != nil || got != tt.want {
			t.Errorf("Getenv(500, %q) = %q, %v; want %q", tt.key, got, err, tt.want)
		}
	}
	if _, err := Getenv(fixtureRoot, 510, "USER"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Getenv of a process without environ: err = %v, want ErrNotExist", err)
	}
}

// BenchmarkScan reads the real /proc. ns/proc is the cost per process.
func BenchmarkScan(b *testing.B) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("no /proc")
	}
	n, iters := 0, 0
	for b.Loop() {
		s, err := Scan("/proc")
		if err != nil {
			b.Fatal(err)
		}
		n += len(s.Procs)
		iters++
	}
	if n > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/proc")
		b.ReportMetric(float64(n)/float64(iters), "procs")
	}
}
