// Package nspawntest boots a real systemd host for end-to-end tests: a
// Debian 12 tree with systemd, dbus, systemd-logind and OpenSSH (with
// pam_systemd) in a systemd-nspawn container with its own PID, mount and
// network namespaces. SSH logins into it are real logind sessions in their
// own session-N.scope cgroups, which this machine (no systemd as PID 1)
// cannot give otherwise.
//
// The tree comes from internal/debtree (built once with debootstrap, cached
// as a tarball). Each Boot untars it into a fresh directory, so tests never
// see each other's users or state.
//
// Test users are created inside the container only, named with UserPrefix
// and given uids from FirstUID up that are unused on the host: the container
// has no user namespace, so its uids are the host's, and a kill by uid
// (logind's KillUser, kill(-1) as the user) must reach nothing of the host's.
//
// The SSH clients are the host's ssh and sftp run in the container's network
// namespace only (nsenter -n): they stay the test's own processes, on the
// host, and see what a user's terminal sees. sshkick runs inside with
// nsenter -a, because logind's PIDs and terminals are the container's.
//
// Only tests import this package. Everything it starts it stops: clients are
// killed and reaped, the container is powered off (its nspawn process killed
// if it hangs), the cgroups nspawn leaves in the host's hierarchies and the
// tree are removed. It never signals a process it did not start.
package nspawntest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sshkick/sshkick/internal/debtree"
	"github.com/sshkick/sshkick/internal/sshdtest"
)

// UserPrefix starts the name of every user the tests create in the
// container: skn = sshkick nspawn.
const UserPrefix = "skn"

// FirstUID is the lowest uid given to a test user.
const FirstUID = 61001

// SSHPort is where the container's sshd listens, on its own loopback.
const SSHPort = 2422

// InsideBin is where the sshkick binary appears in the container.
const InsideBin = "/usr/local/bin/sshkick"

var tools = append([]string{"/usr/bin/systemd-nspawn", "/usr/bin/nsenter",
	"/usr/bin/ssh", "/usr/bin/sftp", "/usr/bin/ssh-keygen"}, debtree.Tools...)

// Require stops the test unless a container can be booted here: root and
// the tools. Under `make check` (SSHKICK_E2E=require) it fails instead of
// skipping, so CI cannot pass by testing nothing.
func Require(t testing.TB) {
	t.Helper()
	if why := Missing(); why != "" {
		if os.Getenv("SSHKICK_E2E") == "require" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

// Missing says what a container needs and this machine lacks, or "".
func Missing() string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, p := range tools {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "the systemd container tests need " + strings.Join(missing, ", ") +
		" (run make deps, or make check, as root: it installs systemd-container, debootstrap, zstd)"
}

// Host is a booted container.
type Host struct {
	Name string
	Root string // the tree, on the host
	Dir  string // the harness's own files (keys, logs), on the host
	// Init is the container's PID 1, as the host sees it.
	Init int
	Log  string // nspawn's and the boot's output

	cmd      *exec.Cmd
	waited   chan struct{}
	cgroups  []string // cgroup dirs of the nspawn process, host view
	key      string   // the client's private key
	mu       sync.Mutex
	clients  []*Client
	nextUID  int
	stopOnce sync.Once
}

// Boot untars (building it first if needed) the tree, installs bin (a
// static sshkick) read-only at InsideBin and boots the container. It
// returns once systemd, dbus, logind and sshd are up. Stop must be called
// (TestMain) or is registered with t.Cleanup when t is not nil.
func Boot(log io.Writer, bin string) (*Host, error) {
	dir, err := os.MkdirTemp("/var/tmp", "sshkick-nspawn-")
	if err != nil {
		return nil, err
	}
	h := &Host{Dir: dir, Root: filepath.Join(dir, "root"), Log: filepath.Join(dir, "boot.log"),
		Name: "sshkick-" + randHex(4), waited: make(chan struct{}), nextUID: FirstUID}
	fail := func(err error) (*Host, error) {
		h.Stop()
		return nil, err
	}
	if err := os.Mkdir(h.Root, 0o755); err != nil {
		return fail(err)
	}
	if err := debtree.Extract(log, h.Root); err != nil {
		return fail(err)
	}
	if err := h.configure(); err != nil {
		return fail(err)
	}
	logf, err := os.Create(h.Log)
	if err != nil {
		return fail(err)
	}
	defer logf.Close()
	h.cmd = exec.Command("/usr/bin/systemd-nspawn", "-q", "-D", h.Root, "-b", "-M", h.Name,
		"--register=no", "--keep-unit", "--console=pipe", "--private-network",
		"--bind-ro="+bin+":"+InsideBin)
	h.cmd.Stdin = nil
	h.cmd.Stdout, h.cmd.Stderr = logf, logf
	// Its own session and process group: a terminal's signals do not reach it.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := h.cmd.Start(); err != nil {
		return fail(fmt.Errorf("start systemd-nspawn: %w", err))
	}
	go func() { h.cmd.Wait(); close(h.waited) }()
	h.cgroups = cgroupDirs(h.cmd.Process.Pid)
	if err := h.waitUp(90 * time.Second); err != nil {
		return fail(fmt.Errorf("%w\n--- boot log (%s) ---\n%s", err, h.Log, tailFile(h.Log, 4000)))
	}
	return h, nil
}

// configure writes what the boot needs into the tree: sshd on loopback with
// the test's key, no units that wait for a network or a console.
func (h *Host) configure() error {
	h.key = filepath.Join(h.Dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", h.key).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	if out, err := exec.Command("ssh-keygen", "-A", "-f", h.Root).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen -A for the container: %v: %s", err, out)
	}
	conf := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nUsePAM yes\nUseDNS no\nPasswordAuthentication no\n"+
		"KbdInteractiveAuthentication no\nPrintMotd no\nPrintLastLog no\nMaxStartups 200\nMaxSessions 50\n", SSHPort)
	files := map[string]string{
		"etc/ssh/sshd_config.d/sshkick-test.conf": conf,
		"etc/hostname":   "sshkick-test\n",
		"etc/machine-id": "",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(h.Root, p), []byte(c), 0o644); err != nil {
			return err
		}
	}
	// Units that only slow the boot down or wait for things a container
	// does not have.
	for _, u := range []string{"systemd-networkd-wait-online.service", "apt-daily.timer", "apt-daily-upgrade.timer",
		"e2scrub_all.timer", "fstrim.timer", "getty@tty1.service", "console-getty.service", "systemd-timesyncd.service"} {
		os.Symlink("/dev/null", filepath.Join(h.Root, "etc/systemd/system", u))
	}
	return nil
}

// waitUp polls until the container's PID 1 exists and systemd reports
// dbus, logind and sshd active.
func (h *Host) waitUp(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-h.waited:
			return fmt.Errorf("systemd-nspawn exited during boot")
		default:
		}
		if h.Init == 0 {
			h.Init = h.findInit()
		}
		if h.Init != 0 {
			out, _, _ := h.exec(context.Background(), nil, "systemctl", "is-active", "dbus.service", "systemd-logind.service", "ssh.service")
			if strings.Count(string(out), "active\n") == 3 && !strings.Contains(string(out), "inactive") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the container did not bring up dbus, logind and sshd in %v", d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// findInit returns the container's PID 1 (host PID): the descendant of
// the nspawn process whose PID namespace is not ours.
func (h *Host) findInit() int {
	mine, _ := os.Readlink("/proc/self/ns/pid")
	pid := h.cmd.Process.Pid
	for depth := 0; depth < 3; depth++ {
		kids := children(pid)
		if len(kids) == 0 {
			return 0
		}
		for _, k := range kids {
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", k))
			if err == nil && ns != mine {
				return k
			}
		}
		pid = kids[0]
	}
	return 0
}

func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// Stop powers the container off, kills the nspawn process (the one Boot
// started, by its own handle) if the poweroff hangs, and removes the
// cgroups nspawn left and the tree. Safe to call more than once.
func (h *Host) Stop() {
	h.stopOnce.Do(func() {
		h.mu.Lock()
		clients := h.clients
		h.mu.Unlock()
		for _, c := range clients {
			c.Close()
		}
		if h.cmd != nil && h.cmd.Process != nil {
			if h.Init != 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				h.exec(ctx, nil, "systemctl", "poweroff")
				cancel()
			}
			select {
			case <-h.waited:
			case <-time.After(30 * time.Second):
				h.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-h.waited:
				case <-time.After(10 * time.Second):
					h.cmd.Process.Kill()
					<-h.waited
				}
			}
		}
		removeCgroups(h.cgroups)
		if h.Dir != "" {
			// The tree's bind mounts are gone with the container's mount
			// namespace; nothing of the host is under Root.
			os.RemoveAll(h.Dir)
		}
	})
}

// cgroupDirs are the host directories of pid's cgroups, in every hierarchy.
func cgroupDirs(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		var base string
		switch {
		case f[0] == "0" && f[1] == "":
			base = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(base + "/cgroup.procs"); err != nil {
				base = "/sys/fs/cgroup"
			}
		case strings.HasPrefix(f[1], "name="):
			base = "/sys/fs/cgroup/" + strings.TrimPrefix(f[1], "name=")
		default:
			base = "/sys/fs/cgroup/" + strings.Split(f[1], ",")[0]
		}
		out = append(out, filepath.Join(base, f[2]))
	}
	return out
}

// removeCgroups removes the payload (and supervisor) sub-cgroups nspawn
// created under the cgroups it was started in, deepest first. rmdir only
// succeeds on empty cgroups, so nothing alive is affected.
func removeCgroups(dirs []string) {
	for _, d := range dirs {
		for _, sub := range []string{"payload", "supervisor"} {
			root := filepath.Join(d, sub)
			var all []string
			filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
				if err == nil && e.IsDir() {
					all = append(all, p)
				}
				return nil
			})
			for i := len(all) - 1; i >= 0; i-- {
				syscall.Rmdir(all[i])
			}
		}
	}
}

// Result is one command's run inside the container.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Exec runs a command inside the container (every namespace of its PID 1)
// and returns its output; it fails the test if the command cannot run or
// runs past 2 minutes.
func (h *Host) Exec(t testing.TB, args ...string) Result {
	t.Helper()
	return h.ExecInput(t, nil, args...)
}

// ExecInput is Exec with standard input.
func (h *Host) ExecInput(t testing.TB, stdin io.Reader, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, errb, err := h.exec(ctx, stdin, args...)
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("in the container: %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("in the container: %v did not finish in 2 minutes (hung?)\n%s\n%s", args, out, errb)
	}
	return Result{code, string(out), string(errb)}
}

func (h *Host) exec(ctx context.Context, stdin io.Reader, args ...string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, "/usr/bin/nsenter", append([]string{"-t", strconv.Itoa(h.Init), "-a", "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "TERM=dumb"}
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// Sshkick runs sshkick inside the container, with its audit trail in a
// file of the container's.
func (h *Host) Sshkick(t testing.TB, args ...string) Result {
	t.Helper()
	return h.Exec(t, append([]string{"env", "SSHKICK_AUDIT_LOG=/var/log/sshkick-test-audit.jsonl", InsideBin}, args...)...)
}

// User is a test user of the container.
type User struct {
	Name string
	UID  int
}

// AddUser creates a user inside the container with a uid that neither the
// host nor the container uses and that no host process runs as, and lets
// the test's key log in as it.
func (h *Host) AddUser(t testing.TB) *User {
	t.Helper()
	h.mu.Lock()
	uid := h.nextUID
	for ; ; uid++ {
		if uidFree(uid) && !h.containerHasUID(uid) {
			break
		}
	}
	h.nextUID = uid + 1
	h.mu.Unlock()
	u := &User{Name: fmt.Sprintf("%s%d", UserPrefix, uid), UID: uid}
	if r := h.Exec(t, "useradd", "-m", "-s", "/bin/bash", "-u", strconv.Itoa(uid), "-U", u.Name); r.Code != 0 {
		t.Fatalf("useradd %s in the container: exit %d: %s", u.Name, r.Code, r.Stderr)
	}
	pub, err := os.ReadFile(h.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(h.Root, "home", u.Name)
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	if err := os.WriteFile(filepath.Join(home, ".ssh/authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	// An empty .hushlogin keeps login banners out of what the client reads.
	os.WriteFile(filepath.Join(home, ".hushlogin"), nil, 0o644)
	for _, p := range []string{home, filepath.Join(home, ".ssh"), filepath.Join(home, ".ssh/authorized_keys"), filepath.Join(home, ".hushlogin")} {
		os.Lchown(p, uid, uid)
	}
	return u
}

// uidFree: no host account has uid and no host process runs as it.
func uidFree(uid int) bool {
	if _, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return false
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) == nil && int(st.Uid) == uid {
			return false
		}
	}
	return true
}

func (h *Host) containerHasUID(uid int) bool {
	b, _ := os.ReadFile(filepath.Join(h.Root, "etc/passwd"))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[2] == strconv.Itoa(uid) {
			return true
		}
	}
	return false
}

// Client is an ssh or sftp client of the test's, connected to the
// container.
type Client struct {
	Out   *Buffer // what the client's terminal (its standard output) received
	Err   *Buffer
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	once  sync.Once
}

// SSH options common to every client: the test's key, no host key checks
// (the container's keys are new each boot), no local config.
func (h *Host) sshArgs() []string {
	return []string{"-F", "/dev/null", "-i", h.key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=0"}
}

// SSH opens `ssh user@container [command]`. tty asks for a terminal (-tt);
// an empty command with tty is a login shell.
func (h *Host) SSH(t testing.TB, u *User, tty bool, command string) *Client {
	t.Helper()
	args := append(h.sshArgs(), "-p", strconv.Itoa(SSHPort))
	if tty {
		args = append(args, "-tt")
	} else {
		args = append(args, "-T")
	}
	args = append(args, u.Name+"@127.0.0.1")
	if command != "" {
		args = append(args, command)
	}
	return h.start(t, "/usr/bin/ssh", args...)
}

// Forward opens `ssh -N -L …`: a connection with a port forward and no
// command, session or terminal.
func (h *Host) Forward(t testing.TB, u *User) *Client {
	t.Helper()
	args := append(h.sshArgs(), "-p", strconv.Itoa(SSHPort), "-N", "-L", "127.0.0.1:"+strconv.Itoa(SSHPort+1)+":127.0.0.1:"+strconv.Itoa(SSHPort), u.Name+"@127.0.0.1")
	return h.start(t, "/usr/bin/ssh", args...)
}

// SFTP opens an sftp session; its commands are written with Send.
func (h *Host) SFTP(t testing.TB, u *User) *Client {
	t.Helper()
	args := append(h.sshArgs(), "-P", strconv.Itoa(SSHPort), "-b", "-", u.Name+"@127.0.0.1")
	return h.start(t, "/usr/bin/sftp", args...)
}

// start runs a client in the container's network namespace only.
func (h *Host) start(t testing.TB, name string, args ...string) *Client {
	t.Helper()
	cmd := exec.Command("/usr/bin/nsenter", append([]string{"-t", strconv.Itoa(h.Init), "-n", "--", name}, args...)...)
	c := &Client{Out: &Buffer{}, Err: &Buffer{}, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.Out, c.Err
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { cmd.Wait(); close(c.done) }()
	h.mu.Lock()
	h.clients = append(h.clients, c)
	h.mu.Unlock()
	if tb, ok := t.(interface{ Cleanup(func()) }); ok {
		tb.Cleanup(c.Close)
	}
	return c
}

// Send writes to the client's standard input (the remote terminal, or
// sftp's commands).
func (c *Client) Send(s string) error {
	_, err := io.WriteString(c.stdin, s)
	return err
}

// Ended waits up to d for the client to exit and reports whether it did.
func (c *Client) Ended(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Running reports whether the client is still connected.
func (c *Client) Running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// WaitFor waits up to d for the client's output to contain want.
func (c *Client) WaitFor(want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if bytes.Contains(c.Out.Bytes(), []byte(want)) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close ends the client: the process the test started, by its own handle.
func (c *Client) Close() {
	c.once.Do(func() {
		c.stdin.Close()
		if c.Running() {
			c.cmd.Process.Kill()
		}
		<-c.done
	})
}

// Buffer is a goroutine-safe output buffer.
type Buffer = sshdtest.Buffer

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
