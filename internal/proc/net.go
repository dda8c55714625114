package proc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// SocketInodes returns the inode numbers of the sockets process pid has
// open. Reading another user's file descriptors needs root; a refusal is
// returned as an error satisfying errors.Is(err, fs.ErrPermission).
func SocketInodes(root string, pid int) ([]uint64, error) {
	dir := root + "/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, n := range names {
		target, err := os.Readlink(dir + "/" + n)
		if err != nil {
			continue
		}
		if v, ok := strings.CutPrefix(target, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 64); err == nil {
				out = append(out, ino)
			}
		}
	}
	return out, nil
}

// Conn is one TCP socket from /proc/net/tcp or tcp6.
type Conn struct {
	Local, Remote netip.AddrPort
}

// TCPConns reads the established TCP sockets of the reader's network
// namespace, by socket inode.
func TCPConns(root string) (map[uint64]Conn, error) {
	out := map[uint64]Conn{}
	for _, f := range []string{"/net/tcp", "/net/tcp6"} {
		b, err := os.ReadFile(root + f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		parseTCP(b, out)
	}
	return out, nil
}

func parseTCP(b []byte, out map[uint64]Conn) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 512), 1<<20)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "01" { // 01 = TCP_ESTABLISHED
			continue
		}
		l, ok1 := parseHexAddrPort(f[1])
		r, ok2 := parseHexAddrPort(f[2])
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err != nil || ino == 0 {
			continue
		}
		out[ino] = Conn{Local: l, Remote: r}
	}
}

// parseHexAddrPort parses "0100007F:08FB". The kernel prints the address as
// 32-bit words in host byte order and the port in network order.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, false
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), true
}
