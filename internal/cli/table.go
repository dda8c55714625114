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
		for i, c := range r {
			bw.WriteString(c)
			if i == len(r)-1 {
				break
			}
			if pad := widths[i] - utf8.RuneCountInString(c) + 2; pad > 0 {
				bw.WriteString(strings.Repeat(" ", pad))
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
