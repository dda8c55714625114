// Package sanitize is the only place that decides which bytes from utmp,
// /proc, D-Bus or the command line may reach a terminal — the admin's own
// terminal (listing output) or another user's terminal (warnings).
//
// Every string that came from outside the program (user and host names, tty
// names, process names and command lines, D-Bus values, message text from
// argv, stdin, files or config) must pass through Field or Message before it
// is printed. There is deliberately no second filter anywhere else:
// CVE-2024-28085 (WallEscape) was a second input path that skipped wall's
// filter.
//
// Both functions make a single pass over their input and use no regular
// expressions. "Printable" for a non-ASCII rune means unicode.IsPrint:
// letters, marks, numbers, punctuation and symbols. Everything else (C0 and
// C1 controls, DEL, format characters such as bidi overrides and zero-width
// characters, line/paragraph separators, non-ASCII space separators,
// private-use, surrogate and unassigned code points, and invalid UTF-8) is
// shown escaped and never reaches the terminal raw. A literal U+FFFD is
// escaped as well, so that it never hides where input was invalid.
package sanitize

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"
)

const hexDigits = "0123456789abcdef"

// printableRune reports whether a non-ASCII rune may be written to a
// terminal unchanged: unicode.IsPrint, minus U+FFFD. unicode.IsPrint excludes the categories Cc (C0, C1),
// Cf (bidi controls, zero-width characters, U+FEFF), Co (private use),
// Cs (surrogates), Cn (unassigned), Zl, Zp and Zs other than U+0020.
//
// Fillers that print as blank space without being spaces (Hangul fillers
// U+3164, U+115F, U+1160, U+FFA0; U+2800 braille blank) are not printable
// either: a user name made of them looks empty in a table.
func printableRune(r rune) bool {
	switch r {
	case utf8.RuneError, 0x3164, 0x115F, 0x1160, 0xFFA0, 0x2800:
		return false
	}
	return unicode.IsPrint(r)
}

// Width is the number of terminal columns s takes (East Asian wide runes
// count 2, combining marks 0), for aligning tables of Field output.
// Printable ASCII, what nearly every cell of a listing is, is one column a
// byte, without the grapheme segmentation of runewidth.
func Width(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return runewidth.StringWidth(s)
		}
	}
	return len(s)
}

// appendByteEscape appends `\xNN`.
func appendByteEscape(dst []byte, c byte) []byte {
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}

// appendRuneEscape appends `\uNNNN` (BMP) or `\UNNNNNNNN`.
func appendRuneEscape(dst []byte, r rune) []byte {
	if r < 0x10000 {
		return append(dst, '\\', 'u',
			hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
	}
	dst = append(dst, '\\', 'U')
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[r>>uint(shift)&0xf])
	}
	return dst
}

// Field makes one untrusted string (user name, host, tty, command line,
// D-Bus value) safe to print on one line and valid printable UTF-8.
//
// Printable ASCII and printable non-ASCII runes pass unchanged; everything
// else is shown escaped: backslash itself as `\\`, tab as `\t`, newline
// `\n`, CR `\r`, other C0 controls and DEL as `\xNN`; C1 (U+0080–U+009F),
// format/bidi/zero-width characters (category Cf, e.g. U+202E, U+200B,
// U+2066–U+2069, U+FEFF), unassigned, private-use and surrogate code points,
// line/paragraph separators (U+2028/U+2029) and non-ASCII spaces as `\u202e`
// (`\U000e0001` beyond the BMP); each byte of invalid UTF-8 as `\xNN`.
//
// Because a literal backslash is escaped too, the output is unambiguous.
// Field returns s itself, without allocating, when s needs no escaping.
// Field does not bound the length. It is not idempotent: its own escapes
// start with a backslash, which a second pass escapes again (`\x1b` becomes
// `\\x1b`); sanitize once, at the boundary where a value is printed.
func Field(s string) string {
	for i := 0; i < len(s); {
		// 8 bytes at a time while they are all clean ASCII.
		for i+8 <= len(s) && cleanASCII8(s[i:i+8]) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c < 0x7f && c != '\\' {
				i++
				continue
			}
			return fieldSlow(s, i)
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !printableRune(r) || (i == 0 && unicode.Is(unicode.M, r)) {
			return fieldSlow(s, i)
		}
		i += size
	}
	return s
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// cleanASCII8 reports whether all 8 bytes of s are printable ASCII other
// than backslash (SWAR; the formulas are exact as booleans for these
// constants).
func cleanASCII8(s string) bool {
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	del, bs := x^0x7f*lsb, x^'\\'*lsb // zero bytes where DEL / backslash
	less20 := (x - 0x20*lsb) &^ x     // high bit set at the lowest byte < 0x20
	isDEL := (del - lsb) &^ del
	isBS := (bs - lsb) &^ bs
	return (x|less20|isDEL|isBS)&msb == 0
}

// fieldSlow escapes s; s[:i] is known to be clean.
func fieldSlow(s string, i int) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	var esc [10]byte
	for i < len(s) {
		// copy the next clean stretch in one go
		j := i
		for j+8 <= len(s) && cleanASCII8(s[j:j+8]) {
			j += 8
		}
		for j < len(s) && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '\\' {
			j++
		}
		b.WriteString(s[i:j])
		if i = j; i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '\\':
				b.WriteString(`\\`)
			case '\t':
				b.WriteString(`\t`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			default: // other C0, DEL
				b.Write(appendByteEscape(esc[:0], c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.Write(appendByteEscape(esc[:0], c))
		case printableRune(r) && !(i == 0 && unicode.Is(unicode.M, r)):
			b.WriteString(s[i : i+size])
		default:
			// A combining mark standing alone at the start would join
			// whatever the table printed before it.
			b.Write(appendRuneEscape(esc[:0], r))
		}
		i += size
	}
	return b.String()
}

const (
	// DefaultWidth is the wrap width Message uses when width <= 0.
	DefaultWidth = 79
	// DefaultMaxBytes is the output bound Message uses when maxBytes <= 0.
	DefaultMaxBytes = 4096
	// MinWidth is the narrowest wrap width Message honours; smaller
	// positive widths are raised to it so that the truncation marker line
	// and every escape fit on one line.
	MinWidth = 20
	// MinMaxBytes is the smallest output bound Message honours; smaller
	// positive values are raised to it so that the truncation marker fits.
	MinMaxBytes = 64
	// TruncatedMarker is the last line of a message Message had to cut.
	TruncatedMarker = "[message truncated]\r\n"

	tabStop = 8
)

// Message prepares text to be written to another user's terminal
// (wall/write-like).
//
// The output contains only printable ASCII, printable UTF-8 and CR LF line
// ends. Everything else is rendered visibly, never raw:
//   - ESC as `^[`, other C0 controls (except \n and \t) as caret notation
//     `^X` (BEL `^G`, BS `^H`, ENQ `^E`, NUL `^@`), DEL as `^?`;
//   - a bare CR (not followed by LF) is dropped: it would allow "overwrite
//     the line" spoofing, and there is nothing useful to show for it;
//   - C1 controls (8-bit bytes 0x80–0x9F are invalid UTF-8 and are shown as
//     `\x9b`; UTF-8-encoded U+0080–U+009F as `\u009b`), format/bidi/
//     zero-width characters and other non-printable runes as `\u202e` /
//     `\U000e0001`; every byte of invalid or truncated UTF-8 as `\xNN`.
//
// A literal backslash in the text is kept as is (unlike Field), so the output
// of Message is meant for humans, not for parsing.
//
// Tabs expand to spaces up to the next multiple of 8 columns. "\r\n" in the
// input counts as one newline; every newline is written as "\r\n" because the
// receiving terminal may be in raw mode.
//
// Each output line is wrapped at width columns, counted in runes: a wide
// (East Asian) rune counts as one column although terminals show it in two,
// and a combining mark counts as one although it takes none. Lines are
// wrapped at the last space when there is one (that space is dropped), else
// hard. Escapes are never split across lines.
//
// The output always ends with "\r\n" and is at most maxBytes long, including
// that final "\r\n" and, when the text had to be cut, the marker line
// TruncatedMarker. It is never cut inside a UTF-8 sequence or an escape.
// width <= 0 means DefaultWidth (79), 0 < width < MinWidth means MinWidth
// (20); maxBytes <= 0 means DefaultMaxBytes (4096), 0 < maxBytes <
// MinMaxBytes means MinMaxBytes (64).
func Message(b []byte, width, maxBytes int) []byte {
	if width <= 0 {
		width = DefaultWidth
	}
	if width < MinWidth {
		width = MinWidth
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxBytes < MinMaxBytes {
		maxBytes = MinMaxBytes
	}
	capacity := len(b) + len(b)/4 + 2*len(b)/width + 8
	if capacity > maxBytes {
		capacity = maxBytes
	}
	w := msgWriter{
		out:        make([]byte, 0, capacity),
		width:      width,
		max:        maxBytes,
		truncLimit: maxBytes - 2 - len(TruncatedMarker),
		lastSpace:  -1,
	}
	var esc [10]byte
	for i := 0; i < len(b); {
		c := b[i]
		ok := true
		switch {
		case c == '\n':
			ok = w.newline()
			i++
		case c == '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				ok = w.newline()
				i += 2
			} else {
				i++ // bare CR: dropped
			}
		case c == '\t':
			for n := tabStop - w.col%tabStop; n > 0 && ok; n-- {
				ok = w.space()
			}
			i++
		case c == ' ':
			ok = w.space()
			i++
		case c < 0x20:
			esc[0], esc[1] = '^', c+0x40 // ESC -> ^[, NUL -> ^@, BEL -> ^G
			ok = w.unit(esc[:2], 2)
			i++
		case c == 0x7f:
			esc[0], esc[1] = '^', '?'
			ok = w.unit(esc[:2], 2)
			i++
		case c < utf8.RuneSelf:
			// a run of printable ASCII other than space, the common case
			j := i + 1
			for j < len(b) && b[j] > ' ' && b[j] < 0x7f {
				j++
			}
			ok = w.run(b[i:j])
			i = j
		default:
			r, size := utf8.DecodeRune(b[i:])
			switch {
			case r == utf8.RuneError && size <= 1:
				e := appendByteEscape(esc[:0], c)
				ok = w.unit(e, len(e))
			case printableRune(r):
				ok = w.unit(b[i:i+size], 1)
			default:
				e := appendRuneEscape(esc[:0], r)
				ok = w.unit(e, len(e))
			}
			i += size
		}
		if !ok {
			return w.truncate()
		}
	}
	if w.col > 0 || len(w.out) == 0 {
		w.out = append(w.out, '\r', '\n')
	}
	return w.out
}

// msgWriter accumulates Message output. A "unit" is what must never be cut:
// one printable rune or one whole escape.
type msgWriter struct {
	out        []byte
	width, max int
	col        int // runes in the current line
	// lastSpace is the index in out of the last space in the current line
	// (a wrap opportunity), -1 if none; spaceCol is its column.
	lastSpace, spaceCol int
	// pending: the current line is full and ended at a (dropped) space; the
	// next visible unit starts a new line, further spaces are dropped.
	pending bool
	// safeLen is the longest prefix of out ending at a unit boundary that
	// still leaves room for "\r\n" + TruncatedMarker (<= truncLimit).
	truncLimit, safeLen int
}

func (w *msgWriter) markSafe() {
	if len(w.out) <= w.truncLimit {
		w.safeLen = len(w.out)
	}
}

// newline appends an explicit line end. It reports false when the output
// bound is reached.
func (w *msgWriter) newline() bool {
	if len(w.out)+2 > w.max {
		return false
	}
	w.out = append(w.out, '\r', '\n')
	w.col, w.lastSpace, w.pending = 0, -1, false
	w.markSafe()
	return true
}

// space appends one space (from ' ' or tab expansion).
func (w *msgWriter) space() bool {
	if w.pending {
		return true // dropped at a wrap point
	}
	if w.col+1 > w.width {
		w.pending, w.lastSpace = true, -1
		return true
	}
	if len(w.out)+1+2 > w.max {
		return false
	}
	w.lastSpace, w.spaceCol = len(w.out), w.col
	w.out = append(w.out, ' ')
	w.col++
	w.markSafe()
	return true
}

// unit appends u, which takes n columns, wrapping the line first if needed.
func (w *msgWriter) unit(u []byte, n int) bool {
	const (
		noWrap = iota
		wrapAtSpace
		wrapHard
	)
	wrap := noWrap
	if w.pending {
		wrap = wrapHard
	} else if w.col+n > w.width {
		tail := w.col - w.spaceCol - 1
		if w.lastSpace >= 0 && tail+n <= w.width {
			wrap = wrapAtSpace
		} else if w.col > 0 {
			wrap = wrapHard
		}
	}
	cost := len(u)
	startCol := w.col
	switch wrap {
	case wrapAtSpace:
		cost++ // the space becomes "\r\n"
		startCol = w.col - w.spaceCol - 1
	case wrapHard:
		cost += 2
		startCol = 0
	}
	if len(w.out)+cost+2 > w.max {
		return false
	}
	switch wrap {
	case wrapAtSpace:
		sp := w.lastSpace
		w.out = append(w.out, 0)
		copy(w.out[sp+2:], w.out[sp+1:len(w.out)-1])
		w.out[sp], w.out[sp+1] = '\r', '\n'
		if w.safeLen > sp {
			if w.safeLen+1 <= w.truncLimit {
				w.safeLen++
			} else {
				w.safeLen = sp
			}
		}
	case wrapHard:
		w.out = append(w.out, '\r', '\n')
	}
	if wrap != noWrap {
		w.col, w.lastSpace, w.pending = startCol, -1, false
	}
	// n <= 10 < MinWidth: the unit always fits on the (new) line.
	w.out = append(w.out, u...)
	w.col += n
	w.markSafe()
	return true
}

// run appends a run of printable ASCII characters other than space, in bulk
// while they fit on the line and in the budget, else one unit at a time.
func (w *msgWriter) run(r []byte) bool {
	for len(r) > 0 {
		k := min(len(r), w.width-w.col)
		if w.pending || k <= 0 || len(w.out)+k+2 > w.max {
			if !w.unit(r[:1], 1) {
				return false
			}
			r = r[1:]
			continue
		}
		old := len(w.out)
		w.out = append(w.out, r[:k]...)
		w.col += k
		r = r[k:]
		// every byte of the run is a unit boundary
		if len(w.out) <= w.truncLimit {
			w.safeLen = len(w.out)
		} else if old <= w.truncLimit {
			w.safeLen = w.truncLimit
		}
	}
	return true
}

// truncate cuts the output at the last safe unit boundary and appends the
// marker line.
func (w *msgWriter) truncate() []byte {
	out := w.out[:w.safeLen]
	if n := len(out); n > 0 && !(n >= 2 && out[n-2] == '\r' && out[n-1] == '\n') {
		out = append(out, '\r', '\n')
	}
	return append(out, TruncatedMarker...)
}
