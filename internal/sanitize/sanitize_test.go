package sanitize

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// hostile payloads from security.md §1, shared by the tests and the fuzz seeds.
var hostile = []string{
	"\x1b]0;pwn\x07",           // OSC title
	"\x1b]52;c;QUJD\x07",       // OSC 52 clipboard write
	"\x1b[2J\x1b[H",            // clear screen, home
	"\x1b[c",                   // DA query: terminal answers
	"\x1b[6n",                  // cursor position report
	"\x1bP$qm\x1b\\",           // DECRQSS
	"\x05",                     // ENQ answerback
	"\x9b2J",                   // 8-bit CSI
	"\x9d0;x\x9c",              // 8-bit OSC ... ST
	"\xc2\x9b2J",               // UTF-8-encoded C1 CSI
	"abc\u202eexe.txt",         // bidi override
	"ro\u200bot",               // zero width space
	"\u2066x\u2069\ufeff",      // isolates, BOM
	"\xff\xfe",                 // invalid UTF-8
	"x\xe2\x82",                // truncated multibyte
	"a\x00b",                   // NUL
	"a\x7fb",                   // DEL
	"Password:\rroot",          // bare CR overwrite
	"secret\b\b\b\b\b\bpublic", // backspaces
	"line1\u2028line2\u2029",   // line/paragraph separator
	"\ue000\U000f0000",         // private use
	"\xed\xa0\x80",             // encoded surrogate
	"\U000e0001tag",            // language tag (Cf, beyond BMP)
	"\u0378",                   // unassigned
	"\x1b\x1b\x1b\x1b\x1b\x1b",
	"\t\ttab\tbed",
	"\r\n\r\n\n",
}

func TestFieldTable(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"root", "root"},
		{"pts/3", "pts/3"},
		{"host.example.org", "host.example.org"},
		{"Jürgen 日本語 ✓ 🙂", "Jürgen 日本語 ✓ 🙂"},
		{`back\slash`, `back\\slash`},
		{"tab\there", `tab\there`},
		{"nl\ncr\r", `nl\ncr\r`},
		{"\x1b]0;pwn\x07", `\x1b]0;pwn\x07`},
		{"\x1b]52;c;QUJD\x07", `\x1b]52;c;QUJD\x07`},
		{"\x1b[2J\x1b[H", `\x1b[2J\x1b[H`},
		{"\x1b[c\x1b[6n", `\x1b[c\x1b[6n`},
		{"\x1bP$qm\x1b\\", `\x1bP$qm\x1b\\`},
		{"\x05", `\x05`},
		{"\x00", `\x00`},
		{"\x7f", `\x7f`},
		{"\x9b2J", `\x9b2J`},
		{"\x9d0;x\x9c", `\x9d0;x\x9c`},
		{"\xc2\x9b2J", `\u009b2J`},
		{"\u0085", `\u0085`},
		{"abc\u202eexe", `abc\u202eexe`},
		{"ro\u200bot", `ro\u200bot`},
		{"\u2066\u2067\u2068\u2069", `\u2066\u2067\u2068\u2069`},
		{"\ufeffx", `\ufeffx`},
		{"a\u2028b\u2029", `a\u2028b\u2029`},
		{"nb\u00a0sp", `nb\u00a0sp`},
		{"\ue000", `\ue000`},
		{"\U000f0000", `\U000f0000`},
		{"\U000e0001", `\U000e0001`},
		{"\u0378", `\u0378`},
		{"\xff\xfe", `\xff\xfe`},
		{"x\xe2\x82", `x\xe2\x82`},
		{"\xe2\x82x", `\xe2\x82x`},
		{"\xed\xa0\x80", `\xed\xa0\x80`}, // surrogate U+D800 is invalid UTF-8
		{"\xc0\xaf", `\xc0\xaf`},         // overlong '/'
		{"\ufffd", `\ufffd`},             // a literal replacement char is not passed on
		{"Password:\rroot", `Password:\rroot`},
		{"a\bb", `a\x08b`},
		{"ok é\x1b", `ok é\x1b`},
	}
	for _, tt := range tests {
		got := Field(tt.in)
		if got != tt.want {
			t.Errorf("Field(%q) = %q, want %q", tt.in, got, tt.want)
		}
		checkField(t, tt.in, got)
	}
}

func TestFieldHostile(t *testing.T) {
	for _, in := range hostile {
		checkField(t, in, Field(in))
	}
}

func TestFieldNoAlloc(t *testing.T) {
	clean := "david pts/12 host-42.example.org sshd: david@pts/12 Jürgen ✓"
	if got := Field(clean); got != clean {
		t.Fatalf("Field changed a clean string: %q", got)
	}
	allocs := testing.AllocsPerRun(100, func() { _ = Field(clean) })
	if allocs != 0 {
		t.Errorf("Field(clean) allocates %v times, want 0", allocs)
	}
}

func TestCleanASCII8(t *testing.T) {
	ref := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
				return false
			}
		}
		return true
	}
	for _, bg := range []byte{' ', 'a', '~', '[', ']', 0x00, 0x1f, 0x7f, 0x80, 0xff, '\\'} {
		for pos := range 8 {
			for c := range 256 {
				b := bytes.Repeat([]byte{bg}, 8)
				b[pos] = byte(c)
				if got, want := cleanASCII8(string(b)), ref(string(b)); got != want {
					t.Fatalf("cleanASCII8(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	for c := range 256 {
		for d := range 256 {
			b := []byte{'x', byte(c), 'y', byte(d), 'z', byte(c), byte(d), 'w'}
			if got, want := cleanASCII8(string(b)), ref(string(b)); got != want {
				t.Fatalf("cleanASCII8(%q) = %v, want %v", b, got, want)
			}
		}
	}
}

// checkField asserts Field's output invariants.
func checkField(t *testing.T, in, got string) {
	t.Helper()
	if !utf8.ValidString(got) {
		t.Errorf("Field(%q) = %q: invalid UTF-8", in, got)
	}
	for _, r := range got {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && !unicode.IsPrint(r)) || r == utf8.RuneError {
			t.Errorf("Field(%q) = %q: contains %U", in, got, r)
			return
		}
	}
}

func TestMessageTable(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		width int
		want  string
	}{
		{"empty", "", 0, "\r\n"},
		{"plain", "hello", 0, "hello\r\n"},
		{"trailing newline", "hello\n", 0, "hello\r\n"},
		{"blank lines kept", "a\n\nb\n", 0, "a\r\n\r\nb\r\n"},
		{"crlf is one newline", "a\r\nb\r\n", 0, "a\r\nb\r\n"},
		{"bare CR dropped", "Password:\rroot", 0, "Password:root\r\n"},
		{"CR CR LF", "a\r\r\nb", 0, "a\r\nb\r\n"},
		{"OSC title", "\x1b]0;pwn\x07", 0, "^[]0;pwn^G\r\n"},
		{"OSC 52", "\x1b]52;c;QUJD\x07", 0, "^[]52;c;QUJD^G\r\n"},
		{"clear screen", "\x1b[2J\x1b[H", 0, "^[[2J^[[H\r\n"},
		{"DA query", "\x1b[c", 0, "^[[c\r\n"},
		{"CPR query", "\x1b[6n", 0, "^[[6n\r\n"},
		{"DECRQSS", "\x1bP$qm\x1b\\", 0, "^[P$qm^[\\\r\n"},
		{"ENQ", "\x05", 0, "^E\r\n"},
		{"8-bit CSI", "\x9b2J", 0, `\x9b2J` + "\r\n"},
		{"8-bit OSC", "\x9d0;x\x9c", 0, `\x9d0;x\x9c` + "\r\n"},
		{"UTF-8 C1", "\xc2\x9b2J", 0, `\u009b2J` + "\r\n"},
		{"bidi", "abc\u202etxt", 0, `abc\u202etxt` + "\r\n"},
		{"zero width", "ro\u200bot", 0, `ro\u200bot` + "\r\n"},
		{"language tag", "\U000e0001", 0, `\U000e0001` + "\r\n"},
		{"invalid", "\xff\xfe", 0, `\xff\xfe` + "\r\n"},
		{"truncated utf8", "x\xe2\x82", 0, `x\xe2\x82` + "\r\n"},
		{"NUL", "a\x00b", 0, "a^@b\r\n"},
		{"DEL", "a\x7fb", 0, "a^?b\r\n"},
		{"backspaces", "ab\b\bcd", 0, "ab^H^Hcd\r\n"},
		{"VT FF", "\v\f", 0, "^K^L\r\n"},
		{"utf8 kept", "Grüße 日本 🙂", 0, "Grüße 日本 🙂\r\n"},
		{"backslash kept", `C:\dir`, 0, `C:\dir` + "\r\n"},
		{"tab expands", "a\tb", 0, "a       b\r\n"},
		{"tab at stop", "abcdefgh\tx", 0, "abcdefgh        x\r\n"},
		{"tab after newline", "abc\n\tx", 0, "abc\r\n        x\r\n"},
		{"wrap at space", "aaaaaaaa bbbbbbbbb cccc", 20, "aaaaaaaa bbbbbbbbb\r\ncccc\r\n"},
		{"wrap drops the space", "aaaaaaaaaaaaaaaaaaaa bbbb", 20, "aaaaaaaaaaaaaaaaaaaa\r\nbbbb\r\n"},
		{"wrap hard", strings.Repeat("abcde", 9), 20,
			"abcdeabcdeabcdeabcde\r\nabcdeabcdeabcdeabcde\r\nabcde\r\n"},
		{"wrap exact", strings.Repeat("x", 20), 20, strings.Repeat("x", 20) + "\r\n"},
		{"wrap exact then newline", strings.Repeat("x", 20) + "\nef", 20, strings.Repeat("x", 20) + "\r\nef\r\n"},
		{"wrap spaces at end", strings.Repeat("x", 20) + "    \nef", 20, strings.Repeat("x", 20) + "\r\nef\r\n"},
		{"spaces after wrap dropped", strings.Repeat("x", 20) + "    ef", 20, strings.Repeat("x", 20) + "\r\nef\r\n"},
		{"wrap keeps escape whole", strings.Repeat("x", 17) + " \u202e", 20, strings.Repeat("x", 17) + "\r\n\\u202e\r\n"},
		{"escape fits exactly", strings.Repeat("x", 18) + "\x1b", 20, strings.Repeat("x", 18) + "^[\r\n"},
		{"wrap escape hard", strings.Repeat("x", 19) + "\x1b", 20, strings.Repeat("x", 19) + "\r\n^[\r\n"},
		{"wrap runes by count", strings.Repeat("日本語語", 10), 20,
			strings.Repeat("日本語語", 5) + "\r\n" + strings.Repeat("日本語語", 5) + "\r\n"},
		{"wrap long word after space", "a " + strings.Repeat("b", 25), 20,
			"a\r\n" + strings.Repeat("b", 20) + "\r\n" + strings.Repeat("b", 5) + "\r\n"},
		{"wrap inside tab", "abcdefghijklmnopq\tdef", 20, "abcdefghijklmnopq   \r\ndef\r\n"},
		{"wrap after tab", "abc\tdefghijklmnopq", 20, "abc    \r\ndefghijklmnopq\r\n"},
		{"narrow width raised to MinWidth", strings.Repeat("y", 25), 3, strings.Repeat("y", 20) + "\r\nyyyyy\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Message([]byte(tt.in), tt.width, 0)
			if string(got) != tt.want {
				t.Errorf("Message(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
			}
			checkMessage(t, []byte(tt.in), tt.width, 0, got)
		})
	}
}

func TestMessageHostile(t *testing.T) {
	for _, in := range hostile {
		for _, width := range []int{0, 1, 3, 8, 20} {
			got := Message([]byte(in), width, 0)
			checkMessage(t, []byte(in), width, 0, got)
			if bytes.Contains(got, []byte("\x1b")) {
				t.Errorf("ESC survived in %q", got)
			}
		}
	}
	// Everything at once, and each payload repeated enough to be cut.
	all := []byte(strings.Join(hostile, " "))
	for _, max := range []int{0, 1, 64, 100, 257, 1000} {
		for _, width := range []int{0, 5, 40, 79} {
			checkMessage(t, all, width, max, Message(all, width, max))
			rep := bytes.Repeat(all, 20)
			checkMessage(t, rep, width, max, Message(rep, width, max))
		}
	}
}

func TestMessageTruncation(t *testing.T) {
	t.Run("1MiB", func(t *testing.T) {
		unit := []byte("lorem ipsum \x1b[2J dolor\n")
		in := bytes.Repeat(unit, 1<<20/len(unit)+1)[:1<<20]
		got := Message(in, 0, 0)
		checkMessage(t, in, 0, 0, got)
		if len(got) > DefaultMaxBytes {
			t.Fatalf("len = %d", len(got))
		}
		if !bytes.HasSuffix(got, []byte("\r\n"+TruncatedMarker)) {
			t.Errorf("no truncation marker: %q", got[len(got)-60:])
		}
	})
	t.Run("100k-character line", func(t *testing.T) {
		in := bytes.Repeat([]byte("x"), 100000)
		got := Message(in, 0, 200000)
		checkMessage(t, in, 0, 200000, got)
		lines := strings.Split(strings.TrimSuffix(string(got), "\r\n"), "\r\n")
		if len(lines) != 100000/79+1 {
			t.Errorf("%d lines", len(lines))
		}
		if strings.Count(string(got), "x") != 100000 {
			t.Error("characters lost")
		}
		got = Message(in, 0, 0)
		checkMessage(t, in, 0, 0, got)
		if !bytes.HasSuffix(got, []byte(TruncatedMarker)) {
			t.Error("no truncation marker")
		}
	})
	t.Run("100k-character line of escapes and runes", func(t *testing.T) {
		in := bytes.Repeat([]byte("\x1b日\u202e\xff"), 25000)
		for _, max := range []int{0, 1 << 20} {
			checkMessage(t, in, 0, max, Message(in, 0, max))
			checkMessage(t, in, 27, max, Message(in, 27, max))
		}
	})
	t.Run("exact fit has no marker", func(t *testing.T) {
		in := strings.Repeat("a", 62) // 62 + "\r\n" == 64
		got := Message([]byte(in), 100, 64)
		if string(got) != in+"\r\n" {
			t.Errorf("got %q", got)
		}
		got = Message([]byte(in+"\n"), 100, 64)
		if string(got) != in+"\r\n" {
			t.Errorf("with newline: got %q", got)
		}
		got = Message([]byte(in+"a"), 100, 64)
		if !bytes.HasSuffix(got, []byte("\r\n"+TruncatedMarker)) || len(got) > 64 {
			t.Errorf("one more: got %q", got)
		}
	})
	t.Run("never cuts an escape or a rune", func(t *testing.T) {
		for max := MinMaxBytes; max < 200; max++ {
			for _, unit := range []string{"\x1b", "é", "日", "🙂", "\u202e", "\U000e0001", "\xff"} {
				in := []byte(strings.Repeat(unit, 100))
				got := Message(in, 0, max)
				checkMessage(t, in, 0, max, got)
				body := strings.TrimSuffix(string(got), TruncatedMarker)
				body = strings.ReplaceAll(body, "\r\n", "")
				// the body must be whole repetitions of the sanitized unit
				u := strings.TrimSuffix(string(Message([]byte(unit), 1000, 0)), "\r\n")
				if strings.ReplaceAll(body, u, "") != "" {
					t.Errorf("max %d unit %q: cut inside a unit: %q", max, unit, got)
				}
			}
		}
	})
}

func TestMessageDefaults(t *testing.T) {
	in := bytes.Repeat([]byte("word "), 200)
	got := Message(in, 0, 0)
	lines := strings.Split(strings.TrimSuffix(string(got), "\r\n"), "\r\n")
	for i, line := range lines {
		if n := utf8.RuneCountInString(line); n > DefaultWidth || (n < DefaultWidth-5 && i < len(lines)-1) {
			t.Errorf("line of %d runes: %q", n, line)
		}
	}
	if got := Message([]byte("x"), -5, 10); string(got) != "x\r\n" {
		t.Errorf("got %q", got)
	}
}

// checkMessage asserts every invariant of Message's output: only CR-LF pairs
// of C0, no DEL, valid UTF-8, no C1 or Cf rune, lines <= width runes,
// len <= maxBytes, ends with CR LF.
func checkMessage(t *testing.T, in []byte, width, maxBytes int, got []byte) {
	t.Helper()
	if err := messageInvariants(width, maxBytes, got); err != nil {
		in := in
		if len(in) > 200 {
			in = in[:200]
		}
		out := got
		if len(out) > 400 {
			out = out[:400]
		}
		t.Errorf("Message(%q…, %d, %d): %v\noutput: %q", in, width, maxBytes, err, out)
	}
}

func messageInvariants(width, maxBytes int, got []byte) error {
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
	if len(got) > maxBytes {
		return fmt.Errorf("len %d > max %d", len(got), maxBytes)
	}
	if !bytes.HasSuffix(got, []byte("\r\n")) {
		return fmt.Errorf("does not end with CR LF")
	}
	if !utf8.Valid(got) {
		return fmt.Errorf("invalid UTF-8")
	}
	for i, c := range got {
		switch {
		case c == '\r':
			if i+1 >= len(got) || got[i+1] != '\n' {
				return fmt.Errorf("bare CR at %d", i)
			}
		case c == '\n':
			if i == 0 || got[i-1] != '\r' {
				return fmt.Errorf("bare LF at %d", i)
			}
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("control byte %#x at %d", c, i)
		}
	}
	for _, r := range string(got) {
		if (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError ||
			(r >= 0x80 && !unicode.IsPrint(r)) {
			return fmt.Errorf("rune %U", r)
		}
	}
	for _, line := range bytes.Split(got[:len(got)-2], []byte("\r\n")) {
		if n := utf8.RuneCount(line); n > width {
			return fmt.Errorf("line of %d runes > width %d: %q", n, width, line)
		}
	}
	return nil
}

func FuzzMessage(f *testing.F) {
	for _, h := range hostile {
		f.Add([]byte(h), 0, 0)
		f.Add([]byte(h+" "+h+"\n"+h), 5, 70)
	}
	f.Add([]byte(strings.Repeat("ab \t", 50)), 7, 100)
	f.Add([]byte(strings.Repeat("\U000e0001", 20)), 21, 64)
	f.Fuzz(func(t *testing.T, in []byte, width, maxBytes int) {
		// keep the fuzzer in sensible ranges; huge widths/budgets add nothing
		width %= 200
		maxBytes %= 1 << 16
		got := Message(in, width, maxBytes)
		if err := messageInvariants(width, maxBytes, got); err != nil {
			t.Fatalf("Message(%q, %d, %d) = %q: %v", in, width, maxBytes, got, err)
		}
	})
}

func FuzzField(f *testing.F) {
	for _, h := range hostile {
		f.Add(h)
	}
	f.Add(`\\x1b`)
	f.Fuzz(func(t *testing.T, in string) {
		got := Field(in)
		if !utf8.ValidString(got) {
			t.Fatalf("Field(%q) = %q: invalid UTF-8", in, got)
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && !unicode.IsPrint(r)) || r == utf8.RuneError {
				t.Fatalf("Field(%q) = %q: contains %U", in, got, r)
			}
		}
		// The escaping is reversible (hence unambiguous): Go's own unquoting
		// of the output gives back the input bytes.
		back, err := strconv.Unquote(`"` + strings.ReplaceAll(got, `"`, `\"`) + `"`)
		if err != nil || back != in {
			t.Fatalf("Field(%q) = %q does not unquote back (%q, %v)", in, got, back, err)
		}
	})
}

func BenchmarkFieldClean(b *testing.B) {
	s := "david pts/12 host-42.example.org sshd: david@pts/12"
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		_ = Field(s)
	}
}

func BenchmarkFieldCleanUTF8(b *testing.B) {
	s := "Jürgen pts/12 hôte-42.exemple.org 日本語 sshd: jürgen@pts/12"
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		_ = Field(s)
	}
}

func BenchmarkFieldDirty(b *testing.B) {
	s := "david\x1b]0;pwn\x07 pts/12 host\u202e-42.example.org\xff sshd: \\david@pts/12"
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		_ = Field(s)
	}
}

func BenchmarkMessage(b *testing.B) {
	in := bytes.Repeat([]byte("The system goes down for maintenance in 5 minutes. \x1b[2J\t"), 60)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		_ = Message(in, 0, 0)
	}
}

// Table alignment (issue 8 item 10): fillers and a leading combining mark
// are escaped; Width counts columns.
func TestFieldFillersAndWidth(t *testing.T) {
	for in, want := range map[string]string{
		"\u3164":    `\u3164`,
		"a\u115Fb":  `a\u115fb`,
		"\u1160":    `\u1160`,
		"\uFFA0x":   `\uffa0x`,
		"\u0301abc": `\u0301abc`,
		"e\u0301":   "e\u0301", // a mark after its letter is kept
		"\u2800":    `\u2800`,
		"rооt":      "rооt",
	} {
		if got := Field(in); got != want {
			t.Errorf("Field(%q) = %q, want %q", in, got, want)
		}
	}
	// Printable ASCII takes the fast path; anything else is runewidth's.
	for in, want := range map[string]int{"abc": 3, "日本": 4, "e\u0301": 1, "": 0, "ｆｕｌｌ": 8,
		"a\x01b": 2, "x\x7f": 1, "tab\there": 7, "ascii then 日": 13, `\u202e`: 6} {
		if got := Width(in); got != want {
			t.Errorf("Width(%q) = %d, want %d", in, got, want)
		}
	}
}
