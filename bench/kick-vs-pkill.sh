#!/usr/bin/env bash
# Opens N real SSH sessions of one user on a private sshd (default 50) and
# times `sshkick kick USER` against `pkill -HUP -u USER` followed by waiting
# for the same sessions to end, ROUNDS times each, interleaved; prints the
# medians, the wall time per session and the ratio. Needs root and sshd.
#   bench/kick-vs-pkill.sh [N] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SSHKICK_BENCH=1 SSHKICK_BENCH_N=${1:-50} SSHKICK_BENCH_ROUNDS=${2:-3} \
  go test -count=1 -timeout 30m -run TestKickVsPkill ./bench/kickbench/ -v 2>&1 \
  | grep -E '^(sessions|sshkick|pkill|ratio|  of which)|FAIL|panic|kickbench'
