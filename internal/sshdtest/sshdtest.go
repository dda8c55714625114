// Package sshdtest runs a private OpenSSH server on 127.0.0.1 for
// end-to-end tests: its own config, host key, port and utmp file in a
// temporary directory, test users with a recognisable prefix, and real
// login sessions opened with golang.org/x/crypto/ssh.
//
// sshd runs in a private mount namespace in which /run is a directory of
// the test's: it writes its utmp records to the test's own file (this host
// may have no /run/utmp at all) and never touches the system's.
//
// Only tests import this package. Everything it starts it stops: sessions
// are closed, the server is terminated and reaped, users are removed.
package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// UserPrefix starts the name of every user the tests create, so a person
// (or a cleanup script) can tell them apart: skt = sshkick test.
const UserPrefix = "skt"

// Require stops the test unless it can run: root, sshd, useradd. Under
// `make check` (SSHKICK_E2E=require) a missing requirement fails the test
// instead of skipping it, so CI cannot pass by testing nothing.
func Require(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/sbin/useradd", "/usr/bin/unshare"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "end-to-end test needs " + strings.Join(missing, ", ") + " (run make check as root)"
	if os.Getenv("SSHKICK_E2E") == "require" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Server is a running private sshd.
type Server struct {
	Dir  string
	Port int
	// Utmp is the utmp file this sshd writes (its /run/utmp).
	Utmp string
	Log  string

	t       testing.TB
	cmd     *exec.Cmd
	exited  chan struct{} // closed when sshd has been reaped
	keysDir string
	signer  ssh.Signer
	mu      sync.Mutex
	clients []*ssh.Client
	users   []*User
}

// Start starts sshd and registers its shutdown with t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("", "sshkick-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Dir: dir, t: t, keysDir: filepath.Join(dir, "keys"), Log: filepath.Join(dir, "sshd.log")}
	runDir := filepath.Join(dir, "run")
	for _, d := range []string{s.keysDir, filepath.Join(runDir, "sshd")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The directory and its parents must be searchable by the users whose
	// authorized keys live there.
	os.Chmod(dir, 0o755)
	s.Utmp = filepath.Join(runDir, "utmp")
	if err := os.WriteFile(s.Utmp, nil, 0o664); err != nil {
		t.Fatal(err)
	}
	// root:utmp 0664 as on a real host: libutempter's setgid helper (tmux,
	// screen, xterm) writes through the group.
	if g, err := user.LookupGroup("utmp"); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		os.Chown(s.Utmp, 0, gid)
	}
	os.Chmod(s.Utmp, 0o664)
	hostKey := filepath.Join(dir, "host_ed25519")
	writeKey(t, hostKey)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if s.signer, err = ssh.NewSignerFromKey(priv); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "sshd_config")
	// freePort's port is free when it returns, not when sshd binds it:
	// another test may take it in between. sshd then fails to bind and
	// exits; try again on another port.
	for attempt := 1; ; attempt++ {
		s.Port = freePort(t)
		conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s/sshd.pid
AuthorizedKeysFile %s/%%u
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
MaxStartups 500
MaxSessions 100
LogLevel VERBOSE
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
`, s.Port, hostKey, dir, s.keysDir)
		// OpenSSH 9.8+ penalises sources whose connections fail; tests open and
		// kill many sessions from 127.0.0.1 on purpose.
		if tryConfig(cfg, conf+"PerSourcePenalties no\n") {
			conf += "PerSourcePenalties no\n"
		}
		if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(s.Log)
		err := s.startSSHD(runDir, cfg)
		if err == nil {
			break
		}
		if !errors.Is(err, errBind) || attempt >= 10 {
			log, _ := os.ReadFile(s.Log)
			t.Fatalf("start sshd on %s: %v\n%s", s.Addr(), err, log)
		}
	}
	t.Cleanup(s.stop)
	return s
}

// errBind is sshd failing to bind its port.
var errBind = errors.New("sshd could not bind its port")

// startSSHD starts sshd and waits until its log says it listens on
// s.Port, or it exits.
func (s *Server) startSSHD(runDir, cfg string) error {
	// unshare execs sshd in place: the process we start is sshd itself,
	// and we reap it.
	s.cmd = exec.Command("/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
		`mount --bind "$1" /run && exec /usr/sbin/sshd -D -E "$2" -f "$3"`, "sh", runDir, s.Log, cfg)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.exited)
	listening := fmt.Sprintf("Server listening on 127.0.0.1 port %d.", s.Port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		log, _ := os.ReadFile(s.Log)
		if bytes.Contains(log, []byte(listening)) {
			return nil
		}
		select {
		case <-s.exited:
			log, _ = os.ReadFile(s.Log)
			if bytes.Contains(log, []byte("Address already in use")) || bytes.Contains(log, []byte("Cannot bind any address")) {
				return errBind
			}
			return fmt.Errorf("sshd exited: %s", s.cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.exited
			return errors.New("sshd did not start listening within 30s")
		}
	}
}

func tryConfig(path, conf string) bool {
	if os.WriteFile(path, []byte(conf), 0o644) != nil {
		return false
	}
	return exec.Command("/usr/sbin/sshd", "-t", "-f", path).Run() == nil
}

func writeKey(t testing.TB, path string) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// PID is the listener's PID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

func (s *Server) stop() {
	s.mu.Lock()
	clients := s.clients
	users := s.users
	s.clients = nil
	s.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	// Let sshd end the sessions and reap its children before the listener
	// goes: orphans would become zombies under this host's PID 1.
	for _, u := range users {
		u.waitGone(5 * time.Second)
	}
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	for _, u := range users {
		u.remove(s.t)
	}
	if s.t.Failed() {
		if log, err := os.ReadFile(s.Log); err == nil {
			s.t.Logf("sshd log:\n%s", tail(log, 4000))
		}
	}
	os.RemoveAll(s.Dir)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// User is a test user.
type User struct {
	Name     string
	UID, GID int
	Home     string
}

// AddUser creates a user named skt<random> with a home and login shell
// /bin/bash, able to log in with the server's test key. It is removed at
// cleanup.
func (s *Server) AddUser(t testing.TB) *User {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := fmt.Sprintf("%s%x", UserPrefix, b)
	out, err := accountTool("/usr/sbin/useradd", "-m", "-s", "/bin/bash", "-K", "MAIL_DIR=/nonexistent", name)
	if err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	// A new account is locked ("!"), and sshd refuses locked accounts even
	// for key logins: "*" means no password, not locked.
	if out, err := accountTool("/usr/sbin/usermod", "-p", "*", name); err != nil {
		t.Fatalf("usermod %s: %v: %s", name, err, out)
	}
	pw, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	u := &User{Name: name, Home: pw.HomeDir}
	u.UID, _ = strconv.Atoi(pw.Uid)
	u.GID, _ = strconv.Atoi(pw.Gid)
	key := ssh.MarshalAuthorizedKey(s.signer.PublicKey())
	if err := os.WriteFile(filepath.Join(s.keysDir, name), key, 0o644); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.users = append(s.users, u)
	s.mu.Unlock()
	return u
}

// accountTool runs useradd, usermod or userdel, again while another
// process holds the password database's lock ("cannot lock /etc/passwd;
// try again later"): other tests on this host add and remove users too.
func accountTool(path string, args ...string) ([]byte, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command(path, args...).CombinedOutput()
		if err == nil || !bytes.Contains(bytes.ToLower(out), []byte("lock")) || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Root returns the root account as a test user; root's sessions are
// ended at cleanup but the account is of course kept.
func (s *Server) Root(t testing.TB) *User {
	key := ssh.MarshalAuthorizedKey(s.signer.PublicKey())
	if err := os.WriteFile(filepath.Join(s.keysDir, "root"), key, 0o644); err != nil {
		t.Fatal(err)
	}
	return &User{Name: "root", UID: 0, GID: 0, Home: "/root"}
}

// CountComm counts the user's live processes named comm.
func (u *User) CountComm(comm string) int {
	n := 0
	for _, pid := range u.Pids() {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && string(b) == comm+"\n" {
			n++
		}
	}
	return n
}

// Pids returns the live (non-zombie) processes of the user.
func (u *User) Pids() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		var uid int = -1
		var state string
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					uid, _ = strconv.Atoi(f[0])
				}
			}
			if v, ok := strings.CutPrefix(l, "State:"); ok {
				state = strings.TrimSpace(v)
			}
		}
		if uid == u.UID && !strings.HasPrefix(state, "Z") && !strings.HasPrefix(state, "X") {
			out = append(out, pid)
		}
	}
	return out
}

func (u *User) waitGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if len(u.Pids()) == 0 {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func (u *User) remove(t testing.TB) {
	if u.UID == 0 {
		return
	}
	// Whatever a test left running as this user is the test's own doing
	// (its sessions, its background jobs): end it, by uid, before the
	// account goes, so no process of a deleted uid survives.
	for round := 0; round < 10 && len(u.Pids()) > 0; round++ {
		exec.Command("/usr/bin/setpriv", "--reuid="+strconv.Itoa(u.UID), "--regid="+strconv.Itoa(u.GID),
			"--clear-groups", "/bin/kill", "-KILL", "-1").Run()
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := accountTool("/usr/sbin/userdel", "-r", "-f", u.Name); err != nil {
		t.Logf("userdel %s: %v: %s", u.Name, err, out)
	}
}

// Dial opens an SSH connection as u.
func (s *Server) Dial(t testing.TB, u *User) *ssh.Client {
	t.Helper()
	cfg := &ssh.ClientConfig{
		User:            u.Name,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // our own server, on loopback
		Timeout:         10 * time.Second,
	}
	c, err := ssh.Dial("tcp", s.Addr(), cfg)
	if err != nil {
		log, _ := os.ReadFile(s.Log)
		t.Fatalf("ssh %s@%s: %v\n%s", u.Name, s.Addr(), err, tail(log, 2000))
	}
	s.mu.Lock()
	s.clients = append(s.clients, c)
	s.mu.Unlock()
	return c
}

// Session is one login session as the client sees it.
type Session struct {
	Client *ssh.Client
	SSH    *ssh.Session
	Stdin  io.WriteCloser
	// Out collects everything the client's terminal (or stdout) received.
	Out  *Buffer
	done chan error
}

// Login opens a session as u. With pty, the session gets a terminal
// (like `ssh -t`); command "" starts the login shell, otherwise the
// command runs (like `ssh host command`).
func (s *Server) Login(t testing.TB, u *User, pty bool, command string) *Session {
	t.Helper()
	c := s.Dial(t, u)
	return s.Open(t, c, pty, command)
}

// Open opens another session on an existing connection.
func (s *Server) Open(t testing.TB, c *ssh.Client, pty bool, command string) *Session {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	out := &Buffer{}
	sess.Stdout, sess.Stderr = out, out
	in, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if pty {
		modes := ssh.TerminalModes{ssh.ECHO: 0, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
		if err := sess.RequestPty("xterm", 40, 200, modes); err != nil {
			t.Fatalf("request pty: %v", err)
		}
	}
	if command == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(command)
	}
	if err != nil {
		t.Fatalf("start session: %v", err)
	}
	r := &Session{Client: c, SSH: sess, Stdin: in, Out: out, done: make(chan error, 1)}
	go func() { r.done <- sess.Wait() }()
	return r
}

// Ended waits up to d for the session to end (the server closed it).
func (r *Session) Ended(d time.Duration) bool {
	select {
	case err := <-r.done:
		r.done <- err
		return true
	case <-time.After(d):
		return false
	}
}

// WaitFor waits up to d until the session's output contains want.
func (r *Session) WaitFor(want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if bytes.Contains(r.Out.Bytes(), []byte(want)) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Buffer is a goroutine-safe bytes.Buffer.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// String returns what was written so far.
func (b *Buffer) String() string { return string(b.Bytes()) }
