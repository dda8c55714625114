#!/usr/bin/env bash
# Times `sshkick list --utmp FILE` against `who -u FILE` on the same utmp
# file of N records (default 10,000), in one run, and prints the medians and
# their ratio (sshkick / who; below 1.0 means sshkick is faster).
#   bench/list-vs-who.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
runs=${2:-21}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Built as it ships (packaging/build.sh): static, -trimpath, -s -w.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/sshkick" ./cmd/sshkick
go run ./bench/mkutmp -n "$n" -o "$out/utmp"

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# time one command RUNS times, nanoseconds each
times() {
  for ((i = 0; i < runs; i++)); do
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    echo $((e - s))
  done
}
# interleave warm-ups so neither gets a cold cache
"$out/sshkick" list --utmp "$out/utmp" >/dev/null 2>&1; who -u "$out/utmp" >/dev/null
lines_k=$("$out/sshkick" list --utmp "$out/utmp" --no-headers | wc -l)
lines_w=$(who -u "$out/utmp" | wc -l)
k=$(times "$out/sshkick" list --utmp "$out/utmp" | median)
w=$(times who -u "$out/utmp" | median)
procs=$(ls -d /proc/[0-9]* | wc -l)
printf 'utmp records: %d (sshkick lists %d lines, who -u %d); processes on this host: %d; runs: %d\n' "$n" "$lines_k" "$lines_w" "$procs" "$runs"
printf 'sshkick list --utmp FILE  median %8.2f ms\n' "$(echo "$k / 1000000" | bc -l)"
printf 'who -u FILE               median %8.2f ms\n' "$(echo "$w / 1000000" | bc -l)"
printf 'ratio sshkick/who: %.3f\n' "$(echo "$k / $w" | bc -l)"
