package cli

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCLIIsAThinClient: the command line talks to the engine only; it
// never signals, writes to users' terminals or reads /proc itself.
func TestCLIIsAThinClient(t *testing.T) {
	forbidden := []string{
		"github.com/sshkick/sshkick/internal/kick",
		"github.com/sshkick/sshkick/internal/termmsg",
		"github.com/sshkick/sshkick/internal/proc",
		"github.com/sshkick/sshkick/internal/audit",
		"golang.org/x/sys/unix",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			for _, bad := range forbidden {
				if p == bad {
					t.Errorf("%s imports %s: go through the engine", f, p)
				}
			}
		}
	}
}
