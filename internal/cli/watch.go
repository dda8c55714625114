package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/policy"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/watch"
)

// newWatchCommands are `watch`, `policy` and `why`.
func newWatchCommands(f *Factory) []*cobra.Command {
	return []*cobra.Command{newWatchCmd(f), newPolicyCmd(f), newWhyCmd(f)}
}

// policyLookup checks users and groups against the password database.
var policyLookup = policy.Lookup{
	User:  func(n string) bool { _, err := user.Lookup(n); return err == nil },
	Group: func(n string) bool { _, err := user.LookupGroup(n); return err == nil },
}

type watchOptions struct {
	Config, State, Metrics, AuditLog, Utmp string
	DryRun, Once                           bool
}

func newWatchCmd(fac *Factory) *cobra.Command {
	o := &watchOptions{}
	cmd := &cobra.Command{
		Use:   "watch [flags]",
		Short: "Warn and log out idle and over-long sessions by policy (the daemon)",
		Long: `Run the policy daemon in the foreground, as systemd runs it: every interval,
at each deadline and soon after a login or logout (utmp or logind's session
files change) it reads the sessions, warns those a rule is about to end, and
ends them when their time is up. Input after a warning cancels the
countdown. SIGHUP reloads the policy (an invalid file keeps the old one) and
reopens the audit file (after logrotate); SIGTERM stops. Idle times are
measured from the terminal's atime, with the kernel's 8-second granularity:
±8 s.`,
		Example: `  sshkick watch --dry-run --once
  sshkick watch --config /etc/sshkick/policy.toml --metrics 127.0.0.1:9773`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runWatch(cmd.Context(), fac, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", policy.DefaultPath, "the policy `FILE`")
	f.BoolVar(&o.DryRun, "dry-run", false, "decide, log and audit what would be done; warn and kick nobody")
	f.BoolVar(&o.Once, "once", false, "evaluate once, act, and exit")
	f.StringVar(&o.Metrics, "metrics", "", "serve Prometheus metrics on `ADDR` (e.g. 127.0.0.1:9773)")
	f.StringVar(&o.State, "state", watch.DefaultState, "remember sent warnings in `FILE`")
	f.StringVar(&o.AuditLog, "audit-log", "", "write audit records to `FILE` (default: syslog, else /var/log/sshkick/audit.jsonl)")
	f.StringVar(&o.Utmp, "utmp", session.DefaultUtmp, "read login records from `FILE`")
	return cmd
}

func runWatch(ctx context.Context, fac *Factory, o *watchOptions) error {
	ios := fac.IO
	if ctx == nil {
		ctx = context.Background()
	}
	if !o.DryRun && os.Geteuid() != 0 {
		return exitErr{ExitError, errors.New("watch needs root to warn and end other users' sessions: run it with sudo (or try --dry-run)")}
	}
	if _, _, err := policy.LoadFile(o.Config, policyLookup); err != nil {
		return exitErr{ExitError, fmt.Errorf("%v\nsshkick: nothing was started: fix the policy ('sshkick policy check %s')", err, o.Config)}
	}
	e, err := fac.Engine(engine.SystemOptions{UtmpPath: o.Utmp})
	if err != nil {
		return err
	}
	defer e.Close()
	trail, err := e.OpenAudit(o.AuditLog)
	switch {
	case err != nil && !o.DryRun:
		return err
	case err != nil:
		ios.notef("note: dry run not audited: %s", sanitize.Field(err.Error()))
		trail = engine.Discard
	}
	defer trail.Close()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	wo := watch.Options{Config: o.Config, StatePath: o.State, DryRun: o.DryRun, Once: o.Once,
		Backend: &watch.EngineBackend{Engine: e, Trail: trail},
		Log:     slog.New(slog.NewTextHandler(ios.Err, nil)), Reload: reload, Notify: watch.NotifierFromEnv(), Lookup: policyLookup}
	if r, ok := trail.(interface{ Reopen() error }); ok {
		wo.Reopen = r.Reopen // SIGHUP after logrotate renamed the file
	}
	if !o.Once {
		// Woken by logins and logouts as well as by its interval; without
		// inotify it still rescans every interval.
		if ch, err := watch.WatchChanges(o.Utmp, watch.DefaultLogindSessions); err != nil {
			ios.notef("note: not woken by logins (%s): rescanning every interval", sanitize.Field(err.Error()))
		} else {
			defer ch.Close()
			wo.Changes = ch
		}
	}
	if o.Metrics != "" {
		wo.Metrics = watch.NewMetrics()
		addr, err := wo.Metrics.Serve(ctx, o.Metrics)
		if err != nil {
			return exitErr{ExitError, fmt.Errorf("--metrics %s: %v", o.Metrics, err)}
		}
		ios.notef("metrics on http://%s/metrics", sanitize.Field(addr.String()))
	}
	if err := watch.Run(ctx, wo); err != nil {
		return exitErr{ExitError, err}
	}
	return nil
}
