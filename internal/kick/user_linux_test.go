package kick

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUserRefusal(t *testing.T) {
	t.Setenv("SUDO_UID", "")
	me := os.Getuid()
	other := 1000
	if me == other {
		other = 1001
	}
	tests := []struct {
		name    string
		uid     int
		force   bool
		sudoUID string
		want    string // substring; "" means allowed
	}{
		{"root", 0, false, "", "uid 0 is root"},
		{"root forced is still refused", 0, true, "", "uid 0 is root"},
		{"system account", 999, false, "", "system account (below 1000)"},
		{"system account forced", 999, true, "", ""},
		{"uid 1", 1, false, "", "system account"},
		{"first user uid", other, false, "", ""},
		{"first user uid forced", other, true, "", ""},
		{"the sudo user", other, false, strconv.Itoa(other), "you ran sudo as it"},
		{"the sudo user forced", other, true, strconv.Itoa(other), ""},
		{"another sudo user", other, false, strconv.Itoa(other + 1), ""},
		{"garbage SUDO_UID", other, false, "x" + strconv.Itoa(other), ""},
		{"root via sudo is still root", 0, true, "0", "uid 0 is root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SUDO_UID", tc.sudoUID)
			got := UserRefusal(tc.uid, tc.force)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("UserRefusal(%d, %v) = %q, want %q", tc.uid, tc.force, got, tc.want)
			}
		})
	}
	if me >= MinUserUID {
		// sshkick run by a normal user (dry run): their own uid.
		if got := UserRefusal(me, false); !strings.Contains(got, "runs as") {
			t.Errorf("UserRefusal(own uid %d) = %q", me, got)
		}
		if got := UserRefusal(me, true); got != "" {
			t.Errorf("UserRefusal(own uid %d, force) = %q", me, got)
		}
	}
}

// TestHelperMainRefuses runs the kill(-1) helper only where it must refuse
// before kill: bad arguments, uid 0, and a uid it is not running as. It
// never passes the uid the test runs as.
func TestHelperMainRefuses(t *testing.T) {
	ruid, euid, suid := unix.Getresuid()
	notMe := 12345
	for notMe == ruid || notMe == euid || notMe == suid {
		notMe++
	}
	tests := []struct {
		name string
		args []string
		want []int
	}{
		{"no args", nil, []int{2}},
		{"one arg", []string{strconv.Itoa(notMe)}, []int{2}},
		{"three args", []string{strconv.Itoa(notMe), "9", "x"}, []int{2}},
		{"uid not a number", []string{"root", "9"}, []int{2}},
		{"signal not a number", []string{strconv.Itoa(notMe), "KILL"}, []int{2}},
		{"uid 0", []string{"0", "9"}, []int{1, 2}},
		{"uid 0 with signal 0", []string{"0", "0"}, []int{1, 2}},
		{"negative uid", []string{"-1", "9"}, []int{1, 2}},
		{"signal 0", []string{strconv.Itoa(notMe), "0"}, []int{2}},
		{"signal 65", []string{strconv.Itoa(notMe), "65"}, []int{2}},
		{"negative signal", []string{strconv.Itoa(notMe), "-9"}, []int{2}},
		{"not running as that uid", []string{strconv.Itoa(notMe), "9"}, []int{1}},
		{"not running as that uid, signal 0", []string{strconv.Itoa(notMe), "0"}, []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Guard: the helper is never given a uid we run as.
			if len(tc.args) == 2 {
				if n, err := strconv.Atoi(tc.args[0]); err == nil && n > 0 && (n == ruid || n == euid || n == suid) {
					t.Fatalf("test would run kill(-1) as uid %d", n)
				}
			}
			got := HelperMain(tc.args)
			ok := false
			for _, w := range tc.want {
				ok = ok || got == w
			}
			if !ok {
				t.Errorf("HelperMain(%q) = %d, want one of %v", tc.args, got, tc.want)
			}
		})
	}
}

func TestKillUserRefusesRoot(t *testing.T) {
	uo := KillUser(context.Background(), "root", 0, 0, Options{})
	if uo.Result != Refused || !strings.Contains(uo.Reason, "root") || uo.Rounds != 0 || len(uo.Signals) != 0 {
		t.Errorf("KillUser(root) = %+v, want refused without a signal", uo)
	}
}

func TestKillUserDryRun(t *testing.T) {
	// A uid with no processes: the dry run finds none and sends nothing.
	const uid = 3999999
	uo := KillUser(context.Background(), "nobody-here", uid, uid, Options{DryRun: true})
	if uo.Result != DryRun || uo.Rounds != 0 || len(uo.Found) != 0 || len(uo.Signals) != 0 {
		t.Errorf("KillUser dry run = %+v", uo)
	}
}

func TestRunHelperRefusesRoot(t *testing.T) {
	for _, uid := range []int{0, -1} {
		if err := runHelper(uid, 0, unix.SIGKILL); err == nil {
			t.Errorf("runHelper(uid %d) = nil, want a refusal", uid)
		}
	}
}
