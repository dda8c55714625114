package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshkick/sshkick/internal/engine"
)

type listOptions struct {
	IO     *IO
	Engine func(engine.SystemOptions) (*engine.Engine, error)
	Select selectFlags
	JSON   bool
	NoHead bool
	Now    func() time.Time
}

func newListCmd(f *Factory, runF func(context.Context, *listOptions) error) *cobra.Command {
	o := &listOptions{IO: f.IO, Engine: f.Engine, Now: time.Now}
	if runF == nil {
		runF = runList
	}
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "List login sessions (the default command)",
		Long: `List every login session on this host: SSH with and without a terminal,
consoles and multiplexer panes, from utmp, /proc and logind together.

A utmp record that no live process backs is listed as stale, never hidden.
As a normal user, sshkick lists what it can read and says what it could not.`,
		Example: `  sshkick list
  sshkick list --user alice --idle 2h
  sshkick list --from 10.0.0.0/8 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runF(cmd.Context(), o) },
	}
	o.Select.register(cmd.Flags())
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print a JSON array of sessions (keys in the README)")
	cmd.Flags().BoolVar(&o.NoHead, "no-headers", false, "print the table without its header line")
	return cmd
}

func runList(ctx context.Context, o *listOptions) error {
	flt, err := o.Select.filter()
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	e, err := o.Engine(o.Select.system())
	if err != nil {
		return err
	}
	defer e.Close()
	snap, err := e.Sessions(ctx, engine.Query{Filter: flt})
	if err != nil {
		return err
	}
	o.IO.notes(snap.Notes)
	if o.JSON {
		return writeJSON(o.IO, snap.Sessions)
	}
	return writeTable(o.IO, snap.Sessions, o.Now(), o.NoHead)
}

// writeJSON prints v indented; a broken standard output is an error.
func writeJSON(ios *IO, v any) error {
	enc := json.NewEncoder(ios.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write the JSON output: %w", err)
	}
	return nil
}

func writeTable(ios *IO, sessions []engine.Session, now time.Time, noHead bool) error {
	t := &table{rows: make([][]string, 0, len(sessions)+1)}
	if ios.OutTTY {
		t.width = ios.Width
	}
	if !noHead {
		t.add("ID", "USER", "TTY", "FROM", "LOGIN", "IDLE", "PID", "KIND", "WHAT")
	}
	for i := range sessions {
		s := &sessions[i]
		what := s.Command
		if s.Stale {
			what = "(stale: " + s.StaleReason + ")"
		} else if what == "" {
			what = "-"
		}
		from := orDash(s.Host)
		if s.Host != "" && !s.Verified {
			// The user could have chosen this address (utempter, their
			// own environment): marked, and --from ignores it.
			from += "?"
		}
		t.add(s.ID, orDash(s.User), orDash(s.TTY), from, loginString(s.LoginTime, now), idleString(s),
			strconv.Itoa(s.PID), s.Kind, what)
	}
	return t.write(ios.Out)
}

// loginString is the LOGIN column: the time for today's logins, else the
// date, as w does.
func loginString(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t = t.Local()
	now = now.Local()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04")
	}
	if now.Sub(t) < 300*24*time.Hour {
		return t.Format("Jan02")
	}
	return t.Format("2006-01-02")
}

// idleString is the IDLE column: "-" without a terminal, else a short
// duration (42s, 7m, 1h05m, 3d04h).
func idleString(s *engine.Session) string {
	if s.IdleSeconds == nil {
		return "-"
	}
	return shortDuration(time.Duration(*s.IdleSeconds) * time.Second)
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}
