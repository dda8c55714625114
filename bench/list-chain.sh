#!/usr/bin/env bash
# Builds a host with one SSH session holding 10,000 processes (100 chains)
# that each called setsid(): `sshkick list` time and max RSS against `ps -e`
# and `w`,
# in one run, ROUNDS rounds interleaved (default 11); prints medians, the
# largest max RSS and the ratios. Needs root, sshd and gcc. Environment:
# SSHKICK_BENCH_SESSIONS, _USERS, _PROCS, _WIDTH, _ARGV, _W_RUNS, and
# SSHKICK_BENCH_BASELINE=BINARY to run another sshkick alongside (see
# bench/hostbench).
#   bench/list-chain.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
go test -count=1 -timeout 60m -run '^$' -bench '^BenchmarkListChain$' -benchtime "${1:-11}x" ./bench/hostbench/ 2>&1 \
  | grep -vE '^(goos|goarch|pkg|cpu|PASS)'
