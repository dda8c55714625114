package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sshkick/sshkick/internal/session"
	"github.com/sshkick/sshkick/internal/termmsg"
)

// Reminders are the times left at which a delayed kick reminds the users.
var Reminders = []time.Duration{time.Minute, 10 * time.Second}

// pollEvery is how often a countdown looks for sessions that ended by
// themselves (or got input, when that spares them).
const pollEvery = time.Second

// countdown is one warn → remind → deadline schedule over a set of
// sessions, on the engine's clock.
type countdown struct {
	e     *Engine
	trail Auditor
	text  string // the admin's own words, or ""
	delay time.Duration
	opt   termmsg.Options
	// spareOnInput drops a session whose terminal read input after the
	// warning (an idle logout answered by a key press).
	spareOnInput bool
	notify       func(string)
}

// countdownResult is what a countdown leaves for the kick.
type countdownResult struct {
	due        []session.Session
	deliveries []Delivery
	cancelled  bool
	auditErr   error
}

// run warns, waits the delay with reminders, drops the sessions that ended
// by themselves (or were spared), and reports whether ctx was cancelled
// before the deadline (the users are then told the kick is off).
func (c *countdown) run(ctx context.Context, sessions []session.Session) countdownResult {
	var res countdownResult
	clock := c.e.c.Clock
	deadline := clock.Now().Add(c.delay)
	notice := "This session will be ended by the administrator now."
	if c.delay > 0 {
		notice = fmt.Sprintf("This session will be ended by the administrator in %s, at %s.", HumanDuration(c.delay), deadline.UTC().Format("15:04:05 MST"))
	}
	if ctx.Err() != nil {
		res.cancelled = true
		return res
	}
	warnedAt := clock.Now()
	res.deliveries, res.auditErr = c.send(ctx, sessions, c.body(notice), "warning")
	for _, d := range res.deliveries {
		if d.Status != string(termmsg.Delivered) {
			c.note(fmt.Sprintf("warning to %s: %s %s", d.ID, d.Status, d.Error))
		}
	}
	if c.delay <= 0 {
		res.due = sessions
		return res
	}
	c.note(fmt.Sprintf("warned %d session(s); kicking at %s (in %s); Ctrl-C cancels", len(sessions), deadline.Local().Format("15:04:05"), HumanDuration(c.delay)))
	next := 0
	for next < len(Reminders) && Reminders[next] >= c.delay {
		next++
	}
	for {
		left := deadline.Sub(clock.Now())
		if left <= 0 {
			break
		}
		if next < len(Reminders) && left <= Reminders[next] {
			d, err := c.send(ctx, sessions, c.body(fmt.Sprintf("Reminder: this session will be ended by the administrator in %s.", HumanDuration(Reminders[next]))), "reminder")
			res.deliveries = append(res.deliveries, d...)
			res.keep(err)
			next++
		}
		var alive []session.Session
		for i := range sessions {
			s := &sessions[i]
			switch {
			case !c.e.c.Discoverer.Alive(s):
				c.note(fmt.Sprintf("%s ended by itself during the delay: nothing more to do", clean(s.ID)))
				res.keep(c.trail.Record(EndedDuringDelayEvent{Target: refOf(s)}))
			case c.spareOnInput && c.gotInput(s, warnedAt):
				d, err := c.send(context.WithoutCancel(ctx), sessions[i:i+1], c.body("Input seen: idle logout cancelled. You may carry on."), "cancel")
				res.deliveries = append(res.deliveries, d...)
				res.keep(err)
				res.keep(c.trail.Record(CancelEvent{Sessions: []Ref{refOf(s)}, Reason: "input after the warning"}))
			default:
				alive = append(alive, *s)
			}
		}
		sessions = alive
		if len(sessions) == 0 {
			return res
		}
		wait := min(pollEvery, left)
		// Wake for the next reminder on time, not up to a poll late.
		if next < len(Reminders) && left-Reminders[next] > 0 && left-Reminders[next] < wait {
			wait = left - Reminders[next]
		}
		select {
		case <-ctx.Done():
		case <-clock.After(wait):
		}
		// Checked after every wait, not raced against it: a cancel that
		// came while waiting always wins.
		if ctx.Err() != nil {
			d, err := c.send(context.WithoutCancel(ctx), sessions, c.body("The administrator cancelled the end of this session. You may carry on."), "cancel")
			res.deliveries = append(res.deliveries, d...)
			res.keep(err)
			res.keep(c.trail.Record(CancelEvent{Sessions: refs(sessions), Reason: "interrupted during the delay"}))
			res.cancelled = true
			return res
		}
	}
	res.due = sessions
	return res
}

func (r *countdownResult) keep(err error) {
	if err != nil && r.auditErr == nil {
		r.auditErr = err
	}
}

func (c *countdown) body(notice string) string {
	if c.text != "" {
		return c.text + "\n" + notice
	}
	return notice
}

func (c *countdown) send(ctx context.Context, sessions []session.Session, body, stage string) ([]Delivery, error) {
	return c.e.deliver(ctx, c.trail, sessions, c.e.compose(body), c.opt, stage)
}

func (c *countdown) gotInput(s *session.Session, since time.Time) bool {
	t, ok := c.e.c.Discoverer.LastInput(s)
	return ok && t.After(since)
}

func (c *countdown) note(s string) {
	if c.notify != nil {
		c.notify(s)
	}
}

// HumanDuration says a duration as a person would: "5 minutes", "1 hour",
// "10 seconds".
func HumanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int(d/time.Minute), "minute")
	case d < time.Minute:
		return plural(int(d/time.Second), "second")
	}
	return d.String()
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
