package sshdtest

import "time"

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
