package cli

import (
	"bufio"
	"io"
	"strings"

	"github.com/sshkick/sshkick/internal/sanitize"
)

// table writes rows aligned in columns two spaces apart, the last column
// unpadded. Cells must already be sanitized (one line, printable).
type table struct {
	rows [][]string
	// width, when set (output is a terminal), cuts the last column so a
	// row fits, as w does with WHAT.
	width int
	// indent starts every row.
	indent string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// displayWidth is how many terminal columns s takes.
func displayWidth(s string) int { return sanitize.Width(s) }

func (t *table) write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			if n := displayWidth(c); n > widths[i] {
				widths[i] = n
			}
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var line strings.Builder
	for _, r := range t.rows {
		line.Reset()
		line.WriteString(t.indent)
		used := len(t.indent)
		for i, c := range r {
			if i == len(r)-1 {
				if t.width > 0 {
					c = fit(c, max(t.width-used, 10))
				}
				line.WriteString(c)
				break
			}
			line.WriteString(c)
			used += widths[i] + 2
			if pad := widths[i] - displayWidth(c) + 2; pad > 0 {
				line.WriteString(strings.Repeat(" ", pad))
			}
		}
		bw.WriteString(strings.TrimRight(line.String(), " "))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// fit cuts s to n columns, marking the cut with "…".
func fit(s string, n int) string {
	if displayWidth(s) <= n {
		return s
	}
	var b strings.Builder
	w := 0
	for _, r := range s {
		rw := displayWidth(string(r))
		if w+rw > n-1 {
			break
		}
		b.WriteRune(r)
		w += rw
	}
	return b.String() + "…"
}
