package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/sshkick/sshkick/internal/sanitize"
)

// placeholders are the names a message may use.
var placeholders = []string{"user", "tty", "idle", "deadline", "in", "reason", "rule"}

// unknownPlaceholder returns the first {name} in s that is not a known
// placeholder; braces around anything but a bare word are left as text.
func unknownPlaceholder(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] == '_' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j > i+1 && j < len(s) && s[j] == '}' {
			name := s[i+1 : j]
			known := false
			for _, p := range placeholders {
				known = known || p == name
			}
			if !known {
				return "{" + name + "}"
			}
		}
	}
	return ""
}

// Vars are what a message's placeholders stand for.
type Vars struct {
	User, TTY string
	Idle      time.Duration // < 0: the session has no idle time
	Deadline  time.Time
	Now       time.Time
	Reason    string
	Rule      string
}

// Render fills in a message template. Every value is passed through
// sanitize.Field first, so a user or terminal name from utmp can neither
// carry an escape sequence nor start a line of its own (a forged "Message
// from the administrator"); the writer then passes the whole text through
// sanitize.Message, as for every message sshkick writes.
func Render(tmpl string, v Vars) string {
	idle := "-"
	if v.Idle >= 0 {
		idle = Short(v.Idle)
	}
	tty := v.TTY
	if tty == "" {
		tty = "-"
	}
	r := strings.NewReplacer(
		"{user}", sanitize.Field(v.User),
		"{tty}", sanitize.Field(tty),
		"{idle}", idle,
		"{deadline}", v.Deadline.Format("15:04:05 MST"),
		"{in}", In(v.Deadline.Sub(v.Now)),
		"{reason}", sanitize.Field(v.Reason),
		"{rule}", sanitize.Field(v.Rule),
	)
	return r.Replace(tmpl)
}

// In says how long until something, for people: "in 5 minutes".
func In(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d <= 0:
		return "now"
	case d < time.Minute:
		return "in " + plural(int(d/time.Second), "second")
	case d < time.Hour && d%time.Minute == 0 || d < 10*time.Minute && d%time.Minute < 5*time.Second:
		return "in " + plural(int(d/time.Minute), "minute")
	case d < time.Hour:
		return "in " + Short(d)
	case d%time.Hour == 0:
		return "in " + plural(int(d/time.Hour), "hour")
	default:
		return "in " + Short(d.Round(time.Minute))
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
