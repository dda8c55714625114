// Command mkutmp writes a synthetic glibc utmp file for fixtures and for
// the list-vs-who benchmark:
//
//	go run ./bench/mkutmp -n 10000 -o FILE [-layout 384|400] [-line-prefix pts/]
//
// The file holds one BOOT_TIME record, N USER_PROCESS records (users
// bench0001…, lines PREFIX0…PREFIX(N-1), hosts and addresses 10.x.y.z, times
// now minus i seconds) and two DEAD_PROCESS records. Every PID is above the
// kernel's PID_MAX_LIMIT (4194304), so no record can ever name a live
// process and nothing acting on the file can signal anything.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/sshkick/sshkick/internal/utmp"
)

// firstPID is above PID_MAX_LIMIT (4 Mi on 64-bit kernels, 32 Ki on 32-bit),
// the largest value /proc/sys/kernel/pid_max accepts.
const firstPID = 5_000_000

func main() {
	n := flag.Int("n", 10000, "number of USER_PROCESS records")
	out := flag.String("o", "", "output file (required)")
	size := flag.Int("layout", utmp.Native.Size, "record layout: 384 or 400 bytes")
	prefix := flag.String("line-prefix", "pts/", "prefix of ut_line; records get PREFIX0, PREFIX1, …")
	flag.Parse()
	if err := run(*n, *out, *size, *prefix); err != nil {
		fmt.Fprintln(os.Stderr, "mkutmp:", err)
		os.Exit(2)
	}
}

func run(n int, out string, size int, prefix string) error {
	if out == "" || flag.NArg() != 0 {
		return fmt.Errorf("usage: mkutmp -n N -o FILE [-layout 384|400] [-line-prefix pts/]")
	}
	if n < 0 || n > 1_000_000 {
		return fmt.Errorf("-n %d: want 0..1000000", n)
	}
	var l utmp.Layout
	switch size {
	case 384:
		l = utmp.Layout384
	case 400:
		l = utmp.Layout400
	default:
		return fmt.Errorf("-layout %d: want 384 or 400", size)
	}
	l = l.WithOrder(utmp.Native.Order)

	now := time.Now()
	data := make([]byte, 0, (n+3)*l.Size)
	add := func(r utmp.Record) { data = append(data, utmp.Encode(r, l)...) }

	add(utmp.Record{Type: utmp.BootTime, Line: "~", ID: "~~", User: "reboot", Host: "mkutmp",
		Time: now.Add(-time.Duration(n+60) * time.Second)})
	for i := range n {
		line := fmt.Sprintf("%s%d", prefix, i)
		a := [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}
		add(utmp.Record{
			Type:    utmp.UserProcess,
			PID:     int32(firstPID + i),
			Line:    line,
			ID:      idFor(line),
			User:    fmt.Sprintf("bench%04d", i+1),
			Host:    netip.AddrFrom4(a).String(),
			Session: int64(firstPID + i),
			Time:    now.Add(-time.Duration(i) * time.Second),
			Addr:    netip.AddrFrom4(a),
		})
	}
	for k := range 2 {
		line := fmt.Sprintf("%s%d", prefix, n+k)
		add(utmp.Record{Type: utmp.DeadProcess, PID: int32(firstPID + n + k), Line: line, ID: idFor(line),
			Time: now.Add(-time.Duration(k) * time.Second)})
	}
	return os.WriteFile(out, data, 0o644)
}

// idFor returns the last four bytes of line, as login(3) and sshd derive
// ut_id from the tty name.
func idFor(line string) string {
	if len(line) > 4 {
		return line[len(line)-4:]
	}
	return line
}
