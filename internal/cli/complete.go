package cli

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sshkick/sshkick/internal/engine"
	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
)

// completionDiscover finds the sessions that Tab offers, through the
// engine; tests replace it.
var completionDiscover = func(ctx context.Context, o session.Options) (*session.Result, error) {
	e, err := engine.NewSystem(engine.SystemOptions{UtmpPath: o.UtmpPath})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	snap, err := e.Sessions(ctx, engine.Query{})
	if err != nil {
		return nil, err
	}
	return &session.Result{Sessions: snap.Raw()}, nil
}

// completionTimeout bounds one Tab press: a hung logind must not hang the
// admin's shell.
const completionTimeout = 3 * time.Second

// completionSignals are the --signal values offered; ParseSignal accepts
// any other name or number too.
var completionSignals = []cobra.Completion{
	cobra.CompletionWithDesc("HUP", "hang up: what a closed terminal sends (default)"),
	cobra.CompletionWithDesc("TERM", "ask the processes to terminate"),
	cobra.CompletionWithDesc("INT", "interrupt, as Ctrl-C"),
	cobra.CompletionWithDesc("QUIT", "quit, as Ctrl-\\"),
	cobra.CompletionWithDesc("KILL", "kill at once; cannot be caught"),
	cobra.CompletionWithDesc("USR1", "user-defined signal 1"),
	cobra.CompletionWithDesc("USR2", "user-defined signal 2"),
}

// setupCompletion makes `sshkick completion bash|zsh|fish` visible and
// gives Tab something to offer: targets of kick and msg (session ids,
// terminals and user names from a session listing) and the values of
// --kind, --signal and --user. It finds the commands by name, so it does
// not care how they were built.
func setupCompletion(root *cobra.Command) {
	root.CompletionOptions.HiddenDefaultCmd = false
	for _, c := range root.Commands() {
		switch c.Name() {
		case "kick", "msg":
			c.ValidArgsFunction = completeTargets
		}
		if c.Flags().Lookup("kind") != nil {
			c.RegisterFlagCompletionFunc("kind", completeKinds)
		}
		if c.Flags().Lookup("user") != nil {
			c.RegisterFlagCompletionFunc("user", completeUsers)
		}
		if c.Flags().Lookup("signal") != nil {
			c.RegisterFlagCompletionFunc("signal", cobra.FixedCompletions(completionSignals, cobra.ShellCompDirectiveNoFileComp))
		}
		for _, name := range []string{"from", "idle", "wait", "delay", "message", "msg-timeout", "timeout"} {
			if c.Flags().Lookup(name) != nil {
				c.RegisterFlagCompletionFunc(name, cobra.NoFileCompletions)
			}
		}
	}
}

func completeKinds(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	out := make([]cobra.Completion, len(session.Kinds))
	for i, k := range session.Kinds {
		out[i] = string(k)
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func completeTargets(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return sessionCompletions(cmd, args, toComplete, true), cobra.ShellCompDirectiveNoFileComp
}

func completeUsers(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return sessionCompletions(cmd, nil, toComplete, false), cobra.ShellCompDirectiveNoFileComp
}

// sessionCompletions lists this host's live sessions: with sessions set,
// their ids and terminals and the users; else the users only. Words the
// command line already has are not offered again.
//
// Every word comes from utmp or /proc and is hostile. The shell inserts a
// candidate into the admin's command line, and the completion protocol is
// one candidate per line with a tab before its description, so a candidate
// is offered only when it is made of characters a target can have (no
// space, quote, newline, tab, $ or escape), and descriptions are
// sanitized (sanitize.Field escapes every control character).
func sessionCompletions(cmd *cobra.Command, args []string, toComplete string, sessions bool) []cobra.Completion {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	opts := session.Options{}
	if f := cmd.Flags().Lookup("utmp"); f != nil {
		opts.UtmpPath = f.Value.String()
	}
	res, err := completionDiscover(ctx, opts)
	if err != nil || res == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, a := range args {
		seen[a] = true
	}
	var out []cobra.Completion
	add := func(word, desc string) {
		if seen[word] || !safeCompletionWord(word) || !strings.HasPrefix(word, toComplete) {
			return
		}
		seen[word] = true
		out = append(out, cobra.CompletionWithDesc(word, sanitize.Field(desc)))
	}
	var users []string
	sessionsOf := map[string]int{}
	for i := range res.Sessions {
		s := &res.Sessions[i]
		if s.Stale {
			continue // kick and msg refuse stale records: do not offer them
		}
		sessionsOf[s.User]++
		if !slices.Contains(users, s.User) {
			users = append(users, s.User)
		}
		if !sessions {
			continue
		}
		desc := s.User
		if s.Host != "" {
			desc += " from " + s.Host
		}
		desc += ", " + string(s.Kind)
		add(s.ID, desc)
		if s.TTY != "" && s.TTY != s.ID {
			add(s.TTY, desc)
		}
	}
	sort.Strings(users)
	for _, u := range users {
		if sessions {
			add(u, "every session of user "+u)
		} else {
			add(u, "")
		}
	}
	return out
}

// safeCompletionWord reports whether w may be offered as a word on the
// admin's command line: what session ids (pts/3, ssh:1234, tty1, a logind
// id) and ordinary user names are made of, and no leading '-' (it would
// read as a flag).
func safeCompletionWord(w string) bool {
	if w == "" || len(w) > 64 || w[0] == '-' {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-' || c == ':' || c == '/' || c == '@' || c == '+':
		default:
			return false
		}
	}
	return true
}
