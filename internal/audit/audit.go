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
	"bytes"
	"encoding/json"
	"errors"
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
	path  string // the file, when records go to one that Open opened
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
	l.w, l.Where, l.path = f, path, path
	return l, nil
}

// Reopen opens the trail's file again by its name, with the same checks as
// Open, and closes the old one: after logrotate renames the file, records
// go to the new one, not after the renamed one's end. When the file cannot
// be opened, records keep going to the old one and the error says why.
// Syslog and writers are not reopened.
func (l *Logger) Reopen() error {
	if l == nil || l.path == "" {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.w
	l.w = f
	l.mu.Unlock()
	if c, ok := old.(io.Closer); ok {
		c.Close()
	}
	return nil
}

// NewWriter is a Logger writing to w, for tests.
func NewWriter(w io.Writer) *Logger {
	return &Logger{w: w, actor: currentActor(), Where: "writer"}
}

// Event is one kind of record. Each kind is its own struct (the engine
// defines them), marshalled as a JSON object whose keys join the record's
// own "time", "event" and "actor" (which an event must not use).
type Event interface {
	// AuditEvent is the record's "event" value: "kick", "refuse", "msg"…
	AuditEvent() string
}

// Record writes one record: time, event, actor, and the event's fields.
// An error means the record is not in the trail: the caller decides what
// that stops (a kick is not carried out without its record).
func (l *Logger) Record(ev Event) error {
	if l == nil {
		return nil
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit record %s: %w", ev.AuditEvent(), err)
	}
	return l.write(ev.AuditEvent(), body)
}

// Log writes one record from a loosely typed value (a struct or map
// marshalled as a JSON object). Prefer Record with a typed Event.
func (l *Logger) Log(event string, v any) error {
	if l == nil {
		return nil
	}
	body := []byte("{}")
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body = b
	}
	return l.write(event, body)
}

// write splices the header and the event's object into one line:
// {"time":…,"event":…,"actor":…,<the event's keys>}.
func (l *Logger) write(event string, body []byte) error {
	body, err := dropReserved(bytes.TrimSpace(body))
	if err != nil {
		return fmt.Errorf("audit record %s: %w", event, err)
	}
	head, err := json.Marshal(struct {
		Time  string `json:"time"`
		Event string `json:"event"`
		Actor Actor  `json:"actor"`
	}{time.Now().Format(time.RFC3339Nano), event, l.actor})
	if err != nil {
		return err
	}
	line := make([]byte, 0, len(head)+len(body)+2)
	line = append(line, head[:len(head)-1]...)
	if inner := bytes.TrimSpace(body[1 : len(body)-1]); len(inner) > 0 {
		line = append(line, ',')
		line = append(line, inner...)
	}
	line = append(line, '}')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		return l.sys.Notice(string(line))
	}
	line = append(line, '\n')
	_, err = l.w.Write(line)
	return err
}

// dropReserved checks body is a JSON object and removes the keys the
// record's header owns: no field can forge the time, event or actor.
func dropReserved(body []byte) ([]byte, error) {
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return nil, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.Token() // {
	reserved := false
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if k == "time" || k == "event" || k == "actor" {
			reserved = true
			break
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	if !reserved {
		return body, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, err
	}
	delete(fields, "time")
	delete(fields, "event")
	delete(fields, "actor")
	return json.Marshal(fields)
}

// Close closes the trail.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	if l.sys != nil {
		return l.sys.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
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
