// Package logindtest runs a fake systemd-logind for tests: StartBus starts a
// private dbus-daemon, and NewFake exports org.freedesktop.login1 on it with
// the sessions a test asks for. Point a logind.Client at it with
// DBUS_SYSTEM_BUS_ADDRESS=<address> (logind.Connect) or with logind.New on a
// dbus.Conn of your own.
//
// It is meant for tests of other packages too, including end-to-end tests
// that run the sshkick binary with DBUS_SYSTEM_BUS_ADDRESS in its
// environment.
package logindtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// busConfig is a minimal bus configuration: no service activation, no
// includes, EXTERNAL authentication, and a policy that allows everything.
// %s is the socket path.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
`

// startTimeout bounds the wait for dbus-daemon to print its address.
const startTimeout = 10 * time.Second

// lockedBuffer collects dbus-daemon's stderr for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartBus starts a private dbus-daemon and returns its address
// ("unix:path=/tmp/sshkick-dbus-…/bus,guid=…"). It registers t.Cleanup to stop
// the daemon (SIGTERM, then SIGKILL) and remove its directory.
//
// The daemon runs as
//
//	dbus-daemon --config-file=<dir>/bus.conf --nofork --nosyslog --print-address=1 --address=unix:path=<dir>/bus
//
// with a minimal config that allows everything (see busConfig). <dir> is a
// short directory made with os.MkdirTemp rather than t.TempDir, because long
// test names would push the socket path past the 108-byte sun_path limit.
// The daemon gets SIGKILL if the test binary dies without cleaning up
// (Pdeathsig).
//
// If dbus-daemon is not installed the test is skipped, unless the environment
// variable SSHKICK_E2E is "require", in which case it fails.
func StartBus(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		if os.Getenv("SSHKICK_E2E") == "require" {
			t.Fatalf("logindtest: dbus-daemon not found (SSHKICK_E2E=require): %v", err)
		}
		t.Skipf("logindtest: dbus-daemon not found: %v", err)
	}

	dir, err := os.MkdirTemp("", "sshkick-dbus-")
	if err != nil {
		t.Fatalf("logindtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, sock), 0o600); err != nil {
		t.Fatalf("logindtest: %v", err)
	}

	cmd := exec.Command(bin,
		"--config-file="+conf,
		"--nofork",
		"--nosyslog",
		"--print-address=1",
		"--address=unix:path="+sock,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("logindtest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("logindtest: starting dbus-daemon: %v", err)
	}

	exited := make(chan struct{})
	var waitErr error
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	type line struct {
		s   string
		err error
	}
	lines := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(stdout).ReadString('\n')
		lines <- line{s, err}
		// Wait only after the read, as os/exec requires.
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(stop)

	select {
	case l := <-lines:
		addr := strings.TrimSpace(l.s)
		if l.err != nil || addr == "" {
			stop()
			t.Fatalf("logindtest: dbus-daemon printed no address (%v, exit: %v); stderr:\n%s", l.err, waitErr, stderr.String())
		}
		return addr
	case <-time.After(startTimeout):
		stop()
		t.Fatalf("logindtest: dbus-daemon printed no address within %v; stderr:\n%s", startTimeout, stderr.String())
	}
	return ""
}
