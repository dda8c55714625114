// Package kickbench times `sshkick kick USER` against `pkill -HUP -u USER`
// on N real SSH sessions of one user, in one run. It is a benchmark, not a
// test: bench/kick-vs-pkill.sh runs it with SSHKICK_BENCH=1 (without it,
// it does nothing).
package kickbench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

func TestKickVsPkill(t *testing.T) {
	if os.Getenv("SSHKICK_BENCH") != "1" {
		t.Log("set SSHKICK_BENCH=1 (bench/kick-vs-pkill.sh) to run the benchmark")
		return
	}
	n, _ := strconv.Atoi(os.Getenv("SSHKICK_BENCH_N"))
	if n <= 0 {
		n = 50
	}
	rounds, _ := strconv.Atoi(os.Getenv("SSHKICK_BENCH_ROUNDS"))
	if rounds <= 0 {
		rounds = 3
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sshkick")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, "../../cmd/sshkick").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	s := sshdtest.Start(t)
	u := s.AddUser(t)

	open := func() []*sshdtest.Session {
		sess := make([]*sshdtest.Session, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := range sess {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				sess[i] = s.Login(t, u, true, "sleep 3600")
			})
		}
		wg.Wait()
		// Every session is up: a shell-side process per session.
		deadline := time.Now().Add(60 * time.Second)
		for countSleeps(u) < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d sessions came up", countSleeps(u), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return sess
	}
	waitEnded := func(sess []*sshdtest.Session) {
		for _, x := range sess {
			if !x.Ended(30 * time.Second) {
				t.Fatalf("a session did not end")
			}
		}
		for len(u.Pids()) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	var tk, tp, own []time.Duration
	for r := 0; r < rounds; r++ {
		sess := open()
		start := time.Now()
		cmd := exec.Command(bin, "kick", u.Name, "--yes", "--utmp", s.Utmp, "--audit-log", filepath.Join(dir, "audit.jsonl"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sshkick kick: %v %s", err, out)
		}
		own = append(own, time.Since(start))
		waitEnded(sess)
		tk = append(tk, time.Since(start))

		sess = open()
		start = time.Now()
		if out, err := exec.Command("pkill", "-HUP", "-u", u.Name).CombinedOutput(); err != nil {
			t.Fatalf("pkill: %v %s", err, out)
		}
		waitEnded(sess)
		tp = append(tp, time.Since(start))
	}
	mk, mp := median(tk), median(tp)
	fmt.Printf("sessions: %d of one user; rounds: %d\n", n, rounds)
	fmt.Printf("sshkick kick USER            median %8.1f ms  (%.2f ms per session)  all: %v\n", ms(mk), ms(mk)/float64(n), tk)
	fmt.Printf("pkill -HUP -u USER + wait    median %8.1f ms  (%.2f ms per session)  all: %v\n", ms(mp), ms(mp)/float64(n), tp)
	fmt.Printf("  of which the sshkick process itself (discover, verify, signal, wait, verify): median %.1f ms\n", ms(median(own)))
	fmt.Printf("ratio sshkick/pkill: %.3f\n", float64(mk)/float64(mp))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func countSleeps(u *sshdtest.User) int {
	c := 0
	for _, pid := range u.Pids() {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && string(b) == "sleep\n" {
			c++
		}
	}
	return c
}
