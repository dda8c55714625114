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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
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

	// The process tree in depth-first order, built once on first use:
	// order[span[pid].first] is pid, and its descendants are
	// order[first+1 : end]. Every walk of a subtree is a slice of it.
	order []*Process
	span  map[int]span
}

type span struct{ first, end int32 }

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
	owner := onProcfs(root)
	// Each process costs four system calls or more, and system calls are
	// dear on a VM: on a big host the table is read by a few goroutines,
	// each over its own share of the names (results do not depend on it).
	workers := min(runtime.GOMAXPROCS(0), 4, 1+len(names)/scanShare)
	parts := make([]scanPart, workers)
	var wg sync.WaitGroup
	for w := range parts {
		wg.Go(func() {
			parts[w].scan(root, names[w*len(names)/workers:(w+1)*len(names)/workers], owner)
		})
	}
	wg.Wait()
	for _, part := range parts {
		for _, p := range part.procs {
			s.Procs[p.PID] = p
		}
		s.Denied += part.denied
		s.Unreadable += part.unreadable
	}
	return s, nil
}

// scanShare is how many /proc entries make it worth another goroutine.
const scanShare = 256

// scanPart is what one goroutine of Scan read.
type scanPart struct {
	procs              []*Process
	denied, unreadable int
}

func (sp *scanPart) scan(root string, names []string, owner bool) {
	buf := make([]byte, statusMax)
	sp.procs = make([]*Process, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(n)
		if err != nil || pid <= 0 {
			continue
		}
		p, err := readProcess(root, pid, buf, owner)
		switch {
		case err == nil:
			sp.procs = append(sp.procs, p)
		case errors.Is(err, ErrGone):
			// Vanished between the directory listing and the read: normal.
		case errors.Is(err, fs.ErrPermission):
			sp.denied++
		default:
			// One unreadable or malformed entry must not hide every
			// other session: count it, say so, go on.
			sp.unreadable++
		}
	}
}

// Read reads one process afresh, for verifying an identity just before acting.
func Read(root string, pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	return readProcess(root, pid, make([]byte, statusMax), onProcfs(root))
}

// Bounds of the reads of /proc files. Every file a user can make large
// (command line, environment) is read up to a bound, never whole: 301
// processes sharing one 2 MB argv must not cost 600 MB.
const (
	statMax    = 1024 // stat: ~300 bytes (comm is at most 15 bytes)
	statusMax  = 4096 // status: ~1.5 KiB
	CmdlineMax = 4096 // what Cmdline returns at most, as ps shows a few KiB
	environMax = 32 << 10
	cgroupMax  = 4096
)

// readProcess reads one process. With owner (a real procfs), the uids come
// from the owner of /proc/PID/stat (fstat on the open file, no second
// file): the kernel makes a process's files owned by its effective uid —
// except when the process is not dumpable (setuid programs, sshd,
// ssh-agent), when they are owned by root. So a root-owned process that is
// no kernel thread has its status read for the real uids; every other
// process costs one open, one fstat, one read. Without owner (a fixture
// tree, whose file owners mean nothing) status is always read.
func readProcess(root string, pid int, buf []byte, owner bool) (*Process, error) {
	dir := root + "/" + strconv.Itoa(pid)
	b, st, err := readStat(dir+"/stat", buf[:statMax], owner)
	if err != nil {
		return nil, gone(pid, err)
	}
	p, err := ParseStat(b)
	if err != nil {
		return nil, fmt.Errorf("%s/stat: %w", dir, err)
	}
	p.UID, p.EUID = -1, -1
	if owner {
		if st.Uid != 0 {
			p.UID, p.EUID = int(st.Uid), int(st.Uid)
			return p, nil
		}
		if p.KernelThread() {
			p.UID, p.EUID = 0, 0
			return p, nil
		}
	}
	if b, err := readBounded(dir+"/status", buf, statusMax, owner); err == nil {
		p.UID, p.EUID = parseStatusUIDs(b)
	} else if errors.Is(gone(pid, err), ErrGone) {
		return nil, gone(pid, err)
	}
	return p, nil
}

// readStat reads a stat file with a single read (procfs returns the whole
// file at once) and, with owner, fstats it.
func readStat(path string, buf []byte, owner bool) ([]byte, syscall.Stat_t, error) {
	var st syscall.Stat_t
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, st, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	if owner {
		if err := syscall.Fstat(fd, &st); err != nil {
			return nil, st, &fs.PathError{Op: "fstat", Path: path, Err: err}
		}
	}
	n := 0
	for n < len(buf) {
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, st, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
		if owner {
			// procfs: one read gave the whole file.
			break
		}
	}
	return buf[:n], st, nil
}

// procSuperMagic is PROC_SUPER_MAGIC, the f_type of a procfs mount.
const procSuperMagic = 0x9fa0

func isProcfs(root string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(root, &st) == nil && st.Type == procSuperMagic
}

// gone maps the errors of a process that exited to ErrGone.
func gone(pid int, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("pid %d: %w", pid, ErrGone)
	}
	return err
}

// readBounded reads at most max bytes of a /proc file with plain syscalls
// (os.ReadFile's stat and allocation per call cost more than the read
// itself on a scan of thousands of processes), into buf when it is large
// enough. What lies beyond max is never read. With procfs, a short read
// is the end of the file: the kernel fills the whole request when it can
// (status, cmdline, environ, cgroup), which saves the read that would
// return 0 — hundreds of system calls on a listing.
func readBounded(path string, buf []byte, max int, procfs bool) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	if len(buf) < max {
		buf = make([]byte, max)
	}
	buf = buf[:max]
	n := 0
	for {
		if n == len(buf) {
			return buf, nil
		}
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 || (procfs && n+m < len(buf)) {
			return buf[:n+m], nil
		}
		n += m
	}
}

// procfsRoots memoizes isProcfs: a program reads one /proc (or one
// fixture tree) all its life.
var procfsRoots sync.Map

// onProcfs is isProcfs(root), asked of the kernel once per root.
func onProcfs(root string) bool {
	if v, ok := procfsRoots.Load(root); ok {
		return v.(bool)
	}
	v := isProcfs(root)
	procfsRoots.Store(root, v)
	return v
}

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

// Descendants returns pid's descendants, depth first (pid itself
// excluded). The slice is shared with the snapshot: read it, never change
// it. The first call builds the tree once for the whole snapshot (O(n));
// each call after that costs nothing but the slice.
func (s *Snapshot) Descendants(pid int) []*Process {
	lo, hi, ok := s.Subtree(pid)
	if !ok {
		return nil
	}
	return s.order[lo+1 : hi : hi]
}

// Subtree returns where pid and its descendants lie in InOrder():
// InOrder()[lo] is pid, InOrder()[lo+1:hi] its descendants. ok is false
// for a PID not in the snapshot.
func (s *Snapshot) Subtree(pid int) (lo, hi int, ok bool) {
	s.buildTree()
	sp, ok := s.span[pid]
	return int(sp.first), int(sp.end), ok
}

// InOrder returns every process of the snapshot in depth-first order of
// the process tree: each process comes before its descendants, which
// follow it contiguously (see Subtree). Shared: never change it.
func (s *Snapshot) InOrder() []*Process {
	s.buildTree()
	return s.order
}

// buildTree lays the tree out depth first, children in PID order. A
// snapshot read while PIDs were reused may show a parent loop, which no
// root reaches: such a loop is entered at its lowest PID, so every process
// is laid out exactly once.
func (s *Snapshot) buildTree() {
	if s.span != nil {
		return
	}
	s.Children(0) // the children index
	for _, cs := range s.children {
		slices.SortFunc(cs, func(a, b *Process) int { return a.PID - b.PID })
	}
	s.order = make([]*Process, 0, len(s.Procs))
	s.span = make(map[int]span, len(s.Procs))
	type frame struct {
		p    *Process
		next int
	}
	var stack []frame
	visit := func(root *Process) {
		if _, seen := s.span[root.PID]; seen {
			return
		}
		s.span[root.PID] = span{first: int32(len(s.order))}
		s.order = append(s.order, root)
		stack = append(stack[:0], frame{p: root})
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			cs := s.children[top.p.PID]
			if top.next < len(cs) {
				c := cs[top.next]
				top.next++
				if _, seen := s.span[c.PID]; seen || c.PID == top.p.PID {
					continue
				}
				s.span[c.PID] = span{first: int32(len(s.order))}
				s.order = append(s.order, c)
				stack = append(stack, frame{p: c})
				continue
			}
			sp := s.span[top.p.PID]
			sp.end = int32(len(s.order))
			s.span[top.p.PID] = sp
			stack = stack[:len(stack)-1]
		}
	}
	pids := make([]int, 0, len(s.Procs))
	for pid := range s.Procs {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	for _, pid := range pids {
		p := s.Procs[pid]
		if parent := s.Procs[p.PPID]; parent == nil || p.PPID == p.PID {
			visit(p)
		}
	}
	for _, pid := range pids { // parent loops
		visit(s.Procs[pid])
	}
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

// ReadCmdlines reads the command lines of pids (those not read yet) with a
// few goroutines, for Cmdline to answer from then on: a listing reads
// hundreds of sshd titles, each an open, a read and a close.
func (s *Snapshot) ReadCmdlines(pids []int) { s.ReadCmdlinesThen(pids, nil) }

// ReadCmdlinesThen is ReadCmdlines that also calls then(i, cmdline) for
// each pids[i], in the goroutine that read it, right after: a caller that
// reads more of some of the processes does so in the same pass instead of
// another round of goroutines. then runs concurrently with itself.
func (s *Snapshot) ReadCmdlinesThen(pids []int, then func(i int, cmdline string)) {
	got := make([]string, len(pids))
	fresh := make([]bool, len(pids))
	for i, pid := range pids {
		if c, ok := s.cmdlines[pid]; ok {
			got[i] = c
		} else {
			fresh[i] = true
		}
	}
	Each(len(pids), func(i int) {
		if fresh[i] {
			got[i] = ReadCmdline(s.Root, pids[i])
		}
		if then != nil {
			then(i, got[i])
		}
	})
	if s.cmdlines == nil {
		s.cmdlines = make(map[int]string, len(pids))
	}
	for i, pid := range pids {
		if fresh[i] {
			s.cmdlines[pid] = got[i]
		}
	}
}

// Each calls f(0) … f(n-1), from up to GOMAXPROCS goroutines (at most 4)
// when n is large enough to be worth it, and returns when all are done.
func Each(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), 4, 1+n/32)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w * n / workers; i < (w+1)*n/workers; i++ {
				f(i)
			}
		})
	}
	wg.Wait()
}

// ReadCmdline reads /proc/PID/cmdline, at most its first CmdlineMax bytes
// (a command line cut there loses a partial UTF-8 sequence at the end).
// Programs that rewrite their argv area (sshd's setproctitle) leave a
// title padded with NULs or spaces.
func ReadCmdline(root string, pid int) string {
	var buf [CmdlineMax]byte
	b, err := readBounded(root+"/"+strconv.Itoa(pid)+"/cmdline", buf[:], CmdlineMax, onProcfs(root))
	if err != nil {
		return ""
	}
	if len(b) == CmdlineMax {
		b = trimPartialRune(b)
	}
	b = bytes.TrimRight(b, "\x00 ")
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return b
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// Getenv returns one variable from the process's initial environment, as
// far as its first 32 KiB go. The process may have rewritten that area:
// what it says is the process's word, nothing more. Reading another user's
// environment needs root; a refusal is reported as fs.ErrPermission.
func Getenv(root string, pid int, key string) (string, error) {
	b, err := readBounded(root+"/"+strconv.Itoa(pid)+"/environ", nil, environMax, onProcfs(root))
	if err != nil {
		return "", err
	}
	if len(b) == environMax {
		// The last entry may be cut: it is not read.
		if i := bytes.LastIndexByte(b, 0); i >= 0 {
			b = b[:i]
		} else {
			b = nil
		}
	}
	prefix := key + "="
	for _, kv := range bytes.Split(b, []byte{0}) {
		if bytes.HasPrefix(kv, []byte(prefix)) {
			return string(kv[len(prefix):]), nil
		}
	}
	return "", nil
}
