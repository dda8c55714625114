package proc

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// maxFDs bounds how many file descriptors SocketInodes looks at: sshd holds
// a handful; a process with a million must not cost a million readlinks.
const maxFDs = 1024

// SocketInodes returns the inode numbers of the sockets process pid has
// open, among its first 1024 file descriptors. Reading another user's file
// descriptors needs root; a refusal is returned as an error satisfying
// errors.Is(err, fs.ErrPermission).
func SocketInodes(root string, pid int) ([]uint64, error) {
	var out []uint64
	err := Sockets(root, pid, func(ino uint64) bool {
		out = append(out, ino)
		return true
	})
	return out, err
}

// Sockets calls yield with the inode of each socket process pid has open,
// in the order of its first 1024 file descriptors, until yield returns
// false: a caller that finds what it looks for stops reading links (one
// system call per descriptor). Errors as SocketInodes'.
func Sockets(root string, pid int, yield func(ino uint64) bool) error {
	dir := root + "/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(maxFDs)
	d.Close()
	if err != nil && err != io.EOF {
		return err
	}
	// Descriptor order, so the answer does not depend on the directory's.
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(atoi([]byte(a)), atoi([]byte(b))) })
	for _, n := range names {
		target, err := os.Readlink(dir + "/" + n)
		if err != nil {
			continue
		}
		if v, ok := strings.CutPrefix(target, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 64); err == nil {
				if !yield(ino) {
					return nil
				}
			}
		}
	}
	return nil
}

// Conn is one TCP socket from /proc/net/tcp or tcp6.
type Conn struct {
	Local, Remote netip.AddrPort
}

// Exe returns the target of /proc/PID/exe: the path of the program the
// process runs (with " (deleted)" when that file was replaced). Reading
// another user's needs root.
func Exe(root string, pid int) (string, error) {
	return os.Readlink(root + "/" + strconv.Itoa(pid) + "/exe")
}

// SocketsOf is what SocketInodes said of one process.
type SocketsOf struct {
	Inodes []uint64
	Err    error
}

// ReadSocketInodes reads SocketInodes of each of pids with a few
// goroutines, and runs also (if not nil) alongside them.
func ReadSocketInodes(root string, pids []int, also func()) []SocketsOf {
	out := make([]SocketsOf, len(pids))
	done := make(chan struct{})
	if also != nil {
		go func() { also(); close(done) }()
	} else {
		close(done)
	}
	each(len(pids), func(i int) { out[i].Inodes, out[i].Err = SocketInodes(root, pids[i]) })
	<-done
	return out
}

// ReadExes reads Exe of each of pids with a few goroutines: the programs
// of those it could read (reading another user's needs root).
func ReadExes(root string, pids []int) map[int]string {
	got := make([]string, len(pids))
	ok := make([]bool, len(pids))
	each(len(pids), func(i int) {
		e, err := Exe(root, pids[i])
		got[i], ok[i] = e, err == nil
	})
	out := make(map[int]string, len(pids))
	for i, pid := range pids {
		if ok[i] {
			out[pid] = got[i]
		}
	}
	return out
}

// TCPTables are the files of /proc/net that list TCP sockets, IPv4 first.
var TCPTables = []string{"tcp", "tcp6"}

// TCPConns reads the established TCP sockets of the reader's network
// namespace, by socket inode. The files are read as a stream: users can
// make them large (every socket is a line), never this program's memory.
func TCPConns(root string) (map[uint64]Conn, error) {
	out := map[uint64]Conn{}
	for _, t := range TCPTables {
		if err := ReadTCPTable(root, t, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadTCPTable adds the established sockets of one of TCPTables to out. A
// table that does not exist (no IPv6) adds nothing. Each read costs the
// kernel a walk of its whole established-socket hash (262,144 buckets on a
// host of 24 GB: milliseconds), whatever the number of sockets.
func ReadTCPTable(root, table string, out map[uint64]Conn) error {
	fh, err := os.Open(root + "/net/" + table)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer fh.Close()
	parseTCPFrom(fh, out)
	return nil
}

func parseTCP(b []byte, out map[uint64]Conn) { parseTCPFrom(bytes.NewReader(b), out) }

func parseTCPFrom(r io.Reader, out map[uint64]Conn) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), 4096)
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
