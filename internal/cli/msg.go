package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshkick/sshkick/internal/engine"
)

// maxInput bounds a message read from standard input.
const maxInput = 1 << 20

type msgOptions struct {
	IO       *IO
	Engine   func(engine.SystemOptions) (*engine.Engine, error)
	Select   selectFlags
	Message  string
	All      bool
	Force    bool
	Timeout  time.Duration
	JSON     bool
	DryRun   bool
	AuditLog string
	Args     []string

	messageSet bool
}

func newMsgCmd(f *Factory, runF func(context.Context, *msgOptions) error) *cobra.Command {
	o := &msgOptions{IO: f.IO, Engine: f.Engine}
	if runF == nil {
		runF = runMsg
	}
	cmd := &cobra.Command{
		Use:   "msg [TARGET...] [flags]",
		Short: "Write a message to sessions' terminals, safely",
		Long: `Write a message to the terminals of the sessions named by TARGETs and
selectors (as for kick: session id, terminal, PID, user), or with --all to
every session that has a terminal, like wall.

The text comes from --message or standard input. It is shown under a banner
saying it is from the administrator; control characters and escape
sequences are shown escaped, never sent (CVE-2024-28085). Users who said
'mesg n' are skipped unless --force. Each terminal gets --timeout to take
the message, so a stopped terminal (Ctrl-S) delays nobody.`,
		Example: `  sshkick msg alice --message "disk maintenance at 18:00"
  echo "rebooting in 10 minutes" | sshkick msg --all
  sshkick msg pts/3 --force -m "please log out"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.messageSet = cmd.Flags().Changed("message")
			o.Args = args
			return runF(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	o.Select.register(fs)
	fs.StringVarP(&o.Message, "message", "m", "", "the `TEXT` to send (default: read standard input)")
	fs.BoolVar(&o.All, "all", false, "send to every session with a terminal")
	fs.BoolVar(&o.Force, "force", false, "write even to users who said 'mesg n'")
	durationVar(fs, &o.Timeout, "timeout", 2*time.Second, "how long each terminal has to take the message")
	fs.BoolVar(&o.JSON, "json", false, "print the delivery per session as JSON")
	fs.BoolVarP(&o.DryRun, "dry-run", "n", false, "print who would get the message and write nothing")
	fs.StringVar(&o.AuditLog, "audit-log", os.Getenv("SSHKICK_AUDIT_LOG"), "append audit records to `FILE` instead of syslog or /var/log/sshkick/audit.jsonl")
	return cmd
}

func readMessage(ios *IO, flag string, set bool) (string, error) {
	if set {
		if strings.TrimSpace(flag) == "" {
			return "", usagef("--message is empty: say something")
		}
		return flag, nil
	}
	if ios.InTTY {
		return "", usagef("no message: give --message TEXT or pipe the text in")
	}
	b, err := io.ReadAll(io.LimitReader(ios.In, maxInput))
	if err != nil {
		return "", fmt.Errorf("read the message from standard input: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", usagef("no message: give --message TEXT or pipe the text in")
	}
	return string(b), nil
}

func runMsg(ctx context.Context, o *msgOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	flt, err := o.Select.filter()
	if err != nil {
		return err
	}
	// Cheap checks first: a bad command line reads no standard input.
	switch {
	case o.All && len(o.Args) > 0:
		return usagef("--all sends to every session: do not name targets too")
	case !o.All && len(o.Args) == 0 && flt.Empty():
		return usagef("no one to write to: name a session, terminal, PID or user, select with --user/--idle/--from/--kind, or use --all")
	case o.Timeout <= 0:
		return usagef("--timeout must be positive")
	}
	text, err := readMessage(o.IO, o.Message, o.messageSet)
	if err != nil {
		return err
	}
	e, err := o.Engine(o.Select.system())
	if err != nil {
		return err
	}
	defer e.Close()
	rep, err := e.Warn(ctx, engine.WarnRequest{Targets: o.Args, Filter: flt, All: o.All, Text: text, Force: o.Force,
		Timeout: o.Timeout, DryRun: o.DryRun, AuditLog: o.AuditLog})
	if rep != nil {
		o.IO.notes(rep.Notes)
		printRefusals(o.IO, rep.Refused, rep.Skipped, rep.Unmatched)
		if err == nil || len(rep.Deliveries) > 0 {
			if o.JSON {
				if jerr := writeJSON(o.IO, rep.Deliveries); jerr != nil && err == nil {
					err = jerr
				}
			} else {
				printDeliveries(o.IO, rep.Deliveries)
			}
		}
	}
	switch {
	case err != nil:
		return err
	case rep.Failed:
		return exitErr{ExitError, nil}
	}
	return nil
}

func printDeliveries(ios *IO, ds []engine.Delivery) {
	t := &table{}
	for _, d := range ds {
		why := ""
		switch d.Status {
		case "refused":
			why = "(the user said mesg n; --force overrides)"
		case "no-terminal":
			why = "(no terminal to write to)"
		case "timed-out", "failed":
			why = "(" + d.Error + ")"
		}
		t.add(d.ID, d.User, orDash(d.TTY), d.Status, why)
	}
	t.write(ios.Out)
}
