package sshdtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildRelease builds sshkick into dir the way packaging/build.sh builds
// the shipped binary — static (CGO_ENABLED=0), -trimpath, -ldflags "-s -w"
// — so that benchmarks time what users run (a cgo build starts through
// the dynamic loader, about 1 ms more per run). It returns the binary.
func BuildRelease(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "sshkick")
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "github.com/sshkick/sshkick/cmd/sshkick")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build sshkick: %v\n%s", err, out)
	}
	return bin
}
