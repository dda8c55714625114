package proc

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/sshdtest"
)

// diagMsg builds one SOCK_DIAG_BY_FAMILY reply message.
func diagMsg(family, state uint8, local, remote netip.AddrPort, inode uint32) []byte {
	m := make([]byte, nlmsgHdrLen+inetDiagMsg)
	binary.NativeEndian.PutUint32(m, uint32(len(m)))
	binary.NativeEndian.PutUint16(m[4:], unix.SOCK_DIAG_BY_FAMILY)
	b := m[nlmsgHdrLen:]
	b[0], b[1] = family, state
	binary.BigEndian.PutUint16(b[4:], local.Port())
	binary.BigEndian.PutUint16(b[6:], remote.Port())
	if family == unix.AF_INET {
		a, r := local.Addr().As4(), remote.Addr().As4()
		copy(b[8:], a[:])
		copy(b[24:], r[:])
	} else {
		a, r := local.Addr().As16(), remote.Addr().As16()
		copy(b[8:], a[:])
		copy(b[24:], r[:])
	}
	binary.NativeEndian.PutUint32(b[68:], inode)
	return m
}

func nlmsg(typ uint16, body []byte) []byte {
	m := make([]byte, nlmsgHdrLen+len(body))
	binary.NativeEndian.PutUint32(m, uint32(len(m)))
	binary.NativeEndian.PutUint16(m[4:], typ)
	copy(m[nlmsgHdrLen:], body)
	return m
}

func TestParseDiag(t *testing.T) {
	ap := netip.MustParseAddrPort
	v4 := diagMsg(unix.AF_INET, 1, ap("10.0.2.15:22"), ap("192.0.2.10:51234"), 30001)
	listen := diagMsg(unix.AF_INET, 10, ap("0.0.0.0:22"), ap("0.0.0.0:0"), 1674)
	noInode := diagMsg(unix.AF_INET, 1, ap("10.0.2.15:22"), ap("192.0.2.11:1"), 0)
	mapped := diagMsg(unix.AF_INET6, 1, ap("[::ffff:10.0.2.15]:22"), ap("[::ffff:192.0.2.12]:40002"), 30003)
	v6 := diagMsg(unix.AF_INET6, 1, ap("[2001:db8::1]:22"), ap("[2001:db8::2]:5000"), 30005)
	done := nlmsg(unix.NLMSG_DONE, make([]byte, 4))

	out := map[uint64]Conn{}
	fin, err := parseDiag(slices.Concat(v4, listen, noInode), unix.AF_INET, out)
	if err != nil || fin {
		t.Fatalf("parseDiag = %v, %v", fin, err)
	}
	if fin, err := parseDiag(done, unix.AF_INET, out); err != nil || !fin {
		t.Fatalf("parseDiag(done) = %v, %v", fin, err)
	}
	want := map[uint64]Conn{30001: conn("10.0.2.15:22", "192.0.2.10:51234")}
	if !maps(out, want) {
		t.Errorf("v4: %v, want %v", out, want)
	}

	out = map[uint64]Conn{}
	if _, err := parseDiag(slices.Concat(mapped, v6, v4, done), unix.AF_INET6, out); err != nil {
		t.Fatal(err)
	}
	want = map[uint64]Conn{ // the AF_INET message in a v6 dump is not taken
		30003: conn("10.0.2.15:22", "192.0.2.12:40002"),
		30005: conn("[2001:db8::1]:22", "[2001:db8::2]:5000"),
	}
	if !maps(out, want) {
		t.Errorf("v6: %v, want %v", out, want)
	}

	eperm := make([]byte, 4)
	code := -int32(unix.EPERM)
	binary.NativeEndian.PutUint32(eperm, uint32(code))
	long := slices.Clone(v4)
	binary.NativeEndian.PutUint32(long, uint32(len(v4)+1))
	short := slices.Clone(v4)
	binary.NativeEndian.PutUint32(short, 8)
	for name, b := range map[string][]byte{
		"header cut":     v4[:10],
		"length beyond":  long,
		"length short":   short,
		"body cut":       nlmsg(unix.SOCK_DIAG_BY_FAMILY, make([]byte, inetDiagMsg-1)),
		"error":          nlmsg(unix.NLMSG_ERROR, eperm),
		"error no code":  nlmsg(unix.NLMSG_ERROR, nil),
		"good then junk": slices.Concat(v4, []byte{1, 2, 3}),
	} {
		if _, err := parseDiag(b, unix.AF_INET, map[uint64]Conn{}); !errors.Is(err, errDiag) {
			t.Errorf("%s: err = %v, want errDiag", name, err)
		}
	}
}

// TestReadTCPDiag compares the kernel's sock_diag answer with
// /proc/net/tcp for connections this test holds.
func TestReadTCPDiag(t *testing.T) {
	for _, tc := range []struct {
		family uint8
		table  string
		addr   string
	}{
		{unix.AF_INET, "tcp", "127.0.0.1:0"},
		{unix.AF_INET6, "tcp6", "[::1]:0"},
	} {
		t.Run(tc.table, func(t *testing.T) {
			l, c, s, err := loopbackPair(t, tc.addr)
			if err != nil {
				if tc.family == unix.AF_INET6 {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatal(err)
			}
			lino, cino, sino := inodeOf(t, l.(*net.TCPListener)), inodeOf(t, c.(*net.TCPConn)), inodeOf(t, s.(*net.TCPConn))

			diag := map[uint64]Conn{}
			if err := readTCPDiag(tc.family, diag); err != nil {
				t.Fatalf("readTCPDiag: %v", err)
			}
			file := map[uint64]Conn{}
			fh, err := os.Open("/proc/net/" + tc.table)
			if err != nil {
				t.Fatal(err)
			}
			parseTCPFrom(fh, file)
			fh.Close()
			want := Conn{Local: netip.MustParseAddrPort(c.LocalAddr().String()), Remote: netip.MustParseAddrPort(l.Addr().String())}
			if got := diag[cino]; got != want || file[cino] != want {
				t.Errorf("client %d: diag %v, file %v, want %v", cino, got, file[cino], want)
			}
			if diag[sino] != file[sino] || diag[sino].Remote != want.Local {
				t.Errorf("server end %d: diag %v, file %v", sino, diag[sino], file[sino])
			}
			if _, ok := diag[lino]; ok {
				t.Errorf("the listening socket %d is listed as a connection", lino)
			}
			// ReadTCPTable takes the same answer on the real /proc.
			got := map[uint64]Conn{}
			if err := ReadTCPTable("/proc", tc.table, got); err != nil || got[cino] != want {
				t.Errorf("ReadTCPTable: %v, %v", got[cino], err)
			}
		})
	}
}

// TestReadFDs lists this process's descriptors with more entries than
// one getdents buffer holds, and past maxFDs.
func TestReadFDs(t *testing.T) {
	var held []int
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	for range 1100 {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Skipf("cannot hold 1,100 descriptors: %v", err)
		}
		held = append(held, fd)
	}
	for _, procfs := range []bool{true, false} {
		got, err := readFDs("/proc/self/fd", procfs)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != maxFDs || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("procfs %v: %d descriptors (sorted %v), want %d distinct, sorted", procfs, len(got), slices.IsSorted(got), maxFDs)
		}
		if !slices.Contains(got, held[0]) || !slices.Contains(got, 0) {
			t.Errorf("procfs %v: %v misses %d or 0", procfs, got[:8], held[0])
		}
	}
	for _, fd := range held[100:] {
		unix.Close(fd)
	}
	held = held[:100]
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readFDs("/proc/self/fd", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		if !slices.Contains(got, n) && n != held[len(held)-1]+1 { // os.ReadDir's own
			t.Errorf("descriptor %d listed by os.ReadDir, not by readFDs (%d of %d)", n, len(got), len(ents))
		}
	}
	if _, err := readFDs("/proc/0/fd", true); err == nil {
		t.Error("readFDs of no process: no error")
	}
}

func TestAppendDirents(t *testing.T) {
	ent := func(name string, reclen int) []byte {
		b := make([]byte, reclen)
		binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
		copy(b[19:], name)
		return b
	}
	b := slices.Concat(ent(".", 24), ent("..", 24), ent("7", 24), ent("12", 24), ent("abc", 24),
		ent("-1", 24), ent("99999999999", 32), ent("3", 24))
	if got := appendDirents(nil, b); !slices.Equal(got, []int{7, 12, 3}) {
		t.Errorf("appendDirents = %v, want [7 12 3]", got)
	}
	for name, b := range map[string][]byte{
		"reclen 0":      ent("5", 24)[:16],
		"reclen short":  func() []byte { e := ent("5", 24); binary.NativeEndian.PutUint16(e[16:], 10); return e }(),
		"reclen beyond": func() []byte { e := ent("5", 24); binary.NativeEndian.PutUint16(e[16:], 200); return e }(),
	} {
		if got := appendDirents(nil, b); len(got) != 0 {
			t.Errorf("%s: %v, want nothing", name, got)
		}
	}
}

// TestReadBoundedProcfs reads this process's real cmdline and status
// with the short-read rule and compares them with a plain read.
func TestReadBoundedProcfs(t *testing.T) {
	if !onProcfs("/proc") {
		t.Skip("no procfs at /proc")
	}
	// status changes between two reads (memory, context switches): it
	// must come whole, to its last line.
	st, err := readBounded("/proc/self/status", nil, statusMax, true)
	if err != nil || !strings.Contains(string(st), "\nUid:") || !strings.HasSuffix(string(st), "nonvoluntary_ctxt_switches:\t"+lastField(st)+"\n") {
		t.Errorf("status: %q, %v", st, err)
	}
	for _, f := range []string{"cmdline", "environ"} {
		want, err := os.ReadFile("/proc/self/" + f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readBounded("/proc/self/"+f, nil, 1<<20, true)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: %d bytes, %v; want %d", f, len(got), err, len(want))
		}
	}
	// A command line longer than the bound is cut at it.
	arg := strings.Repeat("y", 3*CmdlineMax)
	cmd := startSleeper(t, arg)
	// Start returns once exec has closed the descriptors; the new argv is
	// in place a moment later.
	got := ""
	sshdtest.Poll(time.Minute, func() bool { got = ReadCmdline("/proc", cmd); return got != "" })
	if len(got) != CmdlineMax || !strings.HasSuffix(got, "yyyy") {
		t.Errorf("ReadCmdline of a %d-byte argv: %d bytes", len(arg), len(got))
	}
}

// startSleeper starts a shell that waits on its standard input, with arg
// in its argv; it is ended when the test ends.
func startSleeper(t *testing.T, arg string) int {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "read x", "sh", arg)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd.Process.Pid
}

func lastField(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}
