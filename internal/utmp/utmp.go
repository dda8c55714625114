// Package utmp decodes the glibc utmp database (/run/utmp, and the same
// record format in wtmp/btmp) into plain Go values.
//
// It is a pure reader of the binary format: it never writes, creates or
// locks a utmp file, and it knows nothing about sessions, processes or
// policy. Every field is returned exactly as stored. utmp is writable by
// group utmp, so callers must treat each field as untrusted input: strings
// are raw bytes (not sanitized, possibly invalid UTF-8 or full of escape
// sequences) and PID, line and user must be cross-checked against the kernel
// before anything is done with them.
//
// Two record layouts exist (see Layout); Native is the one glibc uses on the
// architecture the program was built for.
package utmp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// Type is ut_type, the kind of a record.
type Type int16

// Values of ut_type (glibc bits/utmp.h).
const (
	Empty        Type = 0 // EMPTY: no valid information
	RunLevel     Type = 1 // RUN_LVL: system run level changed
	BootTime     Type = 2 // BOOT_TIME: time of system boot
	NewTime      Type = 3 // NEW_TIME: time after the clock changed
	OldTime      Type = 4 // OLD_TIME: time before the clock changed
	InitProcess  Type = 5 // INIT_PROCESS: process spawned by init
	LoginProcess Type = 6 // LOGIN_PROCESS: getty waiting for a login
	UserProcess  Type = 7 // USER_PROCESS: a logged-in user
	DeadProcess  Type = 8 // DEAD_PROCESS: terminated process / ended session
	Accounting   Type = 9 // ACCOUNTING
)

var typeNames = [...]string{
	"EMPTY", "RUN_LVL", "BOOT_TIME", "NEW_TIME", "OLD_TIME",
	"INIT_PROCESS", "LOGIN_PROCESS", "USER_PROCESS", "DEAD_PROCESS", "ACCOUNTING",
}

// String returns the C name of t ("USER_PROCESS"), or "Type(N)" for a value
// glibc does not define.
func (t Type) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", int16(t))
}

// Exit is ut_exit, the exit status of a DEAD_PROCESS record.
type Exit struct {
	Termination int16 // e_termination
	Status      int16 // e_exit
}

// Record is one decoded struct utmp.
type Record struct {
	Type Type
	PID  int32 // ut_pid as stored: may be 0, negative, or not a live process

	// The string fields hold the raw bytes of the field up to its first NUL,
	// or the whole field when it has none (32, 4, 32 and 256 bytes). They
	// are NOT sanitized and may contain control bytes and invalid UTF-8.
	Line string // ut_line, the tty without "/dev/" (e.g. "pts/3"), as written
	ID   string // ut_id
	User string // ut_user
	Host string // ut_host

	Exit    Exit
	Session int64 // ut_session

	// Time is ut_tv in the local time zone; the zero Time when both tv_sec
	// and tv_usec are 0. A tv_usec outside [0, 999999] is ignored. In the
	// 384-byte layout tv_sec is read as unsigned 32-bit (as glibc declares it
	// since 2024), so it reaches 2106 rather than wrapping in 2038.
	Time time.Time

	// Addr is ut_addr_v6: an IPv4 address when words 1-3 are zero (the
	// address is then in word 0, in network byte order), an IPv6 address
	// otherwise (IPv4-mapped addresses are left mapped), and the zero
	// (invalid) Addr when all 16 bytes are zero. As in who and last, an IPv6
	// address whose last 12 bytes are zero is indistinguishable from IPv4.
	Addr netip.Addr
}

// ErrTruncated reports data that ends inside a record.
var ErrTruncated = errors.New("utmp: truncated record")

// MaxFileSize is the largest file ReadFile accepts (64 MiB, about 170,000
// records); /run/utmp holds one record per terminal line.
const MaxFileSize = 64 << 20

// Decode decodes the record at the start of b, which must hold at least
// l.Size bytes; bytes after the record are ignored. A short b gives an error
// wrapping ErrTruncated. Decode allocates only the returned strings (at most
// one allocation per record).
func Decode(b []byte, l Layout) (Record, error) {
	var r Record
	if err := l.valid(); err != nil {
		return r, err
	}
	if len(b) < l.Size {
		return r, fmt.Errorf("utmp: %d bytes, a %v record needs %d: %w", len(b), l, l.Size, ErrTruncated)
	}
	decode(&r, b[:l.Size], l)
	return r, nil
}

// Parse decodes every whole record in data. When len(data) is not a
// multiple of l.Size the trailing partial record is dropped and the whole
// records are returned together with an error wrapping ErrTruncated.
// Empty data gives no records and no error.
//
// Parse makes three allocations whatever the number of records: the slice,
// a scratch slice, and one buffer that backs the strings of all records
// (so a string kept from any record keeps that whole buffer alive: at most
// 324 bytes per record).
func Parse(data []byte, l Layout) ([]Record, error) {
	if err := l.valid(); err != nil {
		return nil, err
	}
	n := len(data) / l.Size
	var err error
	if rest := len(data) % l.Size; rest != 0 {
		err = fmt.Errorf("utmp: %d bytes is not a multiple of the %v record size; dropped the last %d bytes: %w",
			len(data), l, rest, ErrTruncated)
	}
	if n == 0 {
		return nil, err
	}
	recs := make([]Record, n)
	// All strings of all records share one allocation: the first pass
	// decodes the numeric fields and measures the strings, the second
	// copies them into one buffer, the third slices it.
	lens := make([]uint16, 4*n)
	total := 0
	for i := range recs {
		b := data[i*l.Size : (i+1)*l.Size]
		decodeFixed(&recs[i], b, l)
		for j, f := range fields {
			k := len(cstr(b[f.off : f.off+f.size]))
			lens[4*i+j] = uint16(k)
			total += k
		}
	}
	if total == 0 {
		return recs, err
	}
	var sb strings.Builder
	sb.Grow(total)
	for i := range recs {
		b := data[i*l.Size:]
		for j, f := range fields {
			sb.Write(b[f.off : f.off+int(lens[4*i+j])])
		}
	}
	s, at := sb.String(), 0
	for i := range recs {
		r, ln := &recs[i], lens[4*i:4*i+4]
		r.Line, at = s[at:at+int(ln[0])], at+int(ln[0])
		r.ID, at = s[at:at+int(ln[1])], at+int(ln[1])
		r.User, at = s[at:at+int(ln[2])], at+int(ln[2])
		r.Host, at = s[at:at+int(ln[3])], at+int(ln[3])
	}
	return recs, err
}

// fields are the string fields in the order Line, ID, User, Host.
var fields = [4]struct{ off, size int }{
	{offLine, lineSize}, {offID, idSize}, {offUser, userSize}, {offHost, hostSize},
}

// ReadFile reads and parses the utmp file at path in the Native layout.
// See ReadFileLayout.
func ReadFile(path string) ([]Record, error) {
	return ReadFileLayout(path, Native)
}

// ReadFileLayout reads the file at path in one go and parses it like Parse.
//
// A missing file gives an error satisfying errors.Is(err, fs.ErrNotExist):
// hosts without utmp are normal. The file is opened non-blocking and read
// without taking any lock (a reader that waits for glibc's fcntl lock can be
// stalled forever by anyone holding it), so a concurrent writer may leave a
// torn record; callers validate records anyway. Files that are not regular
// files, or larger than MaxFileSize, are refused.
func ReadFileLayout(path string, l Layout) ([]Record, error) {
	if err := l.valid(); err != nil {
		return nil, err
	}
	// O_NONBLOCK: a FIFO planted at the path must not hang the open.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("utmp: %s: %s, not a utmp file", path, fileKind(fi.Mode()))
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("utmp: %s: file is %d bytes, more than the %d-byte limit", path, fi.Size(), MaxFileSize)
	}
	// Read one byte past the limit so a file that grew since Stat is caught.
	buf := make([]byte, 0, fi.Size()+1)
	data, err := readAll(io.LimitReader(f, MaxFileSize+1), buf)
	if err != nil {
		return nil, fmt.Errorf("utmp: %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("utmp: %s: file grew past the %d-byte limit while being read", path, MaxFileSize)
	}
	recs, err := Parse(data, l)
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return recs, err
}

// readAll is io.ReadAll into a caller-sized buffer.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// cstr returns field up to its first NUL, or all of it.
func cstr(field []byte) []byte {
	if i := bytes.IndexByte(field, 0); i >= 0 {
		return field[:i]
	}
	return field
}

// decode fills r from b, which holds exactly one record of layout l. The
// four strings share one allocation.
func decode(r *Record, b []byte, l Layout) {
	decodeFixed(r, b, l)
	line := cstr(b[offLine : offLine+lineSize])
	id := cstr(b[offID : offID+idSize])
	user := cstr(b[offUser : offUser+userSize])
	host := cstr(b[offHost : offHost+hostSize])
	r.Line, r.ID, r.User, r.Host = "", "", "", ""
	if n := len(line) + len(id) + len(user) + len(host); n > 0 {
		var sb strings.Builder
		sb.Grow(n)
		sb.Write(line)
		sb.Write(id)
		sb.Write(user)
		sb.Write(host)
		s := sb.String()
		r.Line, s = s[:len(line)], s[len(line):]
		r.ID, s = s[:len(id)], s[len(id):]
		r.User, r.Host = s[:len(user)], s[len(user):]
	}
}

// decodeFixed fills every field of r except the strings.
func decodeFixed(r *Record, b []byte, l Layout) {
	o := l.Order
	r.Type = Type(int16(o.Uint16(b[offType:])))
	r.PID = int32(o.Uint32(b[offPID:]))
	r.Exit = Exit{Termination: int16(o.Uint16(b[offExitTerm:])), Status: int16(o.Uint16(b[offExitCode:]))}

	var sec, usec int64
	if l.wide {
		r.Session = int64(o.Uint64(b[offSession:]))
		sec = int64(o.Uint64(b[l.tvSec:]))
		usec = int64(o.Uint64(b[l.tvUsec:]))
	} else {
		r.Session = int64(int32(o.Uint32(b[offSession:])))
		sec = int64(o.Uint32(b[l.tvSec:])) // unsigned: see Record.Time
		usec = int64(int32(o.Uint32(b[l.tvUsec:])))
	}
	if usec < 0 || usec >= 1e6 {
		usec = 0
	}
	if sec == 0 && usec == 0 {
		r.Time = time.Time{}
	} else {
		r.Time = time.Unix(sec, usec*1e3)
	}

	r.Addr = decodeAddr(b[l.addr : l.addr+addrSize])
}

// decodeAddr interprets ut_addr_v6. The address bytes are stored in network
// order whatever the host byte order, so no Order is involved.
func decodeAddr(a []byte) netip.Addr {
	if allZero(a[4:16]) {
		if allZero(a[0:4]) {
			return netip.Addr{}
		}
		return netip.AddrFrom4([4]byte(a[0:4]))
	}
	return netip.AddrFrom16([16]byte(a))
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Encode is the inverse of Decode: it returns r as one record of layout l.
// Strings longer than their field are truncated (and then stored without a
// NUL); Session and Time are truncated to 32 bits in the 384-byte layout;
// the zero Time is stored as 0; a zone on Addr is dropped. It is meant for
// fixtures, tests and benchmarks. Encode panics on an invalid Layout.
func Encode(r Record, l Layout) []byte {
	if err := l.valid(); err != nil {
		panic(err)
	}
	b := make([]byte, l.Size)
	o := l.Order
	o.PutUint16(b[offType:], uint16(r.Type))
	o.PutUint32(b[offPID:], uint32(r.PID))
	copy(b[offLine:offLine+lineSize], r.Line)
	copy(b[offID:offID+idSize], r.ID)
	copy(b[offUser:offUser+userSize], r.User)
	copy(b[offHost:offHost+hostSize], r.Host)
	o.PutUint16(b[offExitTerm:], uint16(r.Exit.Termination))
	o.PutUint16(b[offExitCode:], uint16(r.Exit.Status))

	var sec, usec int64
	if !r.Time.IsZero() {
		sec, usec = r.Time.Unix(), int64(r.Time.Nanosecond()/1e3)
	}
	if l.wide {
		o.PutUint64(b[offSession:], uint64(r.Session))
		o.PutUint64(b[l.tvSec:], uint64(sec))
		o.PutUint64(b[l.tvUsec:], uint64(usec))
	} else {
		o.PutUint32(b[offSession:], uint32(r.Session))
		o.PutUint32(b[l.tvSec:], uint32(sec))
		o.PutUint32(b[l.tvUsec:], uint32(usec))
	}

	switch {
	case r.Addr.Is4():
		a := r.Addr.As4()
		copy(b[l.addr:], a[:])
	case r.Addr.Is6():
		a := r.Addr.As16()
		copy(b[l.addr:], a[:])
	}
	return b
}

// fileKind names what a path is, for a person.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "is a directory"
	case m&os.ModeNamedPipe != 0:
		return "is a FIFO"
	case m&os.ModeSocket != 0:
		return "is a socket"
	case m&os.ModeCharDevice != 0:
		return "is a character device"
	case m&os.ModeDevice != 0:
		return "is a block device"
	}
	return "is not a regular file"
}
