package proc

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// The fixture files were written the way a little-endian kernel prints
// addresses (32-bit words in host order).
func skipBigEndian(t *testing.T) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixtures hold little-endian /proc/net/tcp lines")
	}
}

func conn(local, remote string) Conn {
	return Conn{Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote)}
}

func TestParseTCP(t *testing.T) {
	skipBigEndian(t)
	tests := []struct {
		file string
		want map[uint64]Conn
	}{
		// Only ESTABLISHED sockets with an inode: listeners, TIME_WAIT,
		// orphaned sockets (inode 0) and unparsable lines are left out.
		{"tcp", map[uint64]Conn{
			13382: conn("127.0.0.1:2299", "127.0.0.1:54236"),
			20001: conn("10.0.2.15:22", "192.0.2.10:51234"),
		}},
		{"tcp6", map[uint64]Conn{
			20002: conn("[2001:db8::1]:22", "[2001:db8::99]:40000"),
			20003: conn("10.0.2.15:22", "192.0.2.7:51000"), // IPv4-mapped: comes out as IPv4
			20004: conn("[fe80::5054:ff:fe12:3456]:8080", "[fe80::1]:443"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(fixtureRoot + "/net/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			got := map[uint64]Conn{}
			parseTCP(b, got)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("parseTCP(%s) (-want +got):\n%s", tt.file, diff)
			}
			for ino, c := range got {
				if c.Remote.Addr().Is4In6() || c.Local.Addr().Is4In6() {
					t.Errorf("inode %d: %v is IPv4-mapped", ino, c)
				}
			}
		})
	}
}

func TestParseTCPLines(t *testing.T) {
	skipBigEndian(t)
	const head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	tests := []struct {
		name, line string
		want       map[uint64]Conn
	}{
		// Real lines from /proc/net/tcp of the machine the fixtures were modelled on.
		{"established", "   3: 0100007F:08FB 0100007F:D3DC 01 00000000:00000000 02:000AEC5D 00000000     0        0 13382 2 00000000b3b29988 20 4 16 18 -1",
			map[uint64]Conn{13382: conn("127.0.0.1:2299", "127.0.0.1:54236")}},
		{"listening", "   2: 0100007F:08FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 13361 1 000000006ff524df 100 0 0 10 0", nil},
		{"header only", "", nil},
		{"too few fields", "   3: 0100007F:08FB 0100007F:D3DC 01 00000000:00000000 02:000AEC5D 00000000     0        0", nil},
		{"bad local", "   3: 0100007G:08FB 0100007F:D3DC 01 00000000:00000000 02:000AEC5D 00000000     0        0 13382 2", nil},
		{"bad remote port", "   3: 0100007F:08FB 0100007F:D3DCX 01 00000000:00000000 02:000AEC5D 00000000     0        0 13382 2", nil},
		{"bad inode", "   3: 0100007F:08FB 0100007F:D3DC 01 00000000:00000000 02:000AEC5D 00000000     0        0 x 2", nil},
	}
	for _, tt := range tests {
		got := map[uint64]Conn{}
		parseTCP([]byte(head+tt.line+"\n"), got)
		if len(tt.want) == 0 && len(got) == 0 {
			continue
		}
		if !maps(got, tt.want) {
			t.Errorf("%s: parseTCP = %v, want %v", tt.name, got, tt.want)
		}
	}
	// The first line is the header, whatever it says.
	got := map[uint64]Conn{}
	parseTCP([]byte("   3: 0100007F:08FB 0100007F:D3DC 01 00000000:00000000 02:000AEC5D 00000000     0        0 13382 2\n"), got)
	if len(got) != 0 {
		t.Errorf("the header line was parsed as a socket: %v", got)
	}
}

func maps(a, b map[uint64]Conn) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestParseHexAddrPort(t *testing.T) {
	skipBigEndian(t)
	good := []struct {
		in, want string
	}{
		{"0100007F:0016", "127.0.0.1:22"},
		{"00000000:0000", "0.0.0.0:0"},
		{"0F02000A:FFFF", "10.0.2.15:65535"},
		{"0f02000a:ffff", "10.0.2.15:65535"},
		{"B80D0120000000000000000001000000:0016", "[2001:db8::1]:22"},
		{"0000000000000000FFFF00000100007F:0016", "127.0.0.1:22"},
		{"00000000000000000000000001000000:3039", "[::1]:12345"},
	}
	for _, tt := range good {
		got, ok := parseHexAddrPort(tt.in)
		if !ok || got != netip.MustParseAddrPort(tt.want) {
			t.Errorf("parseHexAddrPort(%q) = %v, %v; want %s", tt.in, got, ok, tt.want)
		}
	}
	for _, in := range []string{
		"", ":", "0100007F", "0100007F:", ":0016", "0100007F:10000", "0100007F:-1", "0100007F:GG",
		"0100007:0016", "01000:0016", "0100007F00:0016", "zz00007F:0016", "0100007F:0016:0016",
		"B80D012000000000000000000100000:0016",
	} {
		if got, ok := parseHexAddrPort(in); ok {
			t.Errorf("parseHexAddrPort(%q) = %v, true; want false", in, got)
		}
	}
}

func TestTCPConns(t *testing.T) {
	skipBigEndian(t)
	got, err := TCPConns(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	var inodes []uint64
	for ino := range got {
		inodes = append(inodes, ino)
	}
	slices.Sort(inodes)
	if want := []uint64{13382, 20001, 20002, 20003, 20004}; !slices.Equal(inodes, want) {
		t.Errorf("TCPConns inodes = %v, want %v", inodes, want)
	}
	// A tree without net/ (or without IPv6) is no error.
	got, err = TCPConns("testdata/nobtime")
	if err != nil || len(got) != 0 {
		t.Errorf("TCPConns without net/ = %v, %v; want empty, nil", got, err)
	}
}

// TestSocketsOfThisProcess reads the real /proc: the test's own listener
// and connection must be found by inode, as Discover finds sshd's socket.
func TestSocketsOfThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("no /proc")
	}
	l, c, _, err := loopbackPair(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lino, cino := inodeOf(t, l.(*net.TCPListener)), inodeOf(t, c.(*net.TCPConn))
	inodes, err := SocketInodes("/proc", os.Getpid())
	if err != nil {
		t.Fatalf("SocketInodes(self): %v", err)
	}
	for _, ino := range []uint64{lino, cino} {
		if !slices.Contains(inodes, ino) {
			t.Errorf("SocketInodes(self) = %v, missing %d", inodes, ino)
		}
	}

	conns, err := TCPConns("/proc")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := conns[cino]
	want := Conn{Local: netip.MustParseAddrPort(c.LocalAddr().String()), Remote: netip.MustParseAddrPort(l.Addr().String())}
	if !ok || got != want {
		t.Errorf("TCPConns[%d] = %v, %v; want %v", cino, got, ok, want)
	}
	if _, ok := conns[lino]; ok {
		t.Errorf("the listening socket %d is listed as a connection", lino)
	}

	if _, err := SocketInodes("/proc", 0x7ffffff0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SocketInodes(no such pid): err = %v, want ErrNotExist", err)
	}
}

// loopbackPair listens on addr and connects to itself: the listener, the
// client's end and the server's end, closed when the test ends. The error
// is Listen's (no such address here).
func loopbackPair(t *testing.T, addr string) (net.Listener, net.Conn, net.Conn, error) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, nil, err
	}
	t.Cleanup(func() { l.Close() })
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return l, c, s, nil
}

func inodeOf(t *testing.T, c interface {
	File() (*os.File, error)
}) uint64 {
	t.Helper()
	f, err := c.File() // a dup of the socket: the same inode
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// BenchmarkTCPConns reads the table of this network namespace while this
// process holds 400 loopback connections (200 SSH logins' worth: both
// ends of each are listed). ns/conn is the cost per connection.
func BenchmarkTCPConns(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Skip(err)
	}
	defer l.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 200 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c, s)
	}
	n := 0
	for b.Loop() {
		m, err := TCPConns("/proc")
		if err != nil {
			b.Fatal(err)
		}
		n = len(m)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/conn")
	b.ReportMetric(float64(n), "conns")
}
