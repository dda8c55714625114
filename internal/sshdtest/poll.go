package sshdtest

import (
	"testing"
	"time"
)

// Poll waits for cond to hold, checking it often at first (a millisecond
// apart) and backing off to 50 ms, for at most timeout; it reports whether
// cond held. Tests wait on conditions with it, never on a fixed sleep: the
// deadline is only reached when something is really wrong, however loaded
// the machine.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// WaitFor is Poll for a test: it waits up to timeout for cond, which also
// says what it last saw, and fails the test with that when time runs out.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	if !Poll(timeout, func() bool {
		var ok bool
		ok, last = cond()
		return ok
	}) {
		t.Fatalf("waited %v for %s; last seen:\n%s", timeout, what, last)
	}
}
