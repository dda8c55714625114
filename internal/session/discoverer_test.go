package session

import (
	"context"
	"os"
	"testing"
	"time"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A daemon's loop: 1,000 discoveries on one Discoverer leak no descriptor.
func TestDiscovererNoFDLeak(t *testing.T) {
	dir := t.TempDir()
	d := NewDiscoverer(withUsers(Options{UtmpPath: dir + "/none", ProcRoot: "testdata/ssh92/proc", DevRoot: dir,
		NoLogind: true, Clock: func() time.Time { return now }}, users92))
	defer d.Close()
	if _, err := d.Discover(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	for i := 0; i < 1000; i++ {
		res, err := d.Discover(context.Background())
		if err != nil || len(res.Sessions) != 3 {
			t.Fatalf("call %d: %v, %d sessions", i, err, len(res.Sessions))
		}
	}
	if after := openFDs(t); after > before {
		t.Errorf("open descriptors: %d before, %d after 1,000 discoveries", before, after)
	}
	if d.Logind() != nil {
		t.Error("a logind client without logind")
	}
}
