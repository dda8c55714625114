#!/usr/bin/env bash
# Runs `sshkick watch` with a policy matching N real SSH sessions of a
# private sshd (default 200) for PERIOD seconds (default 120; the issue's
# target is averaged over 600) and prints its CPU share of one core, CPU
# seconds per hour and peak RSS (targets: <= 0.1 % of a core, <= 25 MB),
# then how late it acts on a deadline (target: within 2 s). Needs root and
# sshd.
#   bench/watch-cost.sh [N] [PERIOD] [INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
SSHKICK_BENCH_N=${1:-200} SSHKICK_BENCH_PERIOD=${2:-120} SSHKICK_BENCH_INTERVAL=${3:-15s} \
  go test -count=1 -timeout 60m -run '^$' -bench BenchmarkWatchCost -benchtime 1x ./bench/watchbench/ 2>&1 \
  | grep -E 'Benchmark|deadline|FAIL|panic|ok'
