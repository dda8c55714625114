package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// The testscript files under testdata/script run the real sshkick binary
// (this test binary, re-executed as "sshkick") over fixture /proc trees, as
// a person would at a terminal.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sshkick": func() { os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	fixtures, err := filepath.Abs("../session/testdata")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("FIXTURES", fixtures)
			env.Setenv("SSHKICK_AUDIT_LOG", "")
			env.Setenv("TZ", "UTC")
			return nil
		},
	})
}
