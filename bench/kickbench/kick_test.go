// Package kickbench measures sshkick's kick against the classic tools on
// real SSH sessions of a private sshd, side by side in one run:
//
//   - BenchmarkKickVsPkill: `sshkick kick USER` on N sessions of one user
//     against `pkill -HUP -u USER`, each to the moment every session has
//     ended (bench/kick-vs-pkill.sh);
//   - BenchmarkKickOneLatency: `sshkick kick TTY` on one responsive
//     session against `kill -HUP` of the user's sshd, to the moment the
//     client sees the session end (bench/kick-latency.sh).
//
// They print medians and the ratio as benchmark metrics. They need root
// and sshd (skipped otherwise; make check does not run benchmarks).
package kickbench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

func build(b *testing.B) (bin, dir string) {
	b.Helper()
	dir = b.TempDir()
	bin = sshdtest.BuildRelease(b, dir)
	return bin, dir
}

// BenchmarkKickVsPkill: one iteration ends N sessions with sshkick and N
// with pkill. Metrics: medians in ms and their ratio.
func BenchmarkKickVsPkill(b *testing.B) {
	n := sshdtest.EnvInt("SSHKICK_BENCH_N", 50)
	bin, dir := build(b)
	s := sshdtest.Start(b)
	u := s.AddUser(b)
	open := func() []*sshdtest.Session {
		sess := make([]*sshdtest.Session, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := range sess {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				sess[i] = s.Login(b, u, true, "sleep 3600")
			})
		}
		wg.Wait()
		if !sshdtest.Poll(60*time.Second, func() bool { return u.CountComm("sleep") >= n }) {
			b.Fatalf("only %d of %d sessions came up", u.CountComm("sleep"), n)
		}
		return sess
	}
	waitEnded := func(sess []*sshdtest.Session) {
		for _, x := range sess {
			if !x.Ended(60 * time.Second) {
				b.Fatalf("a session did not end")
			}
		}
		if !sshdtest.Poll(60*time.Second, func() bool { return len(u.Pids()) == 0 }) {
			b.Fatalf("processes of %s left: %v", u.Name, u.Pids())
		}
	}
	var tk, tp, own []time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		sess := open()
		b.StartTimer()
		start := time.Now()
		cmd := exec.Command(bin, "kick", u.Name, "--yes", "--utmp", s.Utmp, "--audit-log", filepath.Join(dir, "audit.jsonl"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("sshkick kick: %v %s", err, out)
		}
		own = append(own, time.Since(start))
		waitEnded(sess)
		tk = append(tk, time.Since(start))

		b.StopTimer()
		sess = open()
		b.StartTimer()
		start = time.Now()
		if out, err := exec.Command("pkill", "-HUP", "-u", u.Name).CombinedOutput(); err != nil {
			b.Fatalf("pkill: %v %s", err, out)
		}
		waitEnded(sess)
		tp = append(tp, time.Since(start))
	}
	mk, mp := sshdtest.Median(tk), sshdtest.Median(tp)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(n), "sessions")
	b.ReportMetric(sshdtest.Ms(mk), "sshkick-ms")
	b.ReportMetric(sshdtest.Ms(sshdtest.Median(own)), "sshkick-cmd-ms")
	b.ReportMetric(sshdtest.Ms(mp), "pkill-ms")
	b.ReportMetric(float64(mk)/float64(mp), "ratio")
	b.Logf("%d sessions, %d rounds: sshkick %v, pkill %v", n, len(tk), tk, tp)
}

// BenchmarkKickOneLatency: one iteration kicks one responsive terminal
// session (a shell waiting for input) with sshkick, and ends another with
// `kill -HUP` of the user's sshd process, each timed from the command's
// start to the client seeing its session end.
func BenchmarkKickOneLatency(b *testing.B) {
	bin, dir := build(b)
	s := sshdtest.Start(b)
	u := s.AddUser(b)
	up := func() (*sshdtest.Session, string, int) {
		x := s.Login(b, u, true, "")
		x.Stdin.Write([]byte("echo up-$((6*7)); tty\n"))
		if !x.WaitFor("up-42", 30*time.Second) {
			b.Fatalf("the shell did not answer: %q", x.Out.Bytes())
		}
		var tty string
		if !sshdtest.Poll(30*time.Second, func() bool {
			out := string(x.Out.Bytes())
			if i := strings.Index(out, "/dev/pts/"); i >= 0 {
				if f := strings.Fields(out[i+len("/dev/"):]); len(f) > 0 {
					tty = f[0]
				}
			}
			return tty != ""
		}) {
			b.Fatalf("no tty in %q", x.Out.Bytes())
		}
		return x, tty, userSSHD(u, tty)
	}
	kick := func(bin string) time.Duration {
		b.StopTimer()
		x, tty, _ := up()
		b.StartTimer()
		start := time.Now()
		cmd := exec.Command(bin, "kick", tty, "--yes", "--utmp", s.Utmp, "--audit-log", filepath.Join(dir, "audit.jsonl"))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if !x.Ended(60 * time.Second) {
			b.Fatalf("the kicked session did not end")
		}
		took := time.Since(start)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("%s kick %s: %v", bin, tty, err)
		}
		return took
	}
	// SSHKICK_BENCH_BASELINE: another sshkick binary (say, main's), run
	// alongside to tell a change from the shared host's load.
	base := os.Getenv("SSHKICK_BENCH_BASELINE")
	var tk, th, tb []time.Duration
	b.ResetTimer()
	for b.Loop() {
		tk = append(tk, kick(bin))
		if base != "" {
			tb = append(tb, kick(base))
		}

		b.StopTimer()
		y, _, sshd := up()
		if sshd <= 0 {
			b.Fatalf("no sshd process of %s", u.Name)
		}
		b.StartTimer()
		start := time.Now()
		if out, err := exec.Command("kill", "-HUP", strconv.Itoa(sshd)).CombinedOutput(); err != nil {
			b.Fatalf("kill -HUP %d: %v %s", sshd, err, out)
		}
		if !y.Ended(60 * time.Second) {
			b.Fatalf("the session did not end on kill -HUP")
		}
		th = append(th, time.Since(start))
		b.StopTimer()
		if !sshdtest.Poll(60*time.Second, func() bool { return len(u.Pids()) == 0 }) {
			b.Fatalf("processes of %s left after kill -HUP: %v", u.Name, u.Pids())
		}
		b.StartTimer()
	}
	mk, mh := sshdtest.Median(tk), sshdtest.Median(th)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(sshdtest.Ms(mk), "sshkick-ms")
	b.ReportMetric(sshdtest.Ms(mh), "killhup-ms")
	b.ReportMetric(float64(mk)/float64(mh), "ratio")
	if base != "" {
		b.ReportMetric(sshdtest.Ms(sshdtest.Median(tb)), "baseline-ms")
		b.ReportMetric(float64(mk)/float64(sshdtest.Median(tb)), "ratio-to-baseline")
	}
	b.Logf("%d rounds: sshkick %v; kill -HUP %v; baseline %v", len(tk), tk, th, tb)
}

// userSSHD is the user's sshd process serving tty ("sshd: USER@pts/N").
func userSSHD(u *sshdtest.User, tty string) int {
	for _, pid := range u.Pids() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err == nil && strings.HasSuffix(strings.TrimRight(string(b), "\x00 "), "@"+tty) {
			return pid
		}
	}
	return 0
}
