package audit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nobody owns the "user's" files in these tests.
const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SSHKICK_E2E") == "require" {
		t.Fatal("this test needs root (run make check as root)")
	}
	t.Skip("this test needs root")
}

// rootDir is a directory only its owner (root, in make check) can write.
func rootDir(t *testing.T) string {
	d := t.TempDir()
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOpenFileAcceptsSafeFile(t *testing.T) {
	d := rootDir(t)
	path := filepath.Join(d, "audit.jsonl")
	for range 2 { // created, then appended to
		l, err := Open(path)
		if err != nil {
			t.Fatalf("Open(%s) = %v", path, err)
		}
		if err := l.Log("kick", map[string]any{"x": 1}); err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.Count(string(b), "\n") != 2 {
		t.Fatalf("audit file: %q %v", b, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("created with mode %v, writable by others", fi.Mode())
	}
}

// TestOpenFileRefusesUnsafe: issue 8 item 7. Each case fails with
// ErrUnsafeFile, quickly (a FIFO must not hang), and writes nothing.
func TestOpenFileRefusesUnsafe(t *testing.T) {
	needRoot(t)
	secret := filepath.Join(rootDir(t), "root-only")
	if err := os.WriteFile(secret, []byte("root's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		want  string
	}{
		{"a user's symlink to a root-only file", func(t *testing.T) string {
			d := rootDir(t)
			p := filepath.Join(d, "audit.jsonl")
			if err := os.Symlink(secret, p); err != nil {
				t.Fatal(err)
			}
			os.Lchown(p, nobody, nobody)
			return p
		}, "symbolic link"},
		{"a symlink in a directory the user owns", func(t *testing.T) string {
			d := rootDir(t)
			os.Chown(d, nobody, nobody)
			p := filepath.Join(d, "audit.jsonl")
			os.Symlink(secret, p)
			return p
		}, "belongs to uid 65534"},
		{"a user-owned file", func(t *testing.T) string {
			p := filepath.Join(rootDir(t), "audit.jsonl")
			os.WriteFile(p, nil, 0o644)
			os.Chown(p, nobody, nobody)
			return p
		}, "belongs to uid 65534"},
		{"a world-writable file", func(t *testing.T) string {
			p := filepath.Join(rootDir(t), "audit.jsonl")
			os.WriteFile(p, nil, 0o644)
			os.Chmod(p, 0o666)
			return p
		}, "writable by every user"},
		{"a FIFO without a reader", func(t *testing.T) string {
			p := filepath.Join(rootDir(t), "audit.jsonl")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "FIFO"},
		{"a FIFO with a reader", func(t *testing.T) string {
			p := filepath.Join(rootDir(t), "audit.jsonl")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return p
		}, "not a regular file"},
		{"a world-writable directory", func(t *testing.T) string {
			d := rootDir(t)
			os.Chmod(d, 0o777)
			return filepath.Join(d, "audit.jsonl")
		}, "writable by every user"},
		{"a sticky world-writable directory (like /tmp)", func(t *testing.T) string {
			d := rootDir(t)
			os.Chmod(d, 0o777|os.ModeSticky)
			return filepath.Join(d, "audit.jsonl")
		}, "writable by every user"},
		{"a character device", func(t *testing.T) string { return "/dev/null" }, "not a regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.setup(t)
			l, err := Open(p)
			if err == nil {
				l.Close()
				t.Fatalf("Open(%s) accepted it", p)
			}
			if !errors.Is(err, ErrUnsafeFile) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%s) = %v, want ErrUnsafeFile saying %q", p, err, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(secret); string(b) != "root's\n" {
		t.Errorf("the root-only file was written: %q", b)
	}
}

// TestReopenAfterRotation: logrotate renames the file; after Reopen the
// next record is in a new file of that name and the renamed file keeps
// only what came before. A file that turned unsafe is not reopened:
// records keep going to the old one.
func TestReopenAfterRotation(t *testing.T) {
	d := rootDir(t)
	path := filepath.Join(d, "audit.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Log("before", nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := l.Log("after", nil); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), `"before"`) || strings.Contains(string(old), `"after"`) {
		t.Errorf("rotated file: %s", old)
	}
	if !strings.Contains(string(cur), `"after"`) || strings.Contains(string(cur), `"before"`) {
		t.Errorf("new file: %s", cur)
	}

	os.Remove(path)
	if err := os.Symlink(path+".1", path); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); !errors.Is(err, ErrUnsafeFile) {
		t.Fatalf("reopened through a symbolic link: %v", err)
	}
	if err := l.Log("still", nil); err != nil {
		t.Fatal(err)
	}
	if cur, _ := os.ReadFile(filepath.Join(d, "audit.jsonl.1")); strings.Contains(string(cur), `"still"`) {
		t.Errorf("a refused reopen wrote through the link: %s", cur)
	}
}
