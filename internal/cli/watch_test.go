package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("interval = \"15s\"\n[[rule]]\nname = \"r\"\nidle = \"30\"\n"), 0o644)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[[rule]]\nname = \"r\"\nidle = \"30m\"\nwarn = [\"1m\"]\n"), 0o644)
	var out, errb bytes.Buffer
	if code := Main([]string{"policy", "check", bad}, nil, &out, &errb); code != ExitError || !strings.Contains(errb.String(), bad+":4:8: idle: bad duration \"30\": add a unit") {
		t.Fatalf("bad file: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main([]string{"policy", "check", good}, nil, &out, &errb); code != ExitOK || !strings.Contains(out.String(), "valid: 1 rule(s)") {
		t.Fatalf("good file: exit %d, %q %q", code, out.String(), errb.String())
	}
	errb.Reset()
	if code := Main([]string{"policy", "simulate", "--for", "10", good}, nil, &out, &errb); code != ExitUsage {
		t.Fatalf("--for 10: exit %d %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"watch", "--bogus"}, nil, &out, &errb); code != ExitUsage {
		t.Fatalf("unknown flag: exit %d", code)
	}
}
