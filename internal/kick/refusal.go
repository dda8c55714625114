package kick

import "strconv"

// Refusal is a target or process that was not signalled, and why.
type Refusal struct {
	Target string `json:"target,omitempty"`
	PID    int    `json:"pid,omitempty"`
	Reason string `json:"reason"`
}

// PIDReason says why PID n ≤ 1 is never signalled.
func PIDReason(n int) string { return pidReason(n) }

func pidReason(n int) string {
	switch {
	case n == 1:
		return "PID 1 is init: never signalled"
	case n == 0:
		return "PID 0 is not a process (kill(0) would signal the caller's own process group): refused"
	default:
		return "PID " + strconv.Itoa(n) + " is not a process id (a negative PID means a process group to kill()): refused"
	}
}
