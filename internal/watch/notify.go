package watch

import (
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier speaks systemd's sd_notify protocol: datagrams on the unix
// socket named by NOTIFY_SOCKET ("@…" is an abstract socket). A nil
// Notifier does nothing, so the daemon runs the same outside systemd.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration
}

// NotifierFromEnv returns a Notifier when NOTIFY_SOCKET is set, else nil.
// WATCHDOG_USEC (for this PID, if WATCHDOG_PID is set) sets the interval of
// WATCHDOG=1 pings: half the watchdog timeout, as sd_watchdog_enabled
// advises.
func NotifierFromEnv() *Notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	name := path
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	n := &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
	if us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		if p := os.Getenv("WATCHDOG_PID"); p == "" || p == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(us) * time.Microsecond / 2
		}
	}
	return n
}

// Send sends one state string ("READY=1"); errors are ignored, as
// sd_notify's are: the daemon works without systemd listening.
func (n *Notifier) Send(state string) {
	if n == nil {
		return
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(state))
}

// WatchdogInterval is how often to send WATCHDOG=1; 0 when off.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// monotonicUsec is CLOCK_MONOTONIC in µs, which RELOADING=1 must carry.
func monotonicUsec() string {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return strconv.FormatInt(ts.Nano()/1000, 10)
}
