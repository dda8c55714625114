package sshdtest

import (
	"os"
	"slices"
	"strconv"
	"time"
)

// EnvInt is the positive integer in environment variable name, or def:
// how the benches take their sizes (SSHKICK_BENCH_N and the like).
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Median is the median of d (the upper one of an even count), 0 for none:
// benches on a shared machine report medians.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// Ms is d in milliseconds, for ReportMetric.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
