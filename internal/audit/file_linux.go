package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnsafeFile means the audit file, or its directory, could be changed
// or redirected by someone other than root (or the caller): a symbolic
// link, a FIFO or device, a file another user owns or may write, a
// directory others may write.
var ErrUnsafeFile = errors.New("unsafe audit log")

// openFile opens path for appending records as root would trust it. The
// directory is opened first and checked, then the file is opened relative
// to it without following a symbolic link (O_NOFOLLOW) and without
// blocking (O_NONBLOCK: a FIFO with no reader fails at once instead of
// hanging the kick), and checked through the descriptor, so nothing can
// be swapped between check and use.
func openFile(path string) (*os.File, error) {
	dir, base := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	if base == "" || base == "." || base == ".." || base == "/" {
		return nil, fmt.Errorf("audit log %s: not a file name", path)
	}
	me := uint32(os.Geteuid())
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: directory %s: %w", path, dir, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		return nil, fmt.Errorf("audit log %s: directory %s: %w", path, dir, err)
	}
	switch {
	case st.Uid != 0 && st.Uid != me:
		return nil, fmt.Errorf("audit log %s: directory %s belongs to uid %d, who could replace the file: %w; use a directory of root's", path, dir, st.Uid, ErrUnsafeFile)
	case st.Mode&0o002 != 0:
		return nil, fmt.Errorf("audit log %s: directory %s is writable by every user, who could replace the file: %w; use a directory only root can write", path, dir, ErrUnsafeFile)
	case st.Mode&0o020 != 0 && st.Gid != 0:
		return nil, fmt.Errorf("audit log %s: directory %s is writable by group %d, who could replace the file: %w; use a directory only root can write", path, dir, st.Gid, ErrUnsafeFile)
	}
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0o640)
	if err != nil {
		switch {
		case errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("audit log %s is a symbolic link: %w; name the file itself", path, ErrUnsafeFile)
		case errors.Is(err, unix.ENXIO):
			return nil, fmt.Errorf("audit log %s is a FIFO or socket, not a file: %w", path, ErrUnsafeFile)
		}
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	var why string
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		why = "is not a regular file (a FIFO, device or directory)"
	case st.Uid != 0 && st.Uid != me:
		why = fmt.Sprintf("belongs to uid %d, who could change or empty it", st.Uid)
	case st.Mode&0o002 != 0:
		why = "is writable by every user"
	case st.Mode&0o020 != 0 && st.Gid != 0:
		why = fmt.Sprintf("is writable by group %d", st.Gid)
	}
	if why != "" {
		f.Close()
		return nil, fmt.Errorf("audit log %s %s: %w; use a file only root can write", path, why, ErrUnsafeFile)
	}
	return f, nil
}
