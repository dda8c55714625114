// Package watchbench measures what `sshkick watch` costs on a host with
// many real SSH sessions of a private sshd (bench/watch-cost.sh): the
// daemon runs a policy that matches every session (idle, max_session,
// busy_cpu) for a measured period, and the benchmark reads its CPU time
// (/proc/PID/stat utime+stime) and peak RSS (VmHWM) — CPU as a share of
// one core and as CPU seconds per hour. Then it measures how late the
// daemon acts on a deadline: sessions with a short max_session, from the
// deadline to the audit record of the kick.
//
// It needs root and sshd (skipped otherwise; make check does not run
// benchmarks).
package watchbench

import (
	"bufio"
	"bytes"
	"encoding/json"
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

	"github.com/sshkick/sshkick/internal/sshdtest"
)

// cpuTicks is utime+stime of pid, in clock ticks (USER_HZ, 100).
func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	// After the command: state is field 3, utime 14, stime 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// statusKB is a "Key: N kB" line of /proc/PID/status.
func statusKB(b *testing.B, pid int, key string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// BenchmarkWatchCost: one iteration is the whole measurement (run it
// with -benchtime 1x). Environment: SSHKICK_BENCH_N sessions (200),
// SSHKICK_BENCH_PERIOD seconds measured (120), SSHKICK_BENCH_INTERVAL the
// policy's interval (15s).
func BenchmarkWatchCost(b *testing.B) {
	n := sshdtest.EnvInt("SSHKICK_BENCH_N", 200)
	period := time.Duration(sshdtest.EnvInt("SSHKICK_BENCH_PERIOD", 120)) * time.Second
	interval := os.Getenv("SSHKICK_BENCH_INTERVAL")
	if interval == "" {
		interval = "15s"
	}
	dir := b.TempDir()
	bin := sshdtest.BuildRelease(b, dir)
	s := sshdtest.Start(b)
	u, short := s.AddUser(b), s.AddUser(b)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s.Login(b, u, true, "exec sleep 3600")
		})
	}
	wg.Wait()
	if !sshdtest.Poll(120*time.Second, func() bool { return u.CountComm("sleep") >= n }) {
		b.Fatalf("only %d of %d sessions came up", u.CountComm("sleep"), n)
	}
	const maxSession = 20 * time.Second
	cfg := filepath.Join(dir, "policy.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`interval = %q
busy_cpu = "5%%"
warn = ["1h", "10m"]

[[rule]]
name = "short"
users = [%q]
max_session = %q
warn = []

[[rule]]
name = "many"
users = [%q]
idle = "10h"
max_session = "24h"
`, interval, short.Name, maxSession.String(), u.Name)), 0o644)
	audit := filepath.Join(dir, "audit.jsonl")
	cmd := exec.Command(bin, "watch", "--config", cfg, "--utmp", s.Utmp, "--state", filepath.Join(dir, "state.json"), "--audit-log", audit)
	logs := &sshdtest.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	if !sshdtest.Poll(60*time.Second, func() bool { return strings.Contains(logs.String(), "msg=watching") }) {
		b.Fatalf("watch did not start:\n%s", logs)
	}
	// The first evaluation (and the runtime's start) are not the steady
	// state: measured apart.
	time.Sleep(3 * time.Second)
	startup := cpuTicks(b, pid)

	b.ResetTimer()
	for b.Loop() {
		t0, c0 := time.Now(), cpuTicks(b, pid)
		time.Sleep(period)
		t1, c1 := time.Now(), cpuTicks(b, pid)
		secs := float64(c1-c0) / 100
		el := t1.Sub(t0).Seconds()
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(n), "sessions")
		b.ReportMetric(el, "period-s")
		b.ReportMetric(100*secs/el, "cpu-%-of-core")
		b.ReportMetric(secs*3600/el, "cpu-s/hour")
		b.ReportMetric(float64(statusKB(b, pid, "VmHWM"))/1024, "maxrss-MB")
		b.ReportMetric(float64(startup)/100, "startup-cpu-s")
	}
	b.StopTimer()

	// Deadline latency: sessions of the "short" user, opened a second
	// apart, each ended at login + max_session.
	const k = 5
	for range k {
		s.Login(b, short, true, "exec sleep 3600")
		time.Sleep(time.Second)
	}
	var kicks []map[string]any
	if !sshdtest.Poll(3*maxSession+60*time.Second, func() bool {
		kicks = kicks[:0]
		raw, _ := os.ReadFile(audit)
		for _, line := range bytes.Split(raw, []byte("\n")) {
			var r map[string]any
			if json.Unmarshal(line, &r) == nil && r["event"] == "watch-kick" && r["rule"] == "short" {
				kicks = append(kicks, r)
			}
		}
		return len(kicks) >= k
	}) {
		b.Fatalf("only %d of %d deadlines acted on\n%s", len(kicks), k, logs)
	}
	var late []time.Duration
	for _, r := range kicks {
		at, _ := time.Parse(time.RFC3339Nano, r["time"].(string))
		dl, _ := time.Parse(time.RFC3339Nano, r["deadline"].(string))
		late = append(late, at.Sub(dl))
	}
	slices.Sort(late)
	b.ReportMetric(late[len(late)/2].Seconds(), "deadline-late-median-s")
	b.ReportMetric(late[len(late)-1].Seconds(), "deadline-late-max-s")
	b.Logf("deadline to kick recorded: %v", late)
}
