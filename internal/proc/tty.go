package proc

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Device majors of terminals (Documentation/admin-guide/devices.txt).
const (
	ptsMajorFirst = 136 // Unix98 pty slaves, /dev/pts/N
	ptsMajorLast  = 143
	vtMajor       = 4 // minor 1–63: virtual consoles /dev/ttyN
)

// TTYName names a terminal device number the way utmp and ps do: "pts/3",
// "tty2". It returns "" for no terminal or for devices that are not a pty
// slave or a virtual console (serial lines, /dev/console) — sshkick never
// writes to or reports those as login terminals.
func TTYName(dev uint64) string {
	if dev == 0 {
		return ""
	}
	maj, min := unix.Major(dev), unix.Minor(dev)
	switch {
	case maj == ptsMajorFirst:
		return "pts/" + strconv.FormatUint(uint64(min), 10)
	case maj > ptsMajorFirst && maj <= ptsMajorLast && min < 256:
		return "pts/" + strconv.FormatUint(uint64((maj-ptsMajorFirst)*256+min), 10)
	case maj == vtMajor && min >= 1 && min <= 63:
		return "tty" + strconv.FormatUint(uint64(min), 10)
	}
	return ""
}

// TTYDevice is the inverse of TTYName: the device number of "pts/N" or
// "ttyN" (N in 1–63). Anything else — "..", "/dev/pts/3", "console", "tty",
// "ttyS0", ":0", digits with signs or leading zeros — is refused, so a name
// read from utmp can be trusted as a device name only after it passed here.
func TTYDevice(name string) (uint64, bool) {
	if n, ok := strings.CutPrefix(name, "pts/"); ok {
		v, ok := number(n, 1<<20-1)
		if !ok {
			return 0, false
		}
		return unix.Mkdev(ptsMajorFirst, uint32(v)), true
	}
	if n, ok := strings.CutPrefix(name, "tty"); ok {
		v, ok := number(n, 63)
		if !ok || v < 1 {
			return 0, false
		}
		return unix.Mkdev(vtMajor, uint32(v)), true
	}
	return 0, false
}

// number parses a plain decimal without sign or leading zeros, at most max.
func number(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 7 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v <= max
}
