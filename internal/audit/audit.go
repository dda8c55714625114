// Package audit writes one structured record for every action sshkick
// takes or refuses — kicks, dry runs, refusals, messages — as a JSON line:
// to syslog (facility authpriv, which the journal collects) when the host
// has /dev/log, else to a file under /var/log; a path given by the admin
// overrides both.
//
// Records are JSON: every untrusted string (user names, hosts, commands)
// is sanitized and quoted, so no field can forge a second line or an extra
// key. audit never decides anything; it only records.
package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sshkick/sshkick/internal/sanitize"
)

// DefaultFile is where records go on hosts without syslog.
const DefaultFile = "/var/log/sshkick/audit.jsonl"

// Actor is who ran sshkick.
type Actor struct {
	UID  int    `json:"uid"`
	User string `json:"user"`
	// SudoUser is the admin behind sudo (SUDO_USER), when there is one.
	SudoUser string `json:"sudo_user,omitempty"`
	// LoginUID is the audit login uid (/proc/self/loginuid): who logged in,
	// whatever they became since; -1 when unset.
	LoginUID int    `json:"loginuid"`
	PID      int    `json:"pid"`
	TTY      string `json:"tty,omitempty"`
	Command  string `json:"command"`
}

// Logger writes records.
type Logger struct {
	mu    sync.Mutex
	w     io.Writer
	sys   *syslog.Writer
	actor Actor
	// Where says where records go, for messages to the admin.
	Where string
}

// Open opens the audit trail. path "" chooses syslog or DefaultFile.
func Open(path string) (*Logger, error) {
	l := &Logger{actor: currentActor()}
	if path == "" {
		if fi, err := os.Stat("/dev/log"); err == nil && fi.Mode()&os.ModeSocket != 0 {
			w, err := syslog.New(syslog.LOG_AUTHPRIV|syslog.LOG_NOTICE, "sshkick")
			if err == nil {
				l.sys, l.Where = w, "syslog (authpriv)"
				return l, nil
			}
		}
		path = DefaultFile
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	l.w, l.Where = f, path
	return l, nil
}

// NewWriter is a Logger writing to w, for tests.
func NewWriter(w io.Writer) *Logger {
	return &Logger{w: w, actor: currentActor(), Where: "writer"}
}

// Log writes one record: time, event, actor, and the fields of v (a
// struct or map, marshalled as JSON and merged in).
func (l *Logger) Log(event string, v any) error {
	if l == nil {
		return nil
	}
	rec := map[string]any{
		"time":  time.Now().Format(time.RFC3339Nano),
		"event": event,
		"actor": l.actor,
	}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			return err
		}
		for k, x := range fields {
			if _, taken := rec[k]; !taken {
				rec[k] = x
			}
		}
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		return l.sys.Notice(string(line))
	}
	_, err = l.w.Write(append(line, '\n'))
	return err
}

// Close closes the trail.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	if l.sys != nil {
		return l.sys.Close()
	}
	if c, ok := l.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func currentActor() Actor {
	a := Actor{UID: os.Getuid(), PID: os.Getpid(), LoginUID: -1, Command: sanitize.Field(strings.Join(os.Args, " "))}
	a.User = strconv.Itoa(a.UID)
	if u, err := user.LookupId(a.User); err == nil {
		a.User = u.Username
	}
	a.SudoUser = sanitize.Field(os.Getenv("SUDO_USER"))
	if b, err := os.ReadFile("/proc/self/loginuid"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil && n != 4294967295 {
			a.LoginUID = int(n)
		}
	}
	if t, err := os.Readlink("/proc/self/fd/0"); err == nil && (strings.HasPrefix(t, "/dev/pts/") || strings.HasPrefix(t, "/dev/tty")) {
		a.TTY = sanitize.Field(strings.TrimPrefix(t, "/dev/"))
	}
	return a
}
