package policy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/sshkick/sshkick/internal/sanitize"
	"github.com/sshkick/sshkick/internal/session"
)

// Diagnostic is one problem in a policy file, at a line and column.
type Diagnostic struct {
	File      string
	Line, Col int
	Msg       string
	// Warning diagnostics do not make the file invalid (an unknown user
	// may be created later); errors do.
	Warning bool
}

// String formats the diagnostic as FILE:LINE:COL: what is wrong.
func (d Diagnostic) String() string {
	w := ""
	if d.Warning {
		w = "warning: "
	}
	return fmt.Sprintf("%s:%d:%d: %s%s", d.File, d.Line, d.Col, w, d.Msg)
}

// InvalidError is returned when a policy file has errors; Diags lists them
// (warnings included) in file order.
type InvalidError struct{ Diags []Diagnostic }

func (e *InvalidError) Error() string {
	var errs []string
	for _, d := range e.Diags {
		if !d.Warning {
			errs = append(errs, d.String())
		}
	}
	return strings.Join(errs, "\n")
}

// First returns the first error.
func (e *InvalidError) First() Diagnostic {
	for _, d := range e.Diags {
		if !d.Warning {
			return d
		}
	}
	return Diagnostic{}
}

// Lookup says whether users and groups exist; unknown names are warnings.
// A nil func skips the check.
type Lookup struct {
	User  func(name string) bool
	Group func(name string) bool
}

// maxFile bounds what is read: a policy is a few kilobytes.
const maxFile = 1 << 20

// maxMessage bounds a message template.
const maxMessage = 2000

// LoadFile reads and parses a policy file.
func LoadFile(path string, lk Lookup) (*Policy, []Diagnostic, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	if len(b) > maxFile {
		return nil, nil, fmt.Errorf("policy %s is larger than %d bytes: that is not a policy file", path, maxFile)
	}
	return Parse(path, b, lk)
}

// Parse parses and validates a policy. It returns the policy and every
// diagnostic; err is an *InvalidError when the file has errors (then the
// policy is nil).
func Parse(file string, data []byte, lk Lookup) (*Policy, []Diagnostic, error) {
	ps := &parser{file: file, data: data, lk: lk, p: &Policy{File: file}}
	ps.run()
	sort.SliceStable(ps.diags, func(i, j int) bool {
		a, b := ps.diags[i], ps.diags[j]
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	for _, d := range ps.diags {
		if !d.Warning {
			return nil, ps.diags, &InvalidError{Diags: ps.diags}
		}
	}
	return ps.p, ps.diags, nil
}

type parser struct {
	file  string
	data  []byte
	lk    Lookup
	tp    unstable.Parser
	p     *Policy
	diags []Diagnostic
	// seen keys of the current table, for duplicates.
	seen map[string]bool
	rule *Rule
	// rule positions, for errors found after the rule is complete.
	ruleSet map[int]map[string]pos
	top     map[string]pos
}

type pos struct{ line, col int }

// at turns a byte offset into a line and a column (in characters).
func (ps *parser) at(off int) pos {
	if off < 0 || off > len(ps.data) {
		off = len(ps.data)
	}
	b := ps.data[:off]
	line := 1 + strings.Count(string(b), "\n")
	if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
		b = b[i+1:]
	}
	return pos{line, utf8.RuneCount(b) + 1}
}

func (ps *parser) nodePos(n *unstable.Node) pos {
	if n == nil {
		return pos{1, 1}
	}
	return ps.at(int(n.Raw.Offset))
}

func (ps *parser) errAt(p pos, format string, a ...any) {
	ps.diags = append(ps.diags, Diagnostic{File: ps.file, Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, a...)})
}

func (ps *parser) warnAt(p pos, format string, a ...any) {
	ps.diags = append(ps.diags, Diagnostic{File: ps.file, Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, a...), Warning: true})
}

// q quotes text from the file for a message: the file may hold anything.
func q(s string) string { return `"` + sanitize.Field(s) + `"` }

func (ps *parser) run() {
	p := ps.p
	p.Interval, p.IdleInput = DefaultInterval, InputOnly
	p.Warn = DefaultWarn
	p.Message, p.MaxSessionMessage, p.CancelMessage = DefaultMessage, DefaultMaxSessionMessage, DefaultCancelMessage
	ps.top = map[string]pos{}
	ps.ruleSet = map[int]map[string]pos{}
	ps.seen = map[string]bool{}
	if !utf8.Valid(ps.data) {
		ps.errAt(ps.at(firstInvalid(ps.data)), "the file is not valid UTF-8")
		return
	}
	ps.tp.Reset(ps.data)
	for ps.tp.NextExpression() {
		ps.expr(ps.tp.Expression())
	}
	if err := ps.tp.Error(); err != nil {
		var pe *unstable.ParserError
		at := pos{1, 1}
		msg := err.Error()
		if errors.As(err, &pe) {
			at = ps.at(ps.offsetOf(pe.Highlight))
			msg = pe.Message
		}
		ps.errAt(at, "not valid TOML: %s", sanitize.Field(msg))
		return
	}
	ps.finishRule()
	names := map[string]int{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Name == "" {
			continue
		}
		if prev, ok := names[r.Name]; ok {
			ps.errAt(ps.ruleSet[i]["name"], "rule name %s is already used by the rule at line %d: audit records name rules, so names must differ", q(r.Name), prev)
		}
		names[r.Name] = r.Line
	}
	if len(p.Rules) == 0 {
		ps.warnAt(pos{1, 1}, "no [[rule]]: this policy acts on no session")
	}
	if at, ok := ps.top["warn"]; ok {
		ps.checkWarn(at, p.Warn, "")
	}
}

func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// offsetOf finds where a slice of the input starts; an empty or foreign
// slice means the end of the file.
func (ps *parser) offsetOf(h []byte) int {
	if cap(h) == 0 {
		return len(ps.data)
	}
	off := cap(ps.data) - cap(h)
	if off < 0 || off > len(ps.data) {
		return len(ps.data)
	}
	return off
}

func keyParts(n *unstable.Node) ([]string, *unstable.Node) {
	var parts []string
	var first *unstable.Node
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if first == nil {
			first = k
		}
		parts = append(parts, string(k.Data))
	}
	return parts, first
}

func (ps *parser) expr(n *unstable.Node) {
	switch n.Kind {
	case unstable.Table:
		parts, k := keyParts(n)
		ps.finishRule()
		ps.rule = nil
		ps.seen = nil // keys after an unknown table are not checked again
		if len(parts) == 1 && parts[0] == "rule" {
			ps.errAt(ps.nodePos(k), "[rule] must be written [[rule]]: rules are a list, tried in order")
		} else {
			ps.errAt(ps.nodePos(k), "unknown table [%s]: the policy has top-level keys and [[rule]] tables only", sanitize.Field(strings.Join(parts, ".")))
		}
	case unstable.ArrayTable:
		parts, k := keyParts(n)
		ps.finishRule()
		if len(parts) != 1 || parts[0] != "rule" {
			ps.rule = nil
			ps.seen = nil
			ps.errAt(ps.nodePos(k), "unknown table [[%s]]: did you mean [[rule]]?", sanitize.Field(strings.Join(parts, ".")))
			return
		}
		ps.p.Rules = append(ps.p.Rules, Rule{Line: ps.nodePos(k).line})
		ps.rule = &ps.p.Rules[len(ps.p.Rules)-1]
		ps.seen = map[string]bool{}
	case unstable.KeyValue:
		parts, k := keyParts(n)
		at := ps.nodePos(k)
		if ps.seen == nil {
			return
		}
		name := strings.Join(parts, ".")
		if len(parts) != 1 {
			ps.errAt(at, "unknown key %s: dotted keys are not part of the policy", q(name))
			return
		}
		if ps.seen[name] {
			ps.errAt(at, "key %s is set twice", q(name))
			return
		}
		ps.seen[name] = true
		if ps.rule == nil {
			ps.topKey(name, at, n.Value())
		} else {
			ps.ruleKey(ps.rule, name, at, n.Value())
		}
	}
}

var topKeys = []string{"interval", "idle_input", "busy_cpu", "warn", "message", "max_session_message", "cancel_message"}
var ruleKeys = []string{"name", "users", "groups", "from", "kinds", "exempt", "idle", "max_session", "warn", "message", "max_session_message", "idle_input", "busy_cpu"}

func suggest(name string, keys []string) string {
	for _, k := range keys {
		if distance(strings.ToLower(name), k) <= 2 || strings.ReplaceAll(k, "_", "") == strings.ReplaceAll(strings.ToLower(name), "-", "") {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return " (known keys: " + strings.Join(keys, ", ") + ")"
}

func (ps *parser) topKey(name string, at pos, v *unstable.Node) {
	p := ps.p
	ps.top[name] = at
	switch name {
	case "interval":
		if d, ok := ps.duration(v, name); ok {
			if d < time.Second || d > time.Hour {
				ps.errAt(ps.nodePos(v), "interval %s is out of range: use 1s to 1h", q(string(v.Data)))
				return
			}
			p.Interval = d
		}
	case "idle_input":
		if s, ok := ps.idleInput(v); ok {
			p.IdleInput = s
		}
	case "busy_cpu":
		if f, ok := ps.percent(v, name); ok {
			p.BusyCPU = f
		}
	case "warn":
		if w, ok := ps.warnList(v); ok {
			p.Warn = w
		}
	case "message":
		if s, ok := ps.message(v, name); ok {
			p.Message = s
		}
	case "max_session_message":
		if s, ok := ps.message(v, name); ok {
			p.MaxSessionMessage = s
		}
	case "cancel_message":
		if s, ok := ps.message(v, name); ok {
			p.CancelMessage = s
		}
	case "rule", "name", "users", "groups", "from", "kinds", "exempt", "idle", "max_session":
		ps.errAt(at, "key %s belongs in a [[rule]] table: put it after a [[rule]] line", q(name))
	default:
		ps.errAt(at, "unknown key %s%s", q(name), suggest(name, topKeys))
	}
}

func (ps *parser) ruleKey(r *Rule, name string, at pos, v *unstable.Node) {
	ri := len(ps.p.Rules) - 1
	if ps.ruleSet[ri] == nil {
		ps.ruleSet[ri] = map[string]pos{}
	}
	ps.ruleSet[ri][name] = at
	switch name {
	case "name":
		if s, ok := ps.str(v, name); ok {
			if s == "" || len(s) > 64 || strings.ContainsFunc(s, func(c rune) bool { return c < 0x21 || c == 0x7f || c > 0x7e }) {
				ps.errAt(ps.nodePos(v), "rule name %s: use 1 to 64 printable ASCII characters without spaces", q(s))
				return
			}
			r.Name = s
		}
	case "users":
		if l, ok := ps.strList(v, name); ok {
			r.Users = l
			for i, u := range l {
				if u == "" {
					ps.errAt(ps.elemPos(v, i), "an empty user name")
				} else if ps.lk.User != nil && !ps.lk.User(u) {
					ps.warnAt(ps.elemPos(v, i), "unknown user %s: the rule matches nobody by this name until the account exists", q(u))
				}
			}
		}
	case "groups":
		if l, ok := ps.strList(v, name); ok {
			r.Groups = l
			for i, g := range l {
				if g == "" {
					ps.errAt(ps.elemPos(v, i), "an empty group name")
				} else if ps.lk.Group != nil && !ps.lk.Group(g) {
					ps.warnAt(ps.elemPos(v, i), "unknown group %s: the rule matches nobody by this group until it exists", q(g))
				}
			}
		}
	case "from":
		if l, ok := ps.strList(v, name); ok {
			for i, s := range l {
				pr, err := session.ParseFrom(strings.TrimSpace(s))
				if err != nil {
					ps.errAt(ps.elemPos(v, i), "bad address or network %s in from: write an address (10.1.2.3) or a CIDR (10.0.0.0/8, fd00::/8)", q(s))
					continue
				}
				if pr.Addr() != pr.Masked().Addr() {
					ps.errAt(ps.elemPos(v, i), "network %s has host bits set: did you mean %s?", q(s), pr.Masked())
					continue
				}
				r.From = append(r.From, pr)
			}
		}
	case "kinds":
		if l, ok := ps.strList(v, name); ok {
			for i, s := range l {
				k, err := session.ParseKind(s)
				if err != nil {
					ps.errAt(ps.elemPos(v, i), "unknown kind %s: use ssh, ssh-notty, console, pane, mosh or local", q(s))
					continue
				}
				r.Kinds = append(r.Kinds, k)
			}
		}
	case "exempt":
		if v.Kind != unstable.Bool {
			ps.errAt(ps.nodePos(v), "exempt must be true or false")
			return
		}
		r.Exempt = string(v.Data) == "true"
	case "idle":
		if d, ok := ps.duration(v, name); ok {
			r.Idle = d
		}
	case "max_session":
		if d, ok := ps.duration(v, name); ok {
			r.MaxSession = d
		}
	case "warn":
		if w, ok := ps.warnList(v); ok {
			r.Warn, r.warnSet = w, true
		}
	case "message":
		if s, ok := ps.message(v, name); ok {
			r.Message = s
		}
	case "max_session_message":
		if s, ok := ps.message(v, name); ok {
			r.MaxSessionMessage = s
		}
	case "idle_input":
		if s, ok := ps.idleInput(v); ok {
			r.IdleInput = s
		}
	case "busy_cpu":
		if f, ok := ps.percent(v, name); ok {
			r.BusyCPU, r.busySet = f, true
		}
	case "interval", "cancel_message":
		ps.errAt(at, "key %s is a top-level key: put it before the first [[rule]]", q(name))
	default:
		ps.errAt(at, "unknown key %s in [[rule]]%s", q(name), suggest(name, ruleKeys))
	}
}

// finishRule checks a complete rule.
func (ps *parser) finishRule() {
	r := ps.rule
	if r == nil {
		return
	}
	ps.rule = nil
	keys := ps.ruleSet[len(ps.p.Rules)-1]
	start := pos{r.Line, 1}
	if r.Name == "" {
		if _, ok := keys["name"]; !ok {
			ps.errAt(start, "this rule has no name: add name = \"…\" (audit records and logs name the rule)")
		}
	}
	if r.Exempt && (r.Idle > 0 || r.MaxSession > 0) {
		ps.errAt(start, "rule %s is exempt and also sets idle or max_session: choose one", q(r.Name))
	}
	if !r.Exempt && r.Idle == 0 && r.MaxSession == 0 && len(keys) > 0 {
		ps.warnAt(start, "rule %s sets neither idle, max_session nor exempt: the sessions it matches are left alone", q(r.Name))
	}
	if at, ok := keys["warn"]; ok {
		ps.checkWarn(at, r.Warn, r.Name)
	}
	if r.Idle > 0 && !r.Exempt {
		for _, w := range r.warn(ps.p) {
			if w >= r.Idle {
				at, ok := keys["warn"]
				if !ok {
					at = keys["idle"]
				}
				ps.errAt(at, "rule %s: warning %s before the kick is not shorter than idle %s: set a shorter warn in the rule", q(r.Name), Short(w), Short(r.Idle))
				break
			}
		}
	}
	if r.MaxSession > 0 && !r.Exempt {
		for _, w := range r.warn(ps.p) {
			if w >= r.MaxSession {
				ps.errAt(keys["max_session"], "rule %s: warning %s is not shorter than max_session %s", q(r.Name), Short(w), Short(r.MaxSession))
				break
			}
		}
	}
}

func (ps *parser) checkWarn(at pos, w []time.Duration, rule string) {
	_ = rule
	for i := 1; i < len(w); i++ {
		if w[i] == w[i-1] {
			ps.errAt(at, "warning %s is listed twice", Short(w[i]))
			return
		}
	}
}

func (ps *parser) elemPos(v *unstable.Node, i int) pos {
	it := v.Children()
	for j := 0; it.Next(); j++ {
		if j == i {
			return ps.nodePos(it.Node())
		}
	}
	return ps.nodePos(v)
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Array:
		return "a list"
	case unstable.Bool:
		return "true/false"
	case unstable.Integer, unstable.Float:
		return "a number"
	case unstable.InlineTable:
		return "a table"
	default:
		return "a date"
	}
}

func (ps *parser) str(v *unstable.Node, key string) (string, bool) {
	if v.Kind != unstable.String {
		ps.errAt(ps.nodePos(v), "%s must be a string, not %s", key, kindName(v.Kind))
		return "", false
	}
	return string(v.Data), true
}

func (ps *parser) strList(v *unstable.Node, key string) ([]string, bool) {
	if v.Kind != unstable.Array {
		ps.errAt(ps.nodePos(v), "%s must be a list of strings, like [\"a\", \"b\"]", key)
		return nil, false
	}
	var out []string
	ok := true
	it := v.Children()
	for it.Next() {
		e := it.Node()
		if e.Kind != unstable.String {
			ps.errAt(ps.nodePos(e), "%s must be a list of strings: this element is %s", key, kindName(e.Kind))
			ok = false
			continue
		}
		out = append(out, string(e.Data))
	}
	return out, ok
}

func (ps *parser) duration(v *unstable.Node, key string) (time.Duration, bool) {
	if v.Kind != unstable.String {
		if v.Kind == unstable.Integer || v.Kind == unstable.Float {
			ps.errAt(ps.nodePos(v), "%s: bad duration %s: write it as a string with a unit, like \"30m\"", key, string(v.Data))
		} else {
			ps.errAt(ps.nodePos(v), "%s must be a duration string like \"30m\", not %s", key, kindName(v.Kind))
		}
		return 0, false
	}
	d, err := ParseDuration(string(v.Data))
	if err != nil {
		ps.errAt(ps.nodePos(v), "%s: %s", key, err)
		return 0, false
	}
	if d <= 0 {
		ps.errAt(ps.nodePos(v), "%s: a duration of zero means nothing here: leave the key out instead", key)
		return 0, false
	}
	return d, true
}

func (ps *parser) warnList(v *unstable.Node) ([]time.Duration, bool) {
	if v.Kind != unstable.Array {
		ps.errAt(ps.nodePos(v), "warn must be a list of durations, like [\"5m\", \"1m\"] (or [] for no warning)")
		return nil, false
	}
	out := []time.Duration{}
	ok := true
	it := v.Children()
	for it.Next() {
		d, good := ps.duration(it.Node(), "warn")
		if !good {
			ok = false
			continue
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b time.Duration) int { return int((b - a) / time.Millisecond) })
	if len(out) > 20 {
		ps.errAt(ps.nodePos(v), "warn lists %d warnings: 20 at most", len(out))
		return nil, false
	}
	return out, ok
}

func (ps *parser) idleInput(v *unstable.Node) (IdleInput, bool) {
	s, ok := ps.str(v, "idle_input")
	if !ok {
		return "", false
	}
	switch IdleInput(s) {
	case InputOnly, InputOutput:
		return IdleInput(s), true
	}
	ps.errAt(ps.nodePos(v), "idle_input %s: use \"input\" (tty atime, as w and logind) or \"input+output\"", q(s))
	return "", false
}

func (ps *parser) percent(v *unstable.Node, key string) (float64, bool) {
	s, ok := ps.str(v, key)
	if !ok {
		return 0, false
	}
	num, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !pct || err != nil || f < 0 || f > 10000 || f != f {
		ps.errAt(ps.nodePos(v), "%s %s: write a percentage of one CPU, like \"5%%\"", key, q(s))
		return 0, false
	}
	return f / 100, true
}

func (ps *parser) message(v *unstable.Node, key string) (string, bool) {
	s, ok := ps.str(v, key)
	if !ok {
		return "", false
	}
	if len(s) > maxMessage {
		ps.errAt(ps.nodePos(v), "%s is %d bytes long: %d at most", key, len(s), maxMessage)
		return "", false
	}
	if bad := unknownPlaceholder(s); bad != "" {
		ps.errAt(ps.nodePos(v), "%s: unknown placeholder %s: use {user} {tty} {idle} {deadline} {in} {reason} {rule}", key, q(bad))
		return "", false
	}
	return s, true
}

// ParseDuration reads durations as admins write them, as the command line
// does: Go's forms (90s, 15m, 1h30m) plus days (1d, 2d12h). A bare number
// is refused: minutes or seconds would be a guess.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	bad := fmt.Errorf("bad duration %s: use a number and a unit, like 30m, 2h or 1d", q(orig))
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, bad
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, fmt.Errorf("bad duration %s: add a unit, like %sm or %sh", q(orig), sanitize.Field(s), sanitize.Field(s))
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || days+d < days {
		return 0, bad
	}
	return days + d, nil
}

// Short formats a duration as the policy file writes it: 90s, 30m, 1h30m, 2d.
func Short(d time.Duration) string {
	if d < 0 {
		return "-" + Short(-d)
	}
	d = d.Round(time.Second)
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if days := d / (24 * time.Hour); days > 0 {
		fmt.Fprintf(&b, "%dd", days)
		d -= days * 24 * time.Hour
	}
	if h := d / time.Hour; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
		d -= m * time.Minute
	}
	if s := d / time.Second; s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// distance is the Levenshtein distance, for "did you mean".
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
