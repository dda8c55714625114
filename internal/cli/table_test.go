package cli

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTableFitsTerminalWidth(t *testing.T) {
	tb := &table{width: 30}
	tb.add("ID", "WHAT")
	tb.add("pts/0", "a very long command line that does not fit")
	var b strings.Builder
	tb.write(&b)
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		if n := utf8.RuneCountInString(l); n > 30 {
			t.Errorf("line of %d runes: %q", n, l)
		}
	}
	if !strings.Contains(b.String(), "…") {
		t.Errorf("no cut mark: %q", b.String())
	}
	// Not on a terminal: nothing is cut.
	tb.width = 0
	b.Reset()
	tb.write(&b)
	if !strings.Contains(b.String(), "does not fit") {
		t.Errorf("cut without a terminal: %q", b.String())
	}
}

// TestTableDisplayWidth: fullwidth characters take two columns and
// combining marks none; the next column still starts in one place.
func TestTableDisplayWidth(t *testing.T) {
	tb := &table{}
	tb.add("ｆｕｌｌ", "x")
	tb.add("e\u0301e", "y")
	tb.add("ascii", "z")
	var b strings.Builder
	tb.write(&b)
	want := "ｆｕｌｌ  x\ne\u0301e        y\nascii     z\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
