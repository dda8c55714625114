#!/usr/bin/env bash
# Opens N real SSH sessions of one user on a private sshd (default 50) and
# times `sshkick kick USER` against `pkill -HUP -u USER` followed by waiting
# for the same sessions to end, ROUNDS times each, interleaved; prints the
# medians and the ratio. Needs root and sshd.
#   bench/kick-vs-pkill.sh [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SSHKICK_BENCH_N=${1:-50} \
  go test -count=1 -timeout 30m -run '^$' -bench BenchmarkKickVsPkill -benchtime "${2:-3}x" ./bench/kickbench/ 2>&1 \
  | grep -E 'Benchmark|sessions|FAIL|panic|ok'
