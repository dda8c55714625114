package watch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultLogindSessions is where systemd-logind keeps one file per
// session: it appears when a login starts and goes when it ends.
const DefaultLogindSessions = "/run/systemd/sessions"

// Changes tells the daemon that a login may have begun or ended, so it
// looks at once instead of at its next interval: inotify on the utmp file
// (sshd, login and tmux write a record for every session with a terminal)
// and on logind's session directory (one file per session, terminal or
// not). Neither is required: on a host without utmp (Debian 13) the utmp
// file's directory is watched so the file is seen if it is created, and a
// path missing now is tried again at every Refresh. The periodic rescan
// stays the fallback for what neither shows (a no-tty session on a host
// without logind).
//
// Changes only wakes the daemon; what changed is found by discovery.
type Changes struct {
	// C receives a value when something changed; changes that arrive
	// before the daemon reads C are one value.
	C <-chan struct{}
	c chan struct{}
	f *os.File

	mu      sync.Mutex
	utmp    string
	logind  string
	dirWD   int // the utmp file's directory, -1 until watched
	fileWD  int // the utmp file, -1 until watched
	sessWD  int // logind's session directory, -1 until watched
	closed  bool
	stopped chan struct{}
}

// What a writer of each does on a login or logout. utmp records are
// written in place (pututline: IN_MODIFY); the file itself may be created
// or replaced (IN_CREATE, IN_MOVED_TO in its directory). logind writes a
// session's file to a temporary name and renames it (IN_MOVED_TO) and
// unlinks it when the session ends (IN_DELETE).
const (
	utmpFileMask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	utmpDirMask  = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_ONLYDIR
	sessDirMask  = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_CLOSE_WRITE | unix.IN_ONLYDIR | unix.IN_DELETE_SELF
)

// WatchChanges watches the utmp file at utmp and logind's session
// directory at logind ("" for either: not watched). It fails only when
// inotify itself is unavailable.
func WatchChanges(utmp, logind string) (*Changes, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	c := &Changes{c: make(chan struct{}, 1), f: os.NewFile(uintptr(fd), "inotify"),
		utmp: utmp, logind: logind, dirWD: -1, fileWD: -1, sessWD: -1, stopped: make(chan struct{})}
	c.C = c.c
	c.Refresh()
	go c.read()
	return c, nil
}

// Refresh adds the watches whose paths were missing: the daemon calls it
// at every periodic rescan, so a utmp directory or logind that appears
// later is watched from then on.
func (c *Changes) Refresh() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.utmp != "" {
		if c.dirWD < 0 {
			c.dirWD = c.add(filepath.Dir(c.utmp), utmpDirMask)
		}
		if c.fileWD < 0 {
			c.fileWD = c.add(c.utmp, utmpFileMask)
		}
	}
	if c.logind != "" && c.sessWD < 0 {
		c.sessWD = c.add(c.logind, sessDirMask)
	}
}

// Watching is the paths watched now (for the log and tests).
func (c *Changes) Watching() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var w []string
	if c.fileWD >= 0 {
		w = append(w, c.utmp)
	} else if c.dirWD >= 0 {
		w = append(w, filepath.Dir(c.utmp)+" (for "+filepath.Base(c.utmp)+")")
	}
	if c.sessWD >= 0 {
		w = append(w, c.logind)
	}
	return w
}

func (c *Changes) add(path string, mask uint32) int {
	wd, err := unix.InotifyAddWatch(int(c.f.Fd()), path, mask)
	if err != nil {
		return -1
	}
	return wd
}

// Close stops watching; C is never closed.
func (c *Changes) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	err := c.f.Close() // wakes the reader
	<-c.stopped
	return err
}

func (c *Changes) read() {
	defer close(c.stopped)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := c.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// EINTR and the like: the poller retries; anything else means the
			// descriptor is unusable and the periodic rescan carries on alone.
			if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
				return
			}
			continue
		}
		if c.handle(buf[:n]) {
			select {
			case c.c <- struct{}{}:
			default:
			}
		}
	}
}

// handle parses a read's events and reports whether one of them is a
// change the daemon cares about.
func (c *Changes) handle(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	base := filepath.Base(c.utmp)
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		size := unix.SizeofInotifyEvent + int(ev.Len)
		if size > len(b) {
			break
		}
		var name string
		if ev.Len > 0 {
			name = strings.TrimRight(string(b[unix.SizeofInotifyEvent:size]), "\x00")
		}
		b = b[size:]
		wd := int(ev.Wd)
		switch {
		case ev.Mask&unix.IN_Q_OVERFLOW != 0:
			changed = true
		case wd == c.fileWD && c.fileWD >= 0:
			if ev.Mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
				// Removed or renamed away (a reset of utmp): watch the file that
				// takes its name, when it comes.
				unix.InotifyRmWatch(int(c.f.Fd()), uint32(wd))
				c.fileWD = -1
			}
			changed = true
		case wd == c.dirWD && c.dirWD >= 0:
			if ev.Mask&unix.IN_IGNORED != 0 {
				c.dirWD = -1
				continue
			}
			if name != base {
				continue
			}
			if ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				if c.fileWD >= 0 {
					unix.InotifyRmWatch(int(c.f.Fd()), uint32(c.fileWD))
				}
				c.fileWD = c.add(c.utmp, utmpFileMask)
			}
			changed = true
		case wd == c.sessWD && c.sessWD >= 0:
			if ev.Mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF) != 0 {
				c.sessWD = -1
				changed = true
				continue
			}
			// logind's temporary files (".#…") are renamed into place: the
			// rename is the change.
			if strings.HasPrefix(name, ".") {
				continue
			}
			changed = true
		}
	}
	return changed
}
