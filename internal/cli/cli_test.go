package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/engine/enginetest"
)

func testIO() (*IO, *bytes.Buffer, *bytes.Buffer) {
	out, errw := &bytes.Buffer{}, &bytes.Buffer{}
	return &IO{In: strings.NewReader(""), Out: out, Err: errw}, out, errw
}

// run runs the command tree on args; every case here fails before
// discovery, so nothing on the host is read or touched.
func run(args ...string) (code int, stdout, stderr string) {
	ios, out, errw := testIO()
	root := NewRoot(&Factory{IO: ios, Engine: noEngine})
	root.SetArgs(args)
	code = exitCode(ios, root.Execute())
	return code, out.String(), errw.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"list", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"kick", "--bogus", "pts/0"}, "unknown flag: --bogus"},
		{[]string{"msg", "-Q"}, "unknown shorthand flag: 'Q'"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"list", "extra"}, `list takes no arguments, got "extra"`},
		{[]string{"list", "--idle", "30"}, "add a unit"},
		{[]string{"--idle", "30"}, "add a unit"},
		{[]string{"list", "--idle", "soon"}, "--idle: bad duration"},
		{[]string{"list", "--idle", "65535d2000000h"}, "--idle: bad duration"},
		{[]string{"list", "--from", "x"}, "--from: bad address or network"},
		{[]string{"list", "--from", "10.0.0.0/33"}, "--from: bad address or network"},
		{[]string{"list", "--kind", "telnet"}, `--kind: unknown kind "telnet"`},
		{[]string{"list", "--user", " "}, "--user needs a user name"},
		{[]string{"kick"}, "nothing to kick"},
		{[]string{"kick", "--signal", "BOGUS", "pts/0"}, `--signal: unknown signal "BOGUS"`},
		{[]string{"kick", "--signal", "0", "pts/0"}, "unknown signal"},
		{[]string{"kick", "--all-processes", "pts/0"}, "--all-processes needs a user"},
		{[]string{"kick", "--all-processes", "1234"}, "--all-processes needs a user"},
		{[]string{"kick", "--all-processes", "ssh:123"}, "--all-processes needs a user"},
		{[]string{"kick", "--wait", "-1s", "pts/0"}, `"--wait" flag: bad duration "-1s": must not be negative`},
		{[]string{"kick", "--wait", "5", "pts/0"}, `"--wait" flag: bad duration "5": add a unit, like 5s, 5m or 5h`},
		{[]string{"kick", "--delay", "soon", "pts/0"}, `"--delay" flag: bad duration "soon"`},
		{[]string{"msg", "--timeout", "2", "--all", "-m", "x"}, `"--timeout" flag: bad duration "2": add a unit`},
		{[]string{"kick", "--delay", "-1m", "pts/0"}, "must not be negative"},
		{[]string{"kick", "--msg-timeout", "0s", "pts/0"}, "--msg-timeout must be positive"},
		{[]string{"kick", "", "pts/0"}, "an empty target"},
		{[]string{"kick", "--idle", "30"}, "add a unit"},
		{[]string{"kick", "--kind", "telnet", "pts/0"}, "--kind"},
		{[]string{"msg"}, "no one to write to"},
		{[]string{"msg", "-m", "hello"}, "no one to write to"},
		{[]string{"msg", "--all", "pts/1", "-m", "x"}, "--all sends to every session"},
		{[]string{"msg", "--all", "-m", ""}, "--message is empty"},
		{[]string{"msg", "--all", "-m", "x", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"msg", "--from", "nowhere", "pts/1"}, "--from"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(tc.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d; stderr %q", code, ExitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want it empty for a usage error", stdout)
			}
			if !strings.HasPrefix(stderr, "sshkick: ") {
				t.Errorf("stderr %q does not start with \"sshkick: \"", stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tc.want)
			}
			for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
				if !strings.HasPrefix(line, "sshkick: ") {
					t.Errorf("stderr line %q lacks the prefix", line)
				}
			}
			if !strings.Contains(stderr, "see 'sshkick --help'") {
				t.Errorf("stderr %q does not point to --help", stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"kick", "--help"}, {"help", "msg"}} {
		code, stdout, stderr := run(args...)
		if code != ExitOK || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("%q: code %d, stdout %.60q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"nil", nil, ExitOK, ""},
		{"plain error", errors.New("boom"), ExitError, "sshkick: boom\n"},
		{"usage", usagef("bad %s", "flag"), ExitUsage, "sshkick: bad flag\nsshkick: see 'sshkick --help'\n"},
		{"wrapped usage", errorsJoin(usagef("bad")), ExitUsage, "sshkick: bad\nsshkick: see 'sshkick --help'\n"},
		{"exit code with message", exitErr{ExitNoMatch, errors.New("no session matched")}, ExitNoMatch, "sshkick: no session matched\n"},
		{"exit code, silent", exitErr{ExitError, nil}, ExitError, ""},
	}
	for _, tc := range tests {
		ios, out, errw := testIO()
		if got := exitCode(ios, tc.err); got != tc.code {
			t.Errorf("%s: exitCode = %d, want %d", tc.name, got, tc.code)
		}
		if errw.String() != tc.stderr || out.Len() != 0 {
			t.Errorf("%s: stderr %q stdout %q, want stderr %q", tc.name, errw, out, tc.stderr)
		}
	}
}

func errorsJoin(err error) error { return errors.Join(errors.New("context"), err) }

func TestMainEntry(t *testing.T) {
	var out, errw bytes.Buffer
	if code := Main([]string{"list", "--idle", "30"}, strings.NewReader(""), &out, &errw); code != ExitUsage {
		t.Errorf("Main(list --idle 30) = %d, want %d", code, ExitUsage)
	}
	if out.Len() != 0 || !strings.HasPrefix(errw.String(), "sshkick: ") {
		t.Errorf("stdout %q stderr %q", out.String(), errw.String())
	}
	// The kill helper entry point is dispatched first and refuses root's
	// uid before anything else: it never reaches kill(-1).
	for _, args := range [][]string{{engine.HelperArg}, {engine.HelperArg, "0", "9"}, {engine.HelperArg, "x", "9"}} {
		if code := Main(args, strings.NewReader(""), &out, &errw); code != ExitUsage && code != ExitError {
			t.Errorf("Main(%q) = %d, want a refusal", args, code)
		}
	}
}

// TestErrorsAreSanitized: an error quotes what the admin typed (or what
// utmp said); control bytes in it reach the terminal escaped, once.
func TestErrorsAreSanitized(t *testing.T) {
	for _, args := range [][]string{
		{"list", "--kind", "bad\x1b[2J\u202e"},
		{"list", "--idle", "3\x1b]0;x\x07"},
		{"list", "--from", "\x9b2J"},
		{"kick", "--signal", "\x1b[c", "pts/0"},
		{"list", "--no-such-\x1b[2J"},
	} {
		code, stdout, stderr := run(args...)
		if code != ExitUsage || stdout != "" {
			t.Errorf("%q: exit %d stdout %q", args, code, stdout)
		}
		if strings.ContainsAny(stderr, "\x1b\x07\u202e\u009b") || strings.Contains(stderr, `\\x`) || !strings.Contains(stderr, `\x1b`) && !strings.Contains(stderr, `\x9b`) {
			t.Errorf("%q: stderr %q", args, stderr)
		}
	}
}

// noEngine is the engine of tests that must fail before discovery: a
// host whose discovery fails loudly.
func noEngine(engine.SystemOptions) (*engine.Engine, error) {
	h := enginetest.NewHost()
	h.Discoverer.Err = errors.New("a usage error reached discovery")
	return h.Engine(), nil
}
