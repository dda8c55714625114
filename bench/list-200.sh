#!/usr/bin/env bash
# Builds a host with 200 real SSH sessions of 10 users (about 1,100
# processes) and times `sshkick list` against `who -u` and `w` in one run,
# ROUNDS rounds interleaved (default 11); prints medians, the largest max
# RSS and the ratios. Needs root, sshd and gcc. Environment:
# SSHKICK_BENCH_SESSIONS, _USERS, _PROCS, _WIDTH, _ARGV, _W_RUNS, and
# SSHKICK_BENCH_BASELINE=BINARY to run another sshkick alongside (see
# bench/hostbench).
#   bench/list-200.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
go test -count=1 -timeout 60m -run '^$' -bench '^BenchmarkList200$' -benchtime "${1:-11}x" ./bench/hostbench/ 2>&1 \
  | grep -vE '^(goos|goarch|pkg|cpu|PASS)'
