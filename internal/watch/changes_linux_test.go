package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/policy"
	"github.com/sshkick/sshkick/internal/proc"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/sshdtest"
)

// woken waits for a value on c.C; the deadline only guards a broken test.
func woken(t *testing.T, c *Changes, what string) {
	t.Helper()
	select {
	case <-c.C:
	case <-time.After(30 * time.Second):
		t.Fatalf("no wake-up after %s", what)
	}
}

func drain(c *Changes) {
	for {
		select {
		case <-c.C:
		default:
			return
		}
	}
}

func watching(c *Changes, path string) func() bool {
	return func() bool { return slices.Contains(c.Watching(), path) }
}

func appendTo(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestChangesUtmpAndLogind: a utmp file that does not exist yet is seen
// when it is created (its directory is watched), then every write to it
// wakes; after it is removed and created again the new file is watched;
// logind's session directory, missing at first, is watched from the
// Refresh after it appears, and a session file renamed into it or removed
// from it wakes.
func TestChangesUtmpAndLogind(t *testing.T) {
	dir := t.TempDir()
	utmp := filepath.Join(dir, "utmp")
	sess := filepath.Join(dir, "sessions")
	c, err := WatchChanges(utmp, sess)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if w := c.Watching(); !slices.Equal(w, []string{dir + " (for utmp)"}) {
		t.Fatalf("watching %q", w)
	}

	os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o644)
	if err := os.WriteFile(utmp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	woken(t, c, "creating utmp")
	if !sshdtest.Poll(30*time.Second, watching(c, utmp)) {
		t.Fatalf("utmp not watched once created: %q", c.Watching())
	}
	drain(c)
	appendTo(t, utmp, make([]byte, 384))
	woken(t, c, "a utmp record")

	os.Remove(utmp)
	woken(t, c, "removing utmp")
	if err := os.WriteFile(utmp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !sshdtest.Poll(30*time.Second, watching(c, utmp)) {
		t.Fatalf("new utmp not watched: %q", c.Watching())
	}
	drain(c)
	appendTo(t, utmp, make([]byte, 384))
	woken(t, c, "a record in the new utmp")

	if err := os.Mkdir(sess, 0o755); err != nil {
		t.Fatal(err)
	}
	c.Refresh()
	if !slices.Contains(c.Watching(), sess) {
		t.Fatalf("logind directory not watched after Refresh: %q", c.Watching())
	}
	drain(c)
	// As logind writes a session file: a temporary name, then a rename.
	tmp := filepath.Join(sess, ".#c1abc")
	os.WriteFile(tmp, []byte("UID=1000\n"), 0o644)
	if err := os.Rename(tmp, filepath.Join(sess, "c1")); err != nil {
		t.Fatal(err)
	}
	woken(t, c, "a new logind session")
	drain(c)
	os.Remove(filepath.Join(sess, "c1"))
	woken(t, c, "an ended logind session")
}

type countingBackend struct {
	fakeBackend
	n atomic.Int64
}

func (b *countingBackend) Sessions(ctx context.Context) (*session.Result, error) {
	b.n.Add(1)
	return b.fakeBackend.Sessions(ctx)
}

// TestRunWakesOnChange: with an interval of an hour and no deadline, a
// write to utmp makes the daemon look again.
func TestRunWakesOnChange(t *testing.T) {
	d, fb, _, _ := setup(t, "interval = \"1h\"\n[[rule]]\nname = \"r\"\nidle = \"10h\"\nwarn = []\n")
	utmp := filepath.Join(t.TempDir(), "utmp")
	os.WriteFile(utmp, nil, 0o644)
	c, err := WatchChanges(utmp, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cb := &countingBackend{fakeBackend: fakeBackend{res: fb.res}}
	o := d.o
	o.Now, o.Backend, o.Changes, o.StatePath = nil, cb, c, "-"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	defer func() { cancel(); <-done }()
	if !sshdtest.Poll(30*time.Second, func() bool { return cb.n.Load() >= 1 }) {
		t.Fatal("no first evaluation")
	}
	appendTo(t, utmp, make([]byte, 384))
	if !sshdtest.Poll(30*time.Second, func() bool { return cb.n.Load() >= 2 }) {
		t.Fatal("a utmp write did not wake the daemon")
	}
}

// TestLookBetweenDiscoveries: between discoveries a look re-reads only
// the evidence; when it would act, or a member is gone, it discovers
// first, so the action is decided on fresh sessions.
func TestLookBetweenDiscoveries(t *testing.T) {
	d, fb, now, _ := setup(t, pol)
	cb := &countingBackend{fakeBackend: fakeBackend{res: fb.res}}
	d.o.Backend = cb
	refreshed, alive := 0, true
	d.o.Refresh = func(in []policy.Input, cpu bool) ([]policy.Input, bool) {
		refreshed++
		return in, alive
	}
	ctx := context.Background()
	*now = t0.Add(5 * time.Second)
	d.step(ctx, true)
	*now = t0.Add(6 * time.Second)
	if next := d.step(ctx, false); !next.Equal(t0.Add(10*time.Second)) || cb.n.Load() != 1 || refreshed != 1 {
		t.Fatalf("a quiet look: next %v, %d discoveries, %d refreshes", next, cb.n.Load(), refreshed)
	}
	*now = t0.Add(10 * time.Second)
	d.step(ctx, false)
	if cb.n.Load() != 2 || len(cb.warned) != 1 {
		t.Fatalf("a look that warns: %d discoveries, warned %v", cb.n.Load(), cb.warned)
	}
	alive = false
	*now = t0.Add(11 * time.Second)
	d.step(ctx, false)
	if cb.n.Load() != 3 {
		t.Fatalf("a member gone: %d discoveries", cb.n.Load())
	}
}

// TestRefreshReadsStatAndNoticesReplacement: a look between discoveries
// sums the members' utime+stime from their stat files; a member whose
// start time changed (PID reused) or vanished asks for a discovery; without
// cpu the CPU is unknown, not the old value.
func TestRefreshReadsStatAndNoticesReplacement(t *testing.T) {
	root := t.TempDir()
	stat := func(pid, utime, stime, start int) {
		os.MkdirAll(filepath.Join(root, strconv.Itoa(pid)), 0o755)
		line := fmt.Sprintf("%d (sh) S 1 %d %d 34817 %d 4194304 0 0 0 0 %d %d 0 0 20 0 1 0 %d 0 0\n", pid, pid, pid, pid, utime, stime, start)
		os.WriteFile(filepath.Join(root, strconv.Itoa(pid), "stat"), []byte(line), 0o644)
	}
	stat(50, 100, 50, 7)
	stat(51, 10, 40, 8)
	s := &session.Session{ID: "pts/1", Members: []session.Member{{Ident: proc.Ident{PID: 50, Start: 7}}, {Ident: proc.Ident{PID: 51, Start: 8}}}}
	in := []policy.Input{{Session: s, Evidence: policy.Evidence{CPU: time.Second}}}
	out, ok := Refresh(in, root, root, true)
	if !ok || out[0].Evidence.CPU != 2*time.Second {
		t.Fatalf("CPU %v ok %v, want 2s (200 ticks)", out[0].Evidence.CPU, ok)
	}
	if out, ok := Refresh(in, root, root, false); !ok || out[0].Evidence.CPU != -1 {
		t.Fatalf("without cpu: CPU %v ok %v", out[0].Evidence.CPU, ok)
	}
	stat(51, 0, 0, 9)
	if _, ok := Refresh(in, root, root, true); ok {
		t.Fatal("a reused PID went unnoticed")
	}
	os.RemoveAll(filepath.Join(root, "51"))
	if _, ok := Refresh(in, root, root, true); ok {
		t.Fatal("a vanished member went unnoticed")
	}
}
