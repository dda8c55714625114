// Package proc reads a snapshot of the Linux process table from a /proc tree:
// for every process its identity (pid and start time), parent, process group,
// session, controlling terminal, uids and name. The root of the tree is a
// parameter, so tests read committed fixture trees.
//
// proc only reads. It never signals a process and knows nothing of login
// sessions or policy; the session package builds sessions from a Snapshot.
//
// It parses /proc itself rather than through prometheus/procfs: a listing
// reads stat and status of every process on hosts with thousands of them, and
// procfs parses stat with fmt.Fscan and re-reads /proc/stat for the boot time
// on every StartTime call (research/go-ecosystem.md §2), several times slower
// than the two small reads done here.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ClockTicks is USER_HZ, the unit of start times in /proc/PID/stat. The kernel
// exports it as 100 on every architecture Linux supports today.
const ClockTicks = 100

// pfKthread is PF_KTHREAD in the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// Process is one process as /proc showed it at scan time.
type Process struct {
	PID, PPID, PGRP, SID, TPGID int
	// TTY is the controlling terminal's device number (tty_nr), 0 for none.
	TTY uint64
	// State is the one-letter state from stat: R, S, D, Z, T, t, X, I…
	State byte
	// Comm is the kernel's name of the process (at most 15 bytes), raw.
	Comm string
	// Start is the start time in clock ticks since boot: with PID it names
	// the process for its whole life, whatever the PID is later reused for.
	Start uint64
	// Flags is the kernel's per-process flags word.
	Flags uint64
	// UTime and STime are CPU time in clock ticks.
	UTime, STime uint64
	// UID and EUID are the real and effective user ids, from status.
	// -1 when status could not be read.
	UID, EUID int
}

// Zombie reports whether the process has exited and waits to be reaped.
func (p *Process) Zombie() bool { return p.State == 'Z' || p.State == 'X' }

// KernelThread reports whether the process is a kernel thread.
func (p *Process) KernelThread() bool { return p.Flags&pfKthread != 0 || p.PID == 2 || p.PPID == 2 }

// Ident is the identity of a process that survives PID reuse.
type Ident struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start_ticks"`
}

// Ident returns p's identity.
func (p *Process) Ident() Ident { return Ident{PID: p.PID, Start: p.Start} }

// Snapshot is the process table at one moment.
type Snapshot struct {
	Root     string
	BootTime time.Time
	Procs    map[int]*Process
	// Denied counts reads refused for lack of permission (a normal user
	// cannot read every file of other users' processes).
	Denied int
	// Unreadable counts processes whose files could not be parsed.
	Unreadable int

	children map[int][]*Process
	cmdlines map[int]string
}

// ErrGone means the process exited (or its PID is not in use) when it was read.
var ErrGone = errors.New("process is gone")

// Scan reads every process under root (normally "/proc").
func Scan(root string) (*Snapshot, error) {
	boot, err := readBootTime(root)
	if err != nil {
		return nil, err
	}
	d, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("read process table: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("read process table %s: %w", root, err)
	}
	s := &Snapshot{Root: root, BootTime: boot, Procs: make(map[int]*Process, len(names))}
	buf := make([]byte, 4096)
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 {
			continue
		}
		p, err := readProcess(root, pid, buf)
		switch {
		case err == nil:
			s.Procs[pid] = p
		case errors.Is(err, ErrGone):
			// Vanished between the directory listing and the read: normal.
		case errors.Is(err, fs.ErrPermission):
			s.Denied++
		default:
			// One unreadable or malformed entry must not hide every
			// other session: count it, say so, go on.
			s.Unreadable++
		}
	}
	return s, nil
}

// Read reads one process afresh, for verifying an identity just before acting.
func Read(root string, pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	return readProcess(root, pid, make([]byte, 4096))
}

func readProcess(root string, pid int, buf []byte) (*Process, error) {
	dir := root + "/" + strconv.Itoa(pid)
	b, err := readInto(dir+"/stat", buf)
	if err != nil {
		return nil, gone(pid, err)
	}
	p, err := ParseStat(b)
	if err != nil {
		return nil, fmt.Errorf("%s/stat: %w", dir, err)
	}
	p.UID, p.EUID = -1, -1
	if b, err := readInto(dir+"/status", buf); err == nil {
		p.UID, p.EUID = parseStatusUIDs(b)
	} else if errors.Is(gone(pid, err), ErrGone) {
		return nil, gone(pid, err)
	}
	return p, nil
}

// gone maps the errors of a process that exited to ErrGone.
func gone(pid int, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	return err
}

// readInto reads a small /proc file into buf (growing it if needed) with
// plain syscalls: os.ReadFile's stat and allocation per call cost more than
// the read itself on a scan of thousands of processes.
func readInto(path string, buf []byte) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			return readAllSlow(path)
		}
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
}

func readAllSlow(path string) ([]byte, error) { return os.ReadFile(path) }

// ParseStat parses the contents of /proc/PID/stat. The name is taken from
// between the first '(' and the last ')': a process may call itself anything,
// including ") R 1 1 1".
func ParseStat(b []byte) (*Process, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open {
		return nil, errors.New("malformed stat: no (comm)")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return nil, fmt.Errorf("malformed stat pid: %w", err)
	}
	p := &Process{PID: pid, Comm: string(b[open+1 : closing])}
	rest := b[closing+1:]
	// Fields after the name, numbered as in proc_pid_stat(5) from 3.
	field := 3
	for len(rest) > 0 && field <= 22 {
		for len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		tok := bytes.TrimRight(rest[:end], "\n")
		rest = rest[end:]
		if len(tok) == 0 {
			continue
		}
		switch field {
		case 3:
			p.State = tok[0]
		case 4:
			p.PPID = atoi(tok)
		case 5:
			p.PGRP = atoi(tok)
		case 6:
			p.SID = atoi(tok)
		case 7:
			p.TTY = uint64(uint32(atoi(tok)))
		case 8:
			p.TPGID = atoi(tok)
		case 9:
			p.Flags = atou(tok)
		case 14:
			p.UTime = atou(tok)
		case 15:
			p.STime = atou(tok)
		case 22:
			p.Start = atou(tok)
		}
		field++
	}
	if field <= 22 {
		return nil, errors.New("malformed stat: too few fields")
	}
	return p, nil
}

func atoi(b []byte) int {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

func atou(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

func parseStatusUIDs(b []byte) (uid, euid int) {
	i := bytes.Index(b, []byte("\nUid:"))
	if i < 0 {
		return -1, -1
	}
	line := b[i+5:]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line)
	if len(f) < 2 {
		return -1, -1
	}
	return atoi(f[0]), atoi(f[1])
}

func readBootTime(root string) (time.Time, error) {
	b, err := os.ReadFile(root + "/stat")
	if err != nil {
		return time.Time{}, fmt.Errorf("read boot time: %w", err)
	}
	i := bytes.Index(b, []byte("btime "))
	if i < 0 {
		return time.Time{}, fmt.Errorf("read boot time: no btime in %s/stat", root)
	}
	line := b[i+6:]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	return time.Unix(int64(atou(line)), 0), nil
}

// StartTime converts a start time in clock ticks to wall-clock time.
func (s *Snapshot) StartTime(ticks uint64) time.Time {
	return s.BootTime.Add(time.Duration(ticks) * (time.Second / ClockTicks))
}

// Children returns the live children of pid.
func (s *Snapshot) Children(pid int) []*Process {
	if s.children == nil {
		s.children = make(map[int][]*Process, len(s.Procs))
		for _, p := range s.Procs {
			s.children[p.PPID] = append(s.children[p.PPID], p)
		}
	}
	return s.children[pid]
}

// Descendants returns pid's descendants, depth first (pid itself excluded).
func (s *Snapshot) Descendants(pid int) []*Process {
	var out []*Process
	seen := map[int]bool{pid: true}
	var walk func(int)
	walk = func(p int) {
		for _, c := range s.Children(p) {
			if seen[c.PID] {
				continue
			}
			seen[c.PID] = true
			out = append(out, c)
			walk(c.PID)
		}
	}
	walk(pid)
	return out
}

// IsAncestor reports whether anc is pid or one of pid's ancestors.
func (s *Snapshot) IsAncestor(anc, pid int) bool {
	for i := 0; i < 4096 && pid > 0; i++ {
		if pid == anc {
			return true
		}
		p := s.Procs[pid]
		if p == nil {
			return false
		}
		pid = p.PPID
	}
	return false
}

// Cmdline returns the process's command line with arguments joined by
// spaces, or "" for kernel threads, zombies and unreadable processes. It is
// read on first use and cached.
func (s *Snapshot) Cmdline(pid int) string {
	if c, ok := s.cmdlines[pid]; ok {
		return c
	}
	if s.cmdlines == nil {
		s.cmdlines = map[int]string{}
	}
	c := ReadCmdline(s.Root, pid)
	s.cmdlines[pid] = c
	return c
}

// ReadCmdline reads /proc/PID/cmdline. Programs that rewrite their argv
// area (sshd's setproctitle) leave a title padded with NULs or spaces.
func ReadCmdline(root string, pid int) string {
	b, err := readInto(root+"/"+strconv.Itoa(pid)+"/cmdline", make([]byte, 4096))
	if err != nil {
		return ""
	}
	b = bytes.TrimRight(b, "\x00 ")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// Getenv returns one variable from the process's initial environment.
// Reading another user's environment needs root; a refusal is reported as
// fs.ErrPermission.
func Getenv(root string, pid int, key string) (string, error) {
	b, err := os.ReadFile(root + "/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return "", err
	}
	prefix := key + "="
	for _, kv := range bytes.Split(b, []byte{0}) {
		if bytes.HasPrefix(kv, []byte(prefix)) {
			return string(kv[len(prefix):]), nil
		}
	}
	return "", nil
}
