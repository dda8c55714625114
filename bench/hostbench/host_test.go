// Package hostbench measures `sshkick list` on a loaded host made of real
// processes, side by side with the classic tools in one run:
//
//   - BenchmarkList200: 200 real SSH sessions of a private sshd (about
//     1,100 processes): `sshkick list` against `who -u` and `w`
//     (bench/list-200.sh);
//   - BenchmarkListChain: one user's SSH session holding a chain of 10,000
//     processes, each of which called setsid(): `sshkick list` against
//     `ps -e` and `w` (bench/list-chain.sh);
//   - BenchmarkListArgvFlood: 300 processes named sshd sharing a 1.95 MB
//     argv, in a user's SSH session: `sshkick list` against `ps -e` and
//     `ps -ef` (bench/list-argv-flood.sh).
//
// SSHKICK_BENCH_BASELINE names another sshkick binary to run alongside
// (before/after a change, on the same host in the same run).
//
// Each prints, per command, the median wall time over the rounds and the
// largest maximum RSS (getrusage of the child), and the ratios. A round
// runs every command once, interleaved. They need root, sshd and gcc
// (skipped otherwise; make check does not run benchmarks).
package hostbench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/sshdtest"
)

// build builds sshkick and the process helper into a directory every test
// user can read.
func build(b *testing.B) (bin, helper, dir string) {
	b.Helper()
	dir, err := os.MkdirTemp("", "sshkick-hostbench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin = sshdtest.BuildRelease(b, dir)
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		b.Skip("needs gcc (make deps installs it)")
	}
	helper = filepath.Join(dir, "hostproc")
	if out, err := exec.Command(gcc, "-O2", "-o", helper, "testdata/hostproc.c").CombinedOutput(); err != nil {
		b.Fatalf("gcc: %v %s", err, out)
	}
	return bin, helper, dir
}

// tool is one command measured.
type tool struct {
	name string
	argv []string
	// max is how many rounds run it at most (w takes seconds per run on
	// a host of hundreds of sessions); 0 means every round.
	max int

	times []time.Duration
	rss   int64 // KiB, the largest
	lines int
}

// runOnce runs t once through the helper's measure mode, with its output
// discarded: wall time from fork to exit, and the child's maximum
// resident set.
func (t *tool) runOnce(b *testing.B, helper string) {
	out, err := exec.Command(helper, append([]string{"measure"}, t.argv...)...).Output()
	if err != nil {
		b.Fatalf("%s: %v", t.name, err)
	}
	var ns, kb int64
	if _, err := fmt.Sscan(string(out), &ns, &kb); err != nil {
		b.Fatalf("%s: measure said %q: %v", t.name, out, err)
	}
	t.times = append(t.times, time.Duration(ns))
	t.rss = max(t.rss, kb)
}

// compare runs every tool once to count its lines (and warm the caches),
// then rounds of all of them interleaved, and prints the table and the
// ratios of the first tool to every other.
func compare(b *testing.B, helper, what string, tools []*tool) {
	b.Helper()
	// SSHKICK_BENCH_BASELINE: another sshkick binary (say, main's) run
	// with the same arguments, side by side, to tell a change from the
	// host's load.
	if base := os.Getenv("SSHKICK_BENCH_BASELINE"); base != "" {
		argv := append([]string{base}, tools[0].argv[1:]...)
		tools = slices.Insert(tools, 1, &tool{name: "baseline " + filepath.Base(base), argv: argv})
	}
	for _, t := range tools {
		cmd := exec.Command(t.argv[0], t.argv[1:]...)
		lines := &lineCounter{}
		cmd.Stdout = lines
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v", t.name, err)
		}
		t.lines = lines.n
	}
	b.ResetTimer()
	round := 0
	for b.Loop() {
		for _, t := range tools {
			if t.max == 0 || round < t.max {
				t.runOnce(b, helper)
			}
		}
		round++
	}
	b.StopTimer()
	procs := countProcs()
	fmt.Printf("%s; %d processes on the host; %d rounds\n", what, procs, round)
	for _, t := range tools {
		fmt.Printf("  %-28s median %9.2f ms  max RSS %7.1f MB  (%d runs, %d lines)\n",
			t.name, sshdtest.Ms(sshdtest.Median(t.times)), float64(t.rss)/1024, len(t.times), t.lines)
	}
	first := tools[0]
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(sshdtest.Ms(sshdtest.Median(first.times)), "sshkick-ms")
	b.ReportMetric(float64(first.rss)/1024, "sshkick-rss-MB")
	for _, t := range tools[1:] {
		r := float64(sshdtest.Median(first.times)) / float64(sshdtest.Median(t.times))
		fmt.Printf("  ratio %s / %s: %.3f (time), %.2f (max RSS)\n", first.name, t.name, r, float64(first.rss)/float64(t.rss))
	}
}

// lineCounter counts lines without keeping them (ps -ef prints megabytes
// of argv here).
type lineCounter struct{ n int }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

func countProcs() int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	return n
}

// inSSHD runs argv in the private sshd's mount namespace, where /run/utmp
// is the test's utmp file: `w` reads no other.
func inSSHD(s *sshdtest.Server, argv ...string) []string {
	return append([]string{"nsenter", "--mount=/proc/" + strconv.Itoa(s.PID()) + "/ns/mnt", "--"}, argv...)
}

// BenchmarkList200 times the listings on SSHKICK_BENCH_SESSIONS (200)
// terminal sessions of SSHKICK_BENCH_USERS (10) users; `w` runs in at
// most SSHKICK_BENCH_W_RUNS (5) rounds.
func BenchmarkList200(b *testing.B) {
	n, nu := sshdtest.EnvInt("SSHKICK_BENCH_SESSIONS", 200), sshdtest.EnvInt("SSHKICK_BENCH_USERS", 10)
	bin, helper, _ := build(b)
	s := host200(b, n, nu)
	compare(b, helper, fmt.Sprintf("%d SSH sessions of %d users", n, nu), []*tool{
		{name: "sshkick list --utmp FILE", argv: []string{bin, "list", "--utmp", s.Utmp}},
		{name: "who -u FILE", argv: []string{"who", "-u", s.Utmp}},
		{name: "w (nsenter)", argv: inSSHD(s, "w"), max: sshdtest.EnvInt("SSHKICK_BENCH_W_RUNS", 5)},
		{name: "nsenter true (overhead)", argv: inSSHD(s, "true")},
	})
}

// BenchmarkDiscover200 is session.Discover in this process on the host of
// BenchmarkList200, for profiling the listing (-cpuprofile).
func BenchmarkDiscover200(b *testing.B) {
	n, nu := sshdtest.EnvInt("SSHKICK_BENCH_SESSIONS", 200), sshdtest.EnvInt("SSHKICK_BENCH_USERS", 10)
	s := host200(b, n, nu)
	b.ResetTimer()
	for b.Loop() {
		res, err := session.Discover(context.Background(), session.Options{UtmpPath: s.Utmp})
		if err != nil {
			b.Fatal(err)
		}
		if res.Logind != nil {
			res.Logind.Close()
		}
		if len(res.Sessions) < n {
			b.Fatalf("%d sessions", len(res.Sessions))
		}
	}
}

// host200 opens n terminal sessions spread over nu users, each running
// `sleep | cat` under bash (five processes a session, with sshd's two).
func host200(b testing.TB, n, nu int) *sshdtest.Server {
	s := sshdtest.Start(b)
	users := make([]*sshdtest.User, nu)
	for i := range users {
		users[i] = s.AddUser(b)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s.Login(b, users[i%nu], true, "sleep 3600 | cat")
		})
	}
	wg.Wait()
	up := func() int {
		c := 0
		for _, u := range users {
			c += u.CountComm("cat")
		}
		return c
	}
	if !sshdtest.Poll(120*time.Second, func() bool { return up() >= n }) {
		b.Fatalf("only %d of %d sessions came up", up(), n)
	}
	who := func() int {
		out, _ := exec.Command("who", "-u", s.Utmp).Output()
		return bytes.Count(out, []byte("\n"))
	}
	if !sshdtest.Poll(60*time.Second, func() bool { return who() >= n }) {
		b.Fatalf("utmp has %d of %d records", who(), n)
	}
	return s
}

// BenchmarkListChain: one SSH session of a user running
// SSHKICK_BENCH_PROCS (10,000) processes: SSHKICK_BENCH_WIDTH (100) chains
// side by side, in which each process forks the next after calling
// setsid() (issue 8: the old discovery made each one a session).
func BenchmarkListChain(b *testing.B) {
	n := sshdtest.EnvInt("SSHKICK_BENCH_PROCS", 10000)
	width := sshdtest.EnvInt("SSHKICK_BENCH_WIDTH", 100)
	bin, helper, _ := build(b)
	s := sshdtest.Start(b)
	u := s.AddUser(b)
	// On a terminal, so that w lists the session and looks for its processes.
	s.Login(b, u, true, fmt.Sprintf("%s chains %d setsid %d", helper, n, width))
	stopHelper(b, u)
	if !sshdtest.Poll(300*time.Second, func() bool { return u.CountComm("hostproc") >= n }) {
		b.Fatalf("only %d of %d processes came up", u.CountComm("hostproc"), n)
	}
	compare(b, helper, fmt.Sprintf("one SSH session holding %d processes in %d chains (each process called setsid)", n, width), []*tool{
		{name: "sshkick list --utmp FILE", argv: []string{bin, "list", "--utmp", s.Utmp}},
		{name: "ps -e", argv: []string{"ps", "-e"}},
		{name: "w (nsenter)", argv: inSSHD(s, "w"), max: sshdtest.EnvInt("SSHKICK_BENCH_W_RUNS", 5)},
	})
}

// BenchmarkListArgvFlood: SSHKICK_BENCH_PROCS (300) processes of a user's
// SSH session named sshd, sharing one argv of SSHKICK_BENCH_ARGV bytes
// (1,950,000; issue 8: the old discovery read and kept every one whole).
func BenchmarkListArgvFlood(b *testing.B) {
	n := sshdtest.EnvInt("SSHKICK_BENCH_PROCS", 300)
	size := sshdtest.EnvInt("SSHKICK_BENCH_ARGV", 1950000)
	bin, helper, dir := build(b)
	fake := filepath.Join(dir, "sshd")
	if out, err := exec.Command("cp", helper, fake).CombinedOutput(); err != nil {
		b.Fatalf("cp: %v %s", err, out)
	}
	s := sshdtest.Start(b)
	u := s.AddUser(b)
	s.Login(b, u, false, fake+" flood "+strconv.Itoa(n)+" "+strconv.Itoa(size))
	stopHelper(b, u)
	if !sshdtest.Poll(120*time.Second, func() bool { return u.CountComm("sshd") >= n+1 }) { // + the user's real sshd
		b.Fatalf("only %d of %d processes came up", u.CountComm("sshd"), n)
	}
	compare(b, helper, fmt.Sprintf("%d processes named sshd sharing a %d-byte argv", n, size), []*tool{
		{name: "sshkick list --utmp FILE", argv: []string{bin, "list", "--utmp", s.Utmp}},
		{name: "ps -e", argv: []string{"ps", "-e"}},
		{name: "ps -ef", argv: []string{"ps", "-ef"}},
	})
}

// stopHelper ends the helper's processes at cleanup, before the test
// user is removed: SIGTERM to the helper's first process, which passes it
// down and reaps its children (PID 1 here does not reap orphans), then a
// wait until none is left. Registered after sshdtest.Start, it runs first.
func stopHelper(b *testing.B, u *sshdtest.User) {
	b.Cleanup(func() {
		for _, pid := range u.Pids() {
			if isHelper(pid) && !isHelper(parent(pid)) {
				syscall.Kill(pid, syscall.SIGTERM)
			}
		}
		if !sshdtest.Poll(300*time.Second, func() bool { return countHelpers(u) == 0 }) {
			b.Errorf("%d helper processes left", countHelpers(u))
		}
	})
}

// isHelper: a process of the helper, as chains ("hostproc chains …") or a flood
// (argv "sshd flooded …").
func isHelper(pid int) bool {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	args := strings.Split(string(buf[:n]), "\x00")
	return len(args) > 1 && (args[1] == "flooded" || (args[1] == "chains" && filepath.Base(args[0]) == "hostproc"))
}

func parent(pid int) int {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func countHelpers(u *sshdtest.User) int {
	c := 0
	for _, pid := range u.Pids() {
		if isHelper(pid) {
			c++
		}
	}
	return c
}
