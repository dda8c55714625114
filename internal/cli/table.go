package cli

import (
	"bufio"
	"io"
	"strings"
	"unicode/utf8"
)

// table writes rows aligned in columns two spaces apart, the last column
// unpadded. Cells must already be sanitized (one line, printable).
type table struct {
	rows [][]string
	// width, when set (output is a terminal), cuts the last column so a
	// row fits, as w does with WHAT.
	width int
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			if n := utf8.RuneCountInString(c); n > widths[i] {
				widths[i] = n
			}
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	for _, r := range t.rows {
		used := 0
		for i, c := range r {
			if i == len(r)-1 {
				if t.width > 0 {
					c = fit(c, max(t.width-used, 10))
				}
				bw.WriteString(c)
				break
			}
			bw.WriteString(c)
			used += widths[i] + 2
			if pad := widths[i] - utf8.RuneCountInString(c) + 2; pad > 0 {
				bw.WriteString(strings.Repeat(" ", pad))
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// fit cuts s to n runes, marking the cut with "…".
func fit(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
