package utmp

import (
	"encoding/binary"
	"fmt"
)

// Field offsets and sizes shared by both layouts (glibc bits/utmp.h).
const (
	offType     = 0   // short ut_type, then 2 bytes of padding
	offPID      = 4   // pid_t ut_pid
	offLine     = 8   // char ut_line[UT_LINESIZE]
	offID       = 40  // char ut_id[4]
	offUser     = 44  // char ut_user[UT_NAMESIZE]
	offHost     = 76  // char ut_host[UT_HOSTSIZE]
	offExitTerm = 332 // short ut_exit.e_termination
	offExitCode = 334 // short ut_exit.e_exit
	offSession  = 336 // int32_t or long ut_session

	lineSize = 32 // UT_LINESIZE
	idSize   = 4
	userSize = 32  // UT_NAMESIZE
	hostSize = 256 // UT_HOSTSIZE
	addrSize = 16  // int32_t ut_addr_v6[4]
)

// Layout describes one on-disk form of glibc's struct utmp: its size, its
// byte order and where the fields that depend on the word size live.
//
// Only two shapes exist on Linux/glibc:
//
//   - 384 bytes where __WORDSIZE_TIME64_COMPAT32 is set (amd64, 386, arm,
//     riscv64, ppc64(le), s390x, mips*): ut_session is an int32_t and ut_tv
//     holds two 32-bit fields, so 32- and 64-bit programs share the file.
//   - 400 bytes on arm64 and loong64, where it is not: ut_session is a long
//     and ut_tv a struct timeval (two int64), and the struct is padded to a
//     multiple of 8.
//
// The zero Layout is invalid; use Layout384, Layout400, Native or
// Layout.WithOrder.
type Layout struct {
	// Size is the size of one record in bytes (384 or 400).
	Size int
	// Order is the byte order of the integer fields.
	Order binary.ByteOrder

	wide    bool // ut_session and ut_tv fields are 64-bit
	tvSec   int  // offset of ut_tv.tv_sec
	tvUsec  int  // offset of ut_tv.tv_usec
	addr    int  // offset of ut_addr_v6
	reserve int  // offset of __glibc_reserved[20]
}

var (
	// Layout384 is the little-endian 384-byte record (amd64, 386, arm,
	// riscv64, ppc64le, mipsle, mips64le).
	Layout384 = Layout{Size: 384, Order: binary.LittleEndian, tvSec: 340, tvUsec: 344, addr: 348, reserve: 364}
	// Layout400 is the little-endian 400-byte record (arm64, loong64).
	Layout400 = Layout{Size: 400, Order: binary.LittleEndian, wide: true, tvSec: 344, tvUsec: 352, addr: 360, reserve: 376}
)

// WithOrder returns l with its integers read and written in byte order o
// (binary.BigEndian for s390x, ppc64 and big-endian mips).
func (l Layout) WithOrder(o binary.ByteOrder) Layout {
	l.Order = o
	return l
}

// String describes the layout, e.g. "384-byte LittleEndian".
func (l Layout) String() string {
	if l.Order == nil {
		return fmt.Sprintf("%d-byte (no byte order)", l.Size)
	}
	return fmt.Sprintf("%d-byte %s", l.Size, l.Order)
}

func (l Layout) valid() error {
	if l.Order == nil || l.tvSec == 0 || (l.Size != 384 && l.Size != 400) || l.reserve+20 > l.Size {
		return fmt.Errorf("utmp: invalid layout %v (use Layout384, Layout400 or Native)", l)
	}
	return nil
}

// nativeOrder returns binary.LittleEndian or binary.BigEndian, whichever
// this machine uses, as a comparable concrete value.
func nativeOrder() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}
