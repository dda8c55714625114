// Package cli is sshkick's command line: cobra commands that turn flags
// into options, call discovery, kick and termmsg, and print tables for
// people and JSON for scripts. It maps every error to a documented exit
// code in one place (exitCode).
//
// Output rules: data goes to standard output; notes, warnings and errors go
// to standard error as "sshkick: …" lines, lowercase, no trailing period,
// saying what happened and what to do. Every string that came from utmp,
// /proc or D-Bus passes through sanitize.Field before it is printed.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sshkick/sshkick/internal/kick"
	"github.com/sshkick/sshkick/internal/sanitize"
)

// Exit codes shared by every command (README, "Exit codes").
const (
	ExitOK      = 0 // success
	ExitError   = 1 // an error, or something could not be done
	ExitUsage   = 2 // bad command line: unknown flag, bad duration or address
	ExitNoMatch = 3 // kick/msg: no session matched the targets
)

// usageError is a bad command line: exit code 2, and nothing was changed.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitErr carries a specific exit code with an optional message.
type exitErr struct {
	code int
	err  error
}

func (e exitErr) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e exitErr) Unwrap() error { return e.err }

// IO is where a command reads and writes; tests pass buffers.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// OutTTY and InTTY say whether standard output/input are terminals
	// (tables fit the width; kick asks for confirmation).
	OutTTY, InTTY bool
	Width         int
}

// notef writes one line to standard error. Its arguments must be safe to
// print: sanitized already (exitCode sanitizes errors).
func (s *IO) notef(format string, a ...any) {
	fmt.Fprintf(s.Err, "sshkick: "+format+"\n", a...)
}

// Main runs sshkick with args and returns the exit code.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	if len(args) > 0 && args[0] == kick.HelperArg {
		return kick.HelperMain(args[1:])
	}
	ios := &IO{In: in, Out: out, Err: errw, Width: 0}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ios.OutTTY = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			ios.Width = w
		}
	}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ios.InTTY = true
	}
	root := NewRoot(ios)
	root.SetArgs(args)
	err := root.Execute()
	return exitCode(ios, err)
}

// exitCode prints err for a person and maps it to an exit code.
func exitCode(ios *IO, err error) int {
	if err == nil {
		return ExitOK
	}
	var ee exitErr
	if errors.As(err, &ee) {
		if ee.err != nil {
			ios.notef("%s", sanitize.Field(ee.err.Error()))
		}
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		ios.notef("%s", sanitize.Field(ue.err.Error()))
		ios.notef("see 'sshkick --help'")
		return ExitUsage
	}
	// Errors quote paths and names from the command line, utmp and /proc.
	ios.notef("%s", sanitize.Field(err.Error()))
	return ExitError
}

// NewRoot builds the command tree.
func NewRoot(ios *IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "sshkick",
		Short: "See, warn and end login sessions on this host",
		Long: `sshkick lists every login session on this host — SSH with and without a
terminal, consoles, multiplexer panes — from utmp, /proc and logind together,
and warns or ends them safely.

With no command it lists sessions, like 'sshkick list'. Manual pages:
sshkick(8), one per command (sshkick-kick(8)…) and sshkick-policy.toml(5).`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// An unknown command is a bad command line: exit code 2.
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.NoArgs(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		},
	}
	root.SetOut(ios.Out)
	root.SetErr(ios.Err)
	root.SetIn(ios.In)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	list := newListCmd(ios)
	root.AddCommand(list, newKickCmd(ios), newMsgCmd(ios))
	// Bare `sshkick` lists: share the list command's flags and run it.
	root.Flags().AddFlagSet(list.Flags())
	root.RunE = list.RunE
	for _, c := range root.Commands() {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	}
	setupCompletion(root)
	return root
}

// Version, Commit and Date are stamped at build time (make package):
//
//	-ldflags "-X github.com/sshkick/sshkick/internal/cli.Version=1.2.3
//	          -X github.com/sshkick/sshkick/internal/cli.Commit=0123abcd…
//	          -X github.com/sshkick/sshkick/internal/cli.Date=2026-12-02T18:00:00Z"
//
// Without Version, the module version or VCS revision from the build info
// is used, else "devel".
var Version, Commit, Date string

func version() string {
	v := Version
	if v == "" {
		v = buildInfoVersion()
	}
	var extra []string
	if Commit != "" {
		extra = append(extra, "commit "+Commit)
	}
	if Date != "" {
		extra = append(extra, "built "+Date)
	}
	if len(extra) > 0 {
		v += " (" + strings.Join(extra, ", ") + ")"
	}
	return v
}

func buildInfoVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}

// args checks positional arguments and reports a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got \"%s\"", cmd.Name(), strings.Join(args, " "))
	}
	return nil
}
