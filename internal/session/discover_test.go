package session

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/utmp"
)

// Discover on the ssh92 fixture tree: the client addresses come from the
// sockets sshd holds (fd → socket inode → net/tcp, tcp6) or, where fd/ is
// not readable, from SSH_CONNECTION in the session's environment.
func TestDiscoverFixture(t *testing.T) {
	if !littleEndian() {
		t.Skip("the fixture's net/tcp was written by a little-endian kernel")
	}
	dir := t.TempDir()
	utmpPath := filepath.Join(dir, "utmp")
	if err := os.WriteFile(utmpPath, utmp.Encode(record92, utmp.Native), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Discover(context.Background(), withUsers(Options{
		UtmpPath: utmpPath, ProcRoot: "testdata/ssh92/proc", DevRoot: dir, NoLogind: true, Now: now,
	}, users92))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) != 0 || res.Logind != nil || res.Proc == nil {
		t.Errorf("notes %q, logind %v, proc %v", res.Notes, res.Logind, res.Proc != nil)
	}
	got := map[string]string{}
	for _, s := range res.Sessions {
		got[s.ID] = s.Addr + " " + s.Host + " " + strings.Join(s.Sources, ",")
		if s.User != "skt-exp1" || s.UID != 1001 || s.Stale {
			t.Errorf("%s: user %q uid %d stale %v", s.ID, s.User, s.UID, s.Stale)
		}
	}
	want := map[string]string{
		"pts/0":    "192.0.2.10 ws1.example.org utmp,proc", // socket of the monitor 6608
		"ssh:6624": "192.0.2.11 192.0.2.11 proc",           // no fd/: SSH_CONNECTION of 6624
		"ssh:6609": "192.0.2.12 192.0.2.12 proc",           // an IPv4-mapped socket in tcp6, after a socket pair
	}
	if len(got) != len(want) {
		t.Errorf("sessions %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
	if s := find(t, res.Sessions, "pts/0"); s.Port != 51234 || !s.Login.Equal(record92.Time) {
		t.Errorf("pts/0: port %d, login %v", s.Port, s.Login)
	}
}

func TestDiscoverNotes(t *testing.T) {
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated")
	b := append(utmp.Encode(record92, utmp.Native), make([]byte, 10)...)
	if err := os.WriteFile(truncated, b, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		utmp, note string
	}{
		{filepath.Join(dir, "missing"), ""}, // hosts without utmp are normal
		{truncated, "ends in a partial record"},
		{dir, "cannot read " + dir},
	}
	for _, tt := range tests {
		res, err := Discover(context.Background(), withUsers(Options{
			UtmpPath: tt.utmp, ProcRoot: "testdata/ssh92/proc", DevRoot: dir, NoLogind: true, Now: now,
		}, users92))
		if err != nil {
			t.Fatalf("%s: %v", tt.utmp, err)
		}
		notes := strings.Join(res.Notes, "\n")
		if (tt.note == "") != (notes == "") || !strings.Contains(notes, tt.note) {
			t.Errorf("%s: notes %q, want %q", tt.utmp, notes, tt.note)
		}
		if len(res.Sessions) < 3 {
			t.Errorf("%s: %d sessions, want the three from /proc", tt.utmp, len(res.Sessions))
		}
	}
	if _, err := Discover(context.Background(), Options{ProcRoot: filepath.Join(dir, "noproc"), UtmpPath: truncated, NoLogind: true}); err == nil {
		t.Error("Discover without a process table: no error")
	}
}

// withUsers gives o a fixture password database: titles count only for
// users the database knows.
func withUsers(o Options, users map[int]string) Options {
	f := fixture{users: users}
	o.UserName, o.UserID = f.userName, f.userID
	return o
}

func littleEndian() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

func TestParseSSHConnection(t *testing.T) {
	good := []struct{ in, want string }{
		{"192.0.2.10 51234 10.0.2.15 22", "192.0.2.10:51234"},
		{"2001:db8::99 40000 2001:db8::1 22", "[2001:db8::99]:40000"},
		{"::ffff:192.0.2.7 51000 ::ffff:10.0.2.15 22", "192.0.2.7:51000"},
		{"  192.0.2.10   51234 10.0.2.15 22 ", "192.0.2.10:51234"},
		{"192.0.2.10 0 10.0.2.15 22", "192.0.2.10:0"},
		{"192.0.2.10 65535 10.0.2.15 22", "192.0.2.10:65535"},
	}
	for _, tt := range good {
		got, ok := parseSSHConnection(tt.in)
		if !ok || got != netip.MustParseAddrPort(tt.want) {
			t.Errorf("parseSSHConnection(%q) = %v, %v; want %s", tt.in, got, ok, tt.want)
		}
	}
	for _, in := range []string{
		"", "192.0.2.10", "192.0.2.10 51234 10.0.2.15", "192.0.2.10 51234 10.0.2.15 22 x",
		"ws1.example.org 51234 10.0.2.15 22", "192.0.2.10 65536 10.0.2.15 22", "192.0.2.10 -1 10.0.2.15 22",
		"192.0.2.10 port 10.0.2.15 22", "192.0.2.10:51234 10.0.2.15 22 x", "[2001:db8::99] 40000 ::1 22",
	} {
		if got, ok := parseSSHConnection(in); ok {
			t.Errorf("parseSSHConnection(%q) = %v, true; want false", in, got)
		}
	}
}

func TestTTYAtime(t *testing.T) {
	// Files that are no character device where terminals would be.
	files := t.TempDir()
	for _, name := range []string{"pts/0", "tty1", "shadow"} {
		if err := os.MkdirAll(filepath.Join(files, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(files, name), nil, 0o620); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(files, "pts", "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pts/0", "pts/1", "pts/3", "tty1", "../shadow", "shadow", ""} {
		if at, ok := TTYAtime(files, name); ok {
			t.Errorf("TTYAtime(%q) = %v, true; want false", name, at)
		}
	}

	dev := t.TempDir()
	if err := os.Mkdir(filepath.Join(dev, "pts"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("character devices", func(t *testing.T) {
		mknod := func(name string, major, minor uint32) {
			t.Helper()
			err := unix.Mknod(filepath.Join(dev, name), unix.S_IFCHR|0o620, int(unix.Mkdev(major, minor)))
			if errors.Is(err, unix.EPERM) && os.Getenv("SSHKICK_E2E") != "require" {
				t.Skipf("mknod needs CAP_MKNOD: %v", err)
			}
			if err != nil {
				t.Fatalf("mknod %s: %v", name, err)
			}
		}
		mknod("pts/0", 136, 0)
		mknod("tty1", 4, 1)
		mknod("console", 5, 1)  // a character device, but no login terminal
		mknod("pts/07", 136, 7) // a name TTYDevice refuses
		if err := os.Symlink("0", filepath.Join(dev, "pts", "2")); err != nil {
			t.Fatal(err)
		}
		atime := time.Date(2026, 11, 26, 20, 47, 19, 0, time.UTC)
		mtime := atime.Add(time.Hour) // output moves mtime; idle is about input
		for _, name := range []string{"pts/0", "tty1", "console", "pts/07"} {
			if err := os.Chtimes(filepath.Join(dev, name), atime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range []string{"pts/0", "tty1"} {
			got, ok := TTYAtime(dev, name)
			if !ok || !got.Equal(atime) {
				t.Errorf("TTYAtime(%q) = %v, %v; want %v, true", name, got, ok, atime)
			}
		}
		for _, name := range []string{"console", "pts/07", "pts/2", "pts/../pts/0", "/pts/0", "pts/0/"} {
			if at, ok := TTYAtime(dev, name); ok {
				t.Errorf("TTYAtime(%q) = %v, true; want false", name, at)
			}
		}
	})
}
