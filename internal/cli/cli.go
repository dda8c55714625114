// Package cli is sshkick's command line, a thin client of the engine:
// cobra commands turn flags into an engine request and render the report —
// tables for people, JSON for scripts. It maps every error to a documented
// exit code in one place (exitCode). It never signals a process, writes to
// a user's terminal or reads /proc itself: the engine does, through its
// edges.
//
// Output rules: data goes to standard output; notes, warnings and errors go
// to standard error as "sshkick: …" lines, lowercase, no trailing period,
// saying what happened and what to do. Reports come from the engine already
// sanitized; errors quote raw input and are sanitized once, in exitCode.
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

	"github.com/sshkick/sshkick/internal/engine"
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
// print: published by the engine, or sanitized.
func (s *IO) notef(format string, a ...any) {
	fmt.Fprintf(s.Err, "sshkick: "+format+"\n", a...)
}

func (s *IO) notes(ns []string) {
	for _, n := range ns {
		s.notef("note: %s", n)
	}
}

// Factory gives commands what they depend on: the streams and an engine.
type Factory struct {
	IO *IO
	// Engine makes the engine for one command; the options come from
	// the command's flags (--utmp and the hidden --proc-root, --dev-root).
	Engine func(engine.SystemOptions) (*engine.Engine, error)
}

// Main runs sshkick with args and returns the exit code.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	if code, ok := engine.RunHelper(args); ok {
		return code
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
	root := NewRoot(&Factory{IO: ios, Engine: engine.NewSystem})
	root.SetArgs(args)
	err := root.Execute()
	return exitCode(ios, err)
}

// exitCode prints err for a person and maps it to an exit code. Errors
// quote what the admin typed and what utmp or /proc said: they are
// sanitized here, once.
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
	var re *engine.RequestError
	switch {
	case errors.As(err, &ue):
		ios.notef("%s", sanitize.Field(ue.err.Error()))
		ios.notef("see 'sshkick --help'")
		return ExitUsage
	case errors.As(err, &re):
		ios.notef("%s", sanitize.Field(re.Error()))
		ios.notef("see 'sshkick --help'")
		return ExitUsage
	case errors.Is(err, engine.ErrNoMatch):
		ios.notef("%s", sanitize.Field(err.Error()))
		return ExitNoMatch
	}
	ios.notef("%s", sanitize.Field(err.Error()))
	return ExitError
}

// NewRoot builds the command tree.
func NewRoot(f *Factory) *cobra.Command {
	ios := f.IO
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

	list := newListCmd(f, nil)
	root.AddCommand(list, newKickCmd(f, nil), newMsgCmd(f, nil))
	root.AddCommand(newWatchCommands(f)...)
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

// noArgs checks positional arguments and reports a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got \"%s\"", cmd.Name(), strings.Join(args, " "))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
