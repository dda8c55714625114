package proc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// maxFDs bounds how many file descriptors SocketInodes looks at: sshd holds
// a handful; a process with a million must not cost a million readlinks.
const maxFDs = 1024

// direntMax is the size of the largest struct linux_dirent64: 19 bytes of
// header, a name of up to 255 bytes and its NUL, 8-byte aligned.
const direntMax = 280

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
	fds, err := readFDs(dir, onProcfs(root))
	if err != nil {
		return err
	}
	var link [64]byte // "socket:[" + 20 digits + "]"
	for _, fd := range fds {
		n, err := unix.Readlink(dir+"/"+strconv.Itoa(fd), link[:])
		if err != nil {
			continue
		}
		if ino, ok := socketInode(link[:n]); ok && !yield(ino) {
			return nil
		}
	}
	return nil
}

// socketInode parses the target of a descriptor's link, "socket:[INODE]".
func socketInode(target []byte) (uint64, bool) {
	v, ok := bytes.CutPrefix(target, []byte("socket:["))
	if !ok || len(v) < 2 || v[len(v)-1] != ']' {
		return 0, false
	}
	ino, err := strconv.ParseUint(string(v[:len(v)-1]), 10, 64)
	return ino, err == nil
}

// readFDs lists the descriptors in a /proc/PID/fd directory, the first
// maxFDs in the directory's order, sorted, with plain system calls: an
// os.File of a directory costs fcntl and epoll_ctl calls besides, for
// each of the hundreds of sshd processes a listing reads. On procfs the
// kernel stops filling the buffer only when the next entry does not fit,
// so a buffer left with room for a whole entry is the end of the listing.
func readFDs(dir string, procfs bool) ([]int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var buf [4096]byte
	var out []int
	for len(out) < maxFDs {
		n, err := unix.Getdents(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		out = appendDirents(out, buf[:n])
		if procfs && n <= len(buf)-direntMax {
			break
		}
	}
	if len(out) > maxFDs {
		out = out[:maxFDs]
	}
	slices.Sort(out)
	return out, nil
}

// appendDirents appends the numeric names of a buffer of struct
// linux_dirent64 (ino, off, reclen, type, name) to out; "." and ".." and
// anything else not a descriptor number are skipped.
func appendDirents(out []int, b []byte) []int {
	for len(b) >= 19 {
		reclen := int(binary.NativeEndian.Uint16(b[16:]))
		if reclen < 19 || reclen > len(b) {
			break
		}
		name := b[19:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if len(name) > 0 && len(name) <= 10 {
			if v, err := strconv.Atoi(string(name)); err == nil && v >= 0 {
				out = append(out, v)
			}
		}
		b = b[reclen:]
	}
	return out
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

// TCPTables are the files of /proc/net that list TCP sockets, IPv4 first.
var TCPTables = []string{"tcp", "tcp6"}

// tcpFamilies are the address families of TCPTables.
var tcpFamilies = map[string]uint8{"tcp": unix.AF_INET, "tcp6": unix.AF_INET6}

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
//
// On the host's own procfs the sockets come from the kernel's sock_diag
// interface instead (the same walk, in binary; see readTCPDiag), and from
// the file when that is refused.
func ReadTCPTable(root, table string, out map[uint64]Conn) error {
	if fam, ok := tcpFamilies[table]; ok && onProcfs(root) {
		if err := readTCPDiag(fam, out); err == nil {
			return nil
		}
	}
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
