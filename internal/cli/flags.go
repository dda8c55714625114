package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/session"
)

// selectFlags are the discovery and selection flags shared by list, kick
// and msg.
type selectFlags struct {
	utmp     string
	noLogind bool
	procRoot string
	devRoot  string
	users    []string
	idle     string
	from     []string
	fromAny  bool
	kinds    []string
}

func (f *selectFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.utmp, "utmp", session.DefaultUtmp, "read login records from `FILE` (a missing file is normal)")
	fs.StringSliceVarP(&f.users, "user", "u", nil, "only sessions of user `NAME` (or uid; repeat or comma-separate)")
	fs.StringVar(&f.idle, "idle", "", "only sessions idle longer than `DURATION` (e.g. 90m, 2h, 1d)")
	fs.StringSliceVar(&f.from, "from", nil, "only sessions from `ADDR` or network (e.g. 10.0.0.0/8)")
	fs.BoolVar(&f.fromAny, "from-any", false, "let --from match addresses the user could have chosen (utmp records written through utempter, SSH_CONNECTION)")
	fs.StringSliceVar(&f.kinds, "kind", nil, "only sessions of `KIND`: "+strings.Join(engine.Kinds(), ", "))
	// Fixture trees for whole-binary tests (and curious admins).
	fs.StringVar(&f.procRoot, "proc-root", "/proc", "read processes from `DIR`")
	fs.StringVar(&f.devRoot, "dev-root", "/dev", "find terminals under `DIR`")
	fs.BoolVar(&f.noLogind, "no-logind", false, "do not ask logind")
	fs.MarkHidden("proc-root")
	fs.MarkHidden("no-logind")
	fs.MarkHidden("dev-root")
}

func (f *selectFlags) system() engine.SystemOptions {
	return engine.SystemOptions{UtmpPath: f.utmp, ProcRoot: f.procRoot, DevRoot: f.devRoot, NoLogind: f.noLogind}
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
	flt.FromUnverified = f.fromAny
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
// 15m, 1h30m) plus days (1d, 2d12h). A bare number is refused (minutes or
// seconds would be a guess), except 0.
func parseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "0" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("bad duration \"%s\": use a number and a unit, like 30s, 5m, 2h or 1d", orig)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("bad duration \"%s\": add a unit, like %ss, %sm or %sh", orig, s, s, s)
	}
	d, err := time.ParseDuration(s)
	// days+d < days: the sum overflowed to a negative duration, which
	// Filter.Match ignores, so --idle would select every session.
	if err != nil || d < 0 || days+d < days {
		if strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("bad duration \"%s\": must not be negative: use a number and a unit, like 30s or 5m", orig)
		}
		return 0, fmt.Errorf("bad duration \"%s\": use a number and a unit, like 30s, 5m, 2h or 1d", orig)
	}
	return days + d, nil
}

// durationValue is a duration flag that takes the same forms as --idle.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := parseDuration(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (durationValue) Type() string { return "duration" }

func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var(durationValue{p}, name, usage)
}
