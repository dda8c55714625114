#!/usr/bin/env bash
# Kicks one responsive SSH session (a shell waiting for input) with
# `sshkick kick TTY`, and ends another with `kill -HUP` of the user's sshd,
# ROUNDS times each, interleaved; prints the median time from the command's
# start to the client seeing its session end, and the ratio. Needs root.
# SSHKICK_BENCH_BASELINE=BINARY kicks with another sshkick too (say, main's).
#   bench/kick-latency.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
go test -count=1 -timeout 30m -run '^$' -bench BenchmarkKickOneLatency -benchtime "${1:-15}x" ./bench/kickbench/ 2>&1 \
  | grep -E 'Benchmark|rounds|FAIL|panic|ok'
