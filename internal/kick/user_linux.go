package kick

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sshkick/sshkick/internal/cgroup"
	"github.com/sshkick/sshkick/internal/proc"
)

// HelperArg, as the first argument, makes sshkick run as the helper that
// ends every process of one user (see HelperMain).
const HelperArg = "__sshkick-kill-all-as-uid"

// MinUserUID is the lowest uid --all-processes acts on without --force
// (UID_MIN in login.defs): lower uids are system accounts.
const MinUserUID = 1000

// UserOutcome is what happened to every process of one user.
type UserOutcome struct {
	User   string `json:"user"`
	UID    int    `json:"uid"`
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
	// Found are the user's processes when the kick began.
	Found []int `json:"found"`
	// Rounds is how many times kill(-1) ran as the user.
	Rounds  int            `json:"rounds"`
	Signals []SignalRecord `json:"signals"`
	// Actions are the steps on the user's whole slice: logind's KillUser
	// and the kernel's cgroup.kill.
	Actions   []Action      `json:"actions"`
	Survivors []int         `json:"survivors"`
	Took      time.Duration `json:"took_ns"`
}

// UserRefusal says why uid must not be swept, or "".
func UserRefusal(uid int, force bool) string {
	switch {
	case uid == 0:
		return "uid 0 is root: every process of root is never killed"
	case uid < MinUserUID && !force:
		return fmt.Sprintf("uid %d is a system account (below %d): use --force if you really mean it", uid, MinUserUID)
	case uid == os.Getuid() && !force:
		return "this is the user sshkick runs as: use --force to end your own processes"
	}
	if s := os.Getenv("SUDO_UID"); s != "" && s == strconv.Itoa(uid) && !force {
		return "this is your own user (you ran sudo as it): use --force to end your own processes"
	}
	return ""
}

// KillUser ends every process of the user, as `killall -u` would but
// without losing against a forking user: a /proc scan and per-PID kill
// misses the children forked meanwhile, so the signal is sent by a helper
// re-executed as the user that calls kill(-1, sig) — the kernel delivers it
// to every process of that uid in one pass (research/security.md §4). It is
// repeated until a scan finds nothing, at most rounds times, and says so if
// it did not converge.
func KillUser(ctx context.Context, name string, uid, gid int, o Options) UserOutcome {
	o.defaults()
	start := time.Now()
	uo := UserOutcome{User: name, UID: uid, Signals: []SignalRecord{}, Actions: []Action{}, Survivors: []int{}, Found: []int{}}
	defer func() { uo.Took = time.Since(start) }()
	// The caller checks UserRefusal with its --force; root is refused here
	// whatever the caller says.
	if uid <= 0 {
		uo.Result, uo.Reason = Refused, UserRefusal(0, true)
		return uo
	}
	uo.Found = userPids(o.ProcRoot, uid)
	slice := cgroup.UserSlice(uid)
	sliceDir, ok := groupDir(o.ProcRoot, slice)
	if !ok {
		sliceDir = ""
	}
	act := func(via, target string, sig unix.Signal, res string) {
		uo.Actions = append(uo.Actions, Action{Via: via, Target: target, Signal: SignalName(sig), At: time.Now(), Result: res})
	}
	if o.DryRun {
		if o.Logind != nil {
			act("logind", "user "+strconv.Itoa(uid), o.Signal, "would do")
		}
		if sliceDir != "" {
			act("cgroup", slice, unix.SIGKILL, "would do if anything is left after "+o.Wait.String())
		}
		uo.Result = DryRun
		for _, pid := range uo.Found {
			uo.Signals = append(uo.Signals, SignalRecord{PID: pid, Signal: SignalName(o.Signal), Result: "would send (kill(-1) as uid " + strconv.Itoa(uid) + ")"})
		}
		return uo
	}
	if len(uo.Found) == 0 {
		uo.Result = Ended
		uo.Reason = "the user had no processes"
		return uo
	}
	sliceKilled, logindKilled := false, false
	send := func(sig unix.Signal) error {
		uo.Rounds++
		if o.Logind != nil && sig != unix.SIGCONT && !(sig == unix.SIGKILL && logindKilled) {
			logindKilled = logindKilled || sig == unix.SIGKILL
			// logind reaches the user's slice by cgroup; processes outside
			// it (cron, services) are what kill(-1) below is for.
			err := o.Logind.KillUser(ctx, uint32(uid), syscall.Signal(sig))
			res := "done"
			if err != nil {
				res = err.Error()
			}
			act("logind", "user "+strconv.Itoa(uid), sig, res)
		}
		if sig == unix.SIGKILL && sliceDir != "" && !sliceKilled {
			// The kernel kills the whole slice at once, forks included.
			sliceKilled = true
			res := "done"
			if err := cgroup.Kill(sliceDir); err != nil {
				res = err.Error()
			}
			act("cgroup", slice, sig, res)
		}
		err := runHelper(uid, gid, sig)
		res := "sent"
		if err != nil {
			res = err.Error()
		}
		uo.Signals = append(uo.Signals, SignalRecord{Signal: SignalName(sig), At: time.Now(),
			Result: res + " (kill(-1) as uid " + strconv.Itoa(uid) + ")"})
		return err
	}
	if o.Signal != unix.SIGKILL {
		if err := send(o.Signal); err != nil {
			uo.Result, uo.Reason = Survived, err.Error()
			return uo
		}
		send(unix.SIGCONT)
		deadline := time.Now().Add(o.Wait)
		for time.Now().Before(deadline) && len(userPids(o.ProcRoot, uid)) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !o.NoEscalate {
		for round := 0; round < 20 && len(userPids(o.ProcRoot, uid)) > 0; round++ {
			if err := send(unix.SIGKILL); err != nil {
				uo.Reason = err.Error()
				break
			}
			// Let the kernel finish the exits before looking again.
			for i := 0; i < 10 && len(userPids(o.ProcRoot, uid)) > 0; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	uo.Survivors = userPids(o.ProcRoot, uid)
	if len(uo.Survivors) == 0 {
		uo.Result = Ended
	} else {
		uo.Result = Survived
		if uo.Reason == "" {
			uo.Reason = fmt.Sprintf("did not converge: %d process(es) of uid %d still running after %d rounds", len(uo.Survivors), uid, uo.Rounds)
		}
	}
	return uo
}

// userPids lists the live processes whose real or effective uid is uid.
func userPids(root string, uid int) []int {
	snap, err := proc.Scan(root)
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range snap.Procs {
		if !p.Zombie() && !p.KernelThread() && (p.UID == uid || p.EUID == uid) {
			out = append(out, p.PID)
		}
	}
	slices.Sort(out)
	return out
}

// runHelper runs this binary as uid (and gid, no supplementary groups) to
// call kill(-1, sig). Go applies setuid to every thread of a process, so
// the drop happens in a fresh process, never in sshkick itself.
func runHelper(uid, gid int, sig unix.Signal) error {
	if uid <= 0 {
		return errors.New("refusing to run kill(-1) as root")
	}
	// A user at their RLIMIT_NPROC would make the helper's exec fail after
	// setuid (EAGAIN); the limit checked is the helper's own, inherited
	// from us, so lift ours.
	unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY})
	// Exec our own binary through an inherited descriptor: the user may
	// not be allowed to reach the directory it lives in (go run's build
	// cache, a root-only path).
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("kill helper: %w", err)
	}
	defer self.Close()
	cmd := exec.Command("/proc/self/fd/3", HelperArg, strconv.Itoa(uid), strconv.Itoa(int(sig)))
	cmd.ExtraFiles = []*os.File{self}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	cmd.Dir = "/"
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kill helper as uid %d: %v %s", uid, err, out)
	}
	return nil
}

// HelperMain is the helper: args are the uid it must be running as and the
// signal. It checks it really is that uid, and not root, before calling
// kill(-1): with uid 0 that would signal every process on the host.
func HelperMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "sshkick: kill helper: want UID SIGNAL")
		return 2
	}
	uid, err1 := strconv.Atoi(args[0])
	sig, err2 := strconv.Atoi(args[1])
	if err1 != nil || err2 != nil || uid <= 0 || sig < 1 || sig > 64 {
		fmt.Fprintln(os.Stderr, "sshkick: kill helper: bad arguments")
		return 2
	}
	ruid, euid, suid := unix.Getresuid()
	if ruid != uid || euid != uid || suid != uid || ruid == 0 {
		fmt.Fprintf(os.Stderr, "sshkick: kill helper: running as uid %d/%d/%d, not %d: refusing\n", ruid, euid, suid, uid)
		return 1
	}
	// kill(-1) reaches every process this uid may signal except the caller
	// itself and init.
	if err := unix.Kill(-1, unix.Signal(sig)); err != nil && !errors.Is(err, unix.ESRCH) {
		fmt.Fprintf(os.Stderr, "sshkick: kill helper: kill(-1, %d): %v\n", sig, err)
		return 1
	}
	return 0
}
