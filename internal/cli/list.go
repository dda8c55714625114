package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
)

// selectFlags are the discovery and selection flags shared by list, kick
// and msg.
type selectFlags struct {
	utmp  string
	users []string
	idle  string
	from  []string
	kinds []string
}

func (f *selectFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.utmp, "utmp", session.DefaultUtmp, "read login records from `FILE` (a missing file is normal)")
	fs.StringSliceVarP(&f.users, "user", "u", nil, "only sessions of user `NAME` (or uid; repeat or comma-separate)")
	fs.StringVar(&f.idle, "idle", "", "only sessions idle longer than `DURATION` (e.g. 90m, 2h, 1d)")
	fs.StringSliceVar(&f.from, "from", nil, "only sessions from `ADDR` or network (e.g. 10.0.0.0/8)")
	fs.StringSliceVar(&f.kinds, "kind", nil, "only sessions of `KIND`: ssh, ssh-notty, console, pane, mosh, local")
}

// filter parses the selection flags; errors are usage errors.
func (f *selectFlags) filter() (session.Filter, error) {
	var flt session.Filter
	for _, u := range f.users {
		if u = strings.TrimSpace(u); u == "" {
			return flt, usagef("--user needs a user name")
		}
		flt.Users = append(flt.Users, u)
	}
	if f.idle != "" {
		d, err := parseDuration(f.idle)
		if err != nil {
			return flt, usageError{fmt.Errorf("--idle: %w", err)}
		}
		flt.Idle = d
	}
	for _, a := range f.from {
		p, err := session.ParseFrom(strings.TrimSpace(a))
		if err != nil {
			return flt, usageError{fmt.Errorf("--from: %w", err)}
		}
		flt.From = append(flt.From, p)
	}
	for _, k := range f.kinds {
		kind, err := session.ParseKind(strings.TrimSpace(k))
		if err != nil {
			return flt, usageError{fmt.Errorf("--kind: %w", err)}
		}
		flt.Kinds = append(flt.Kinds, kind)
	}
	return flt, nil
}

// parseDuration reads durations as admins write them: Go's forms (90s,
// 15m, 1h30m) plus days (1d, 2d12h). A bare number is refused: minutes or
// seconds would be a guess.
func parseDuration(s string) (time.Duration, error) {
	orig := s
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("bad duration \"%s\": use a number and a unit, like 30m, 2h or 1d", orig)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("bad duration \"%s\": add a unit, like %sm or %sh", orig, s, s)
	}
	d, err := time.ParseDuration(s)
	// days+d < days: the sum overflowed to a negative duration, which
	// Filter.Match ignores, so --idle would select every session.
	if err != nil || d < 0 || days+d < days {
		return 0, fmt.Errorf("bad duration \"%s\": use a number and a unit, like 30m, 2h or 1d", orig)
	}
	return days + d, nil
}

type listOptions struct {
	IO     *IO
	Select selectFlags
	JSON   bool
	NoHead bool
	// Discover is session.Discover; tests may replace it.
	Discover func(context.Context, session.Options) (*session.Result, error)
	Now      func() time.Time
}

func newListCmd(ios *IO) *cobra.Command {
	o := &listOptions{IO: ios, Discover: session.Discover, Now: time.Now}
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
		RunE: func(cmd *cobra.Command, args []string) error { return runList(cmd.Context(), o) },
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
	res, err := o.Discover(ctx, session.Options{UtmpPath: o.Select.utmp, Now: o.Now()})
	if err != nil {
		return err
	}
	if res.Logind != nil {
		defer res.Logind.Close()
	}
	for _, n := range res.Notes {
		o.IO.notef("note: %s", sanitize.Field(n))
	}
	sessions := flt.Apply(res.Sessions)
	if o.JSON {
		return writeJSON(o.IO, sessions)
	}
	return writeTable(o.IO, sessions, o.Now(), o.NoHead)
}

// jsonSession is the published JSON form of a session: every string
// sanitized, times in RFC 3339, durations in seconds.
type jsonSession struct {
	ID          string   `json:"id"`
	User        string   `json:"user"`
	UID         int      `json:"uid"`
	TTY         string   `json:"tty"`
	Host        string   `json:"host"`
	Addr        string   `json:"addr"`
	Port        int      `json:"port"`
	Login       *string  `json:"login"`
	IdleSeconds *int64   `json:"idle_seconds"`
	PID         int      `json:"pid"`
	Kind        string   `json:"kind"`
	Stale       bool     `json:"stale"`
	StaleReason string   `json:"stale_reason,omitempty"`
	Sources     []string `json:"sources"`
	Command     string   `json:"command"`
	Processes   int      `json:"processes"`
	PIDs        []int    `json:"pids"`
	LogindID    string   `json:"logind_id,omitempty"`
}

func toJSON(s *session.Session) jsonSession {
	f := sanitize.Field
	j := jsonSession{
		ID: f(s.ID), User: f(s.User), UID: s.UID, TTY: f(s.TTY), Host: f(s.Host), Addr: f(s.Addr),
		Port: s.Port, IdleSeconds: s.IdleSeconds, PID: s.PID, Kind: string(s.Kind), Stale: s.Stale,
		StaleReason: f(s.StaleReason), Sources: s.Sources, Command: f(s.Command),
		Processes: s.Processes, PIDs: s.PIDs, LogindID: f(s.LogindID),
	}
	if !s.Login.IsZero() {
		t := s.Login.Format(time.RFC3339)
		j.Login = &t
	}
	if j.Sources == nil {
		j.Sources = []string{}
	}
	if j.PIDs == nil {
		j.PIDs = []int{}
	}
	return j
}

func writeJSON(ios *IO, sessions []session.Session) error {
	out := make([]jsonSession, len(sessions))
	for i := range sessions {
		out[i] = toJSON(&sessions[i])
	}
	enc := json.NewEncoder(ios.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writeTable(ios *IO, sessions []session.Session, now time.Time, noHead bool) error {
	t := &table{rows: make([][]string, 0, len(sessions)+1)}
	if ios.OutTTY {
		t.width = ios.Width
	}
	if !noHead {
		t.add("ID", "USER", "TTY", "FROM", "LOGIN", "IDLE", "PID", "KIND", "WHAT")
	}
	for i := range sessions {
		s := &sessions[i]
		what := sanitize.Field(s.Command)
		if s.Stale {
			what = "(stale: " + sanitize.Field(s.StaleReason) + ")"
		} else if what == "" {
			what = "-"
		}
		t.add(sanitize.Field(s.ID), orDash(sanitize.Field(s.User)), orDash(sanitize.Field(s.TTY)),
			orDash(sanitize.Field(s.Host)), loginString(s.Login, now), idleString(s), strconv.Itoa(s.PID), string(s.Kind), what)
	}
	return t.write(ios.Out)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
func idleString(s *session.Session) string {
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
