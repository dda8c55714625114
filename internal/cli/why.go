package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/policy"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/watch"
)

type whyOptions struct {
	Config, Utmp, State, For string
	JSON                     bool
}

func newWhyCmd(fac *Factory) *cobra.Command {
	o := &whyOptions{}
	cmd := &cobra.Command{
		Use:   "why TARGET",
		Short: "Explain what the watch policy does with one session, and why",
		Long: `For one session: the evidence (terminal atime and mtime, CPU use, no-tty
status), which rule matched and why the others did not, exemptions, and what
happens when (next warning, kick) if nobody types.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runWhy(cmd.Context(), fac, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", policy.DefaultPath, "the policy `FILE`")
	f.StringVar(&o.Utmp, "utmp", session.DefaultUtmp, "read login records from `FILE`")
	f.StringVar(&o.State, "state", watch.DefaultState, "the daemon's state `FILE`")
	f.StringVar(&o.For, "for", "24h", "show what happens within `DURATION`")
	f.BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}

type whyJSON struct {
	ID     string    `json:"id"`
	User   string    `json:"user"`
	TTY    string    `json:"tty"`
	Kind   string    `json:"kind"`
	Atime  time.Time `json:"tty_atime,omitzero"`
	Mtime  time.Time `json:"tty_mtime,omitzero"`
	CPU    float64   `json:"cpu_seconds"`
	Groups []string  `json:"groups"`
	Idle   *int64    `json:"idle_seconds"`
	// LogindIdle is logind's IdleHint, null when logind does not know
	// the session; LogindIdleSince its IdleSinceHint when idle.
	LogindIdle      *bool              `json:"logind_idle_hint"`
	LogindIdleSince time.Time          `json:"logind_idle_since,omitzero"`
	Timeline        []jsonEvent        `json:"timeline"`
	Explain         policy.Explanation `json:"policy"`
}

func runWhy(ctx context.Context, fac *Factory, o *whyOptions, target string) error {
	ios := fac.IO
	horizon, err := parseDuration(o.For)
	if err != nil {
		return usageError{fmt.Errorf("--for: %w", err)}
	}
	q, err := loadForQuery(ctx, fac, o.Config, o.Utmp, o.State)
	if err != nil {
		return err
	}
	defer q.engine.Close()
	p, res, in, st := q.policy, q.res, q.inputs, q.state
	env := q.engine.Env()
	lookup := func(name string) (int, bool) { uid, _, ok := env.LookupUser(name); return uid, ok }
	sel := engine.Resolve([]string{target}, session.Filter{}, res.Sessions, engine.SelfFrom(res.Proc, env.PID), true, lookup)
	var found []policy.Input
	for _, s := range append(sel.Sessions, staleOf(res.Sessions, sel)...) {
		for _, x := range in {
			if x.Session.ID == s.ID {
				found = append(found, x)
			}
		}
	}
	if len(found) == 0 {
		return exitErr{ExitNoMatch, errors.New("no session matched: see 'sshkick list'")}
	}
	now := time.Now()
	var out []whyJSON
	for _, x := range found {
		e := policy.Explain(p, now, x, st, horizon)
		s, ev := x.Session, x.Evidence
		w := whyJSON{ID: sanitize.Field(s.ID), User: sanitize.Field(s.User), TTY: sanitize.Field(s.TTY), Kind: string(s.Kind),
			Atime: ev.Atime, Mtime: ev.Mtime, CPU: ev.CPU.Seconds(), Groups: ev.Groups, Timeline: eventsJSON(e.Timeline), Explain: e}
		if w.Groups == nil {
			w.Groups = []string{}
		}
		if s.LogindID != "" {
			hint := s.LogindIdleHint
			w.LogindIdle = &hint
			if hint {
				w.LogindIdleSince = s.LogindIdleSince
			}
		}
		if e.Idle >= 0 {
			sec := int64(e.Idle / time.Second)
			w.Idle = &sec
		}
		for i := range w.Explain.Rules {
			w.Explain.Rules[i].Why = sanitize.Field(w.Explain.Rules[i].Why)
		}
		w.Explain.Summary = sanitize.Field(w.Explain.Summary)
		w.Explain.Timeline = nil
		out = append(out, w)
		if o.JSON {
			continue
		}
		pr := func(f string, a ...any) { fmt.Fprintf(ios.Out, f+"\n", a...) }
		pr("%s  user %s  kind %s", w.ID, w.User, w.Kind)
		if s.TTY == "" {
			pr("  terminal: none: never idle (only max_session applies)")
		} else {
			pr("  terminal: %s  atime %s (input)  mtime %s (output)", w.TTY, fmtTime(ev.Atime), fmtTime(ev.Mtime))
		}
		switch {
		case w.LogindIdle == nil:
			pr("  logind: does not know this session (no idle hint)")
		case *w.LogindIdle:
			pr("  logind: session %s, idle hint set since %s", sanitize.Field(s.LogindID), fmtTime(w.LogindIdleSince))
		default:
			pr("  logind: session %s, idle hint not set", sanitize.Field(s.LogindID))
		}
		pr("  cpu: %.2fs used by the session's processes%s", w.CPU, map[bool]string{true: " (busy since the last look)", false: ""}[e.Busy])
		if e.Idle >= 0 {
			pr("  idle: %s (±8s), since %s (%s)", policy.Short(e.Idle), fmtTime(e.Activity), e.Source)
		}
		for _, r := range w.Explain.Rules {
			if r.Matched {
				pr("  rule %s (line %d): matches", sanitize.Field(r.Rule), r.Line)
			} else {
				pr("  rule %s (line %d): no: %s", sanitize.Field(r.Rule), r.Line, r.Why)
			}
		}
		pr("  decision: %s", w.Explain.Summary)
		if len(e.Track.Sent) > 0 {
			pr("  warned at %s (%d warning(s) sent), deadline %s", fmtTime(e.Track.WarnedAt), len(e.Track.Sent), fmtTime(e.Track.Deadline))
		}
		if len(e.Timeline) == 0 {
			pr("  next: nothing within %s if nobody types", policy.Short(horizon))
		}
		for _, t := range e.Timeline {
			pr("  next: %s", eventLine(t))
		}
	}
	if o.JSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(ios.Out, string(b))
	}
	return nil
}

// staleOf returns the stale sessions Resolve refused or skipped: why
// explains them too (they are never acted on).
func staleOf(all []session.Session, sel engine.Selection) []session.Session {
	var out []session.Session
	for _, r := range append(sel.Refused, sel.Skipped...) {
		for _, s := range all {
			if s.Stale && (s.ID == r.Target || s.PID == r.PID && r.PID > 0) {
				out = append(out, s)
			}
		}
	}
	return out
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("15:04:05")
}
