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

func newPolicyCmd(fac *Factory) *cobra.Command {
	ios := fac.IO
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
			return runSimulate(cmd.Context(), fac, so)
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
// query is what simulate and why read: the policy, this host's sessions
// (through the engine, which the caller closes) and the daemon's state.
type query struct {
	policy *policy.Policy
	engine *engine.Engine
	res    *session.Result
	inputs []policy.Input
	state  policy.State
}

func loadForQuery(ctx context.Context, fac *Factory, file, utmp, state string) (*query, error) {
	ios := fac.IO
	p, _, err := policy.LoadFile(file, policyLookup)
	if err != nil {
		return nil, exitErr{ExitError, err}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	e, err := fac.Engine(engine.SystemOptions{UtmpPath: utmp})
	if err != nil {
		return nil, err
	}
	snap, err := e.Sessions(ctx, engine.Query{})
	if err != nil {
		e.Close()
		return nil, err
	}
	ios.notes(snap.Notes)
	res := &session.Result{Sessions: snap.Raw(), Proc: snap.Proc()}
	st, err := watch.ReadState(state)
	if err != nil {
		ios.notef("note: %s: simulating as if no warning was sent", sanitize.Field(err.Error()))
	}
	return &query{policy: p, engine: e, res: res, inputs: watch.SystemEvidence(res), state: st}, nil
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

func runSimulate(ctx context.Context, fac *Factory, o *simulateOptions) error {
	ios := fac.IO
	horizon, err := parseDuration(o.For)
	if err != nil {
		return usageError{fmt.Errorf("--for: %w", err)}
	}
	q, err := loadForQuery(ctx, fac, o.File, o.Utmp, o.State)
	if err != nil {
		return err
	}
	defer q.engine.Close()
	ev := policy.Simulate(q.policy, time.Now(), q.inputs, q.state, horizon)
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
