package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshkick/sshkick/internal/policy"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/watch"
)

func newPolicyCmd(ios *IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check a watch policy, or simulate what it would do",
		Args:  noArgs,
	}
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a policy file: FILE:LINE:COL for every problem",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := policy.DefaultPath
			if len(args) == 1 {
				file = args[0]
			}
			return runPolicyCheck(ios, file)
		},
	}
	so := &simulateOptions{}
	sim := &cobra.Command{
		Use:   "simulate [FILE]",
		Short: "The timeline of warnings and kicks the policy would produce if nobody typed",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			so.File = policy.DefaultPath
			if len(args) == 1 {
				so.File = args[0]
			}
			return runSimulate(cmd.Context(), ios, so)
		},
	}
	sim.Flags().StringVar(&so.For, "for", "24h", "simulate this `DURATION` ahead")
	sim.Flags().BoolVar(&so.JSON, "json", false, "print a JSON array of events")
	sim.Flags().StringVar(&so.Utmp, "utmp", session.DefaultUtmp, "read login records from `FILE`")
	sim.Flags().StringVar(&so.State, "state", watch.DefaultState, "the daemon's state `FILE` (warnings already sent)")
	cmd.AddCommand(check, sim)
	for _, c := range []*cobra.Command{cmd, check, sim} {
		c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	}
	return cmd
}

func runPolicyCheck(ios *IO, file string) error {
	p, diags, err := policy.LoadFile(file, policyLookup)
	for _, d := range diags {
		fmt.Fprintln(ios.Err, sanitize.Field(d.String()))
	}
	if err != nil {
		var ie *policy.InvalidError
		if errors.As(err, &ie) {
			return exitErr{ExitError, nil}
		}
		return exitErr{ExitError, err}
	}
	fmt.Fprintf(ios.Out, "%s: valid: %d rule(s), interval %s\n", sanitize.Field(file), len(p.Rules), policy.Short(p.Interval))
	return nil
}

type simulateOptions struct {
	File, For, Utmp, State string
	JSON                   bool
}

// loadForQuery reads the policy, discovers sessions and gathers evidence,
// for simulate and why.
func loadForQuery(ctx context.Context, ios *IO, file, utmp, state string) (*policy.Policy, *session.Result, []policy.Input, policy.State, error) {
	p, _, err := policy.LoadFile(file, policyLookup)
	if err != nil {
		return nil, nil, nil, policy.State{}, exitErr{ExitError, err}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := session.Discover(ctx, session.Options{UtmpPath: utmp, NoLogind: true})
	if err != nil {
		return nil, nil, nil, policy.State{}, err
	}
	for _, n := range res.Notes {
		ios.notef("note: %s", sanitize.Field(n))
	}
	st, err := watch.ReadState(state)
	if err != nil {
		ios.notef("note: %s: simulating as if no warning was sent", sanitize.Field(err.Error()))
	}
	return p, res, watch.SystemEvidence(res), st, nil
}

type jsonEvent struct {
	At       time.Time `json:"at"`
	Action   string    `json:"action"`
	ID       string    `json:"id"`
	User     string    `json:"user"`
	TTY      string    `json:"tty"`
	Rule     string    `json:"rule"`
	Reason   string    `json:"reason"`
	Idle     *int64    `json:"idle_seconds"`
	Deadline time.Time `json:"deadline,omitzero"`
}

func eventsJSON(ev []policy.Event) []jsonEvent {
	out := []jsonEvent{}
	for _, e := range ev {
		j := jsonEvent{At: e.At, Action: string(e.Kind), ID: sanitize.Field(e.Session.ID), User: sanitize.Field(e.Session.User),
			TTY: sanitize.Field(e.Session.TTY), Rule: sanitize.Field(e.Rule), Reason: string(e.Reason), Deadline: e.Deadline}
		if e.Idle >= 0 {
			s := int64(e.Idle / time.Second)
			j.Idle = &s
		}
		out = append(out, j)
	}
	return out
}

func eventLine(e policy.Event) string {
	tty := e.Session.TTY
	if tty == "" {
		tty = e.Session.ID
	}
	detail := "rule " + e.Rule
	if e.Idle >= 0 {
		detail = "idle " + policy.Short(e.Idle) + ", " + detail
	}
	if e.Reason != "" && e.Reason != policy.ReasonIdle {
		detail += ", " + string(e.Reason)
	}
	return fmt.Sprintf("%s %s %s %s (%s)", e.At.Format("15:04:05"), e.Kind, sanitize.Field(e.Session.User), sanitize.Field(tty), sanitize.Field(detail))
}

func runSimulate(ctx context.Context, ios *IO, o *simulateOptions) error {
	horizon, err := parseDuration(o.For)
	if err != nil {
		return usageError{fmt.Errorf("--for: %w", err)}
	}
	p, _, in, st, err := loadForQuery(ctx, ios, o.File, o.Utmp, o.State)
	if err != nil {
		return err
	}
	ev := policy.Simulate(p, time.Now(), in, st, horizon)
	if o.JSON {
		b, _ := json.MarshalIndent(eventsJSON(ev), "", "  ")
		fmt.Fprintln(ios.Out, string(b))
		return nil
	}
	if len(ev) == 0 {
		fmt.Fprintf(ios.Out, "nothing happens in the next %s if nobody types\n", policy.Short(horizon))
	}
	for _, e := range ev {
		fmt.Fprintln(ios.Out, eventLine(e))
	}
	return nil
}
