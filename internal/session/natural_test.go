package session

import (
	"slices"
	"testing"
)

func TestNaturalCompare(t *testing.T) {
	in := []string{"pts/10", "pts/2", "ssh:100", "ssh:99", "pts/02", "tty1", "pts/1a", "pts/1", "", "c10", "c9"}
	slices.SortStableFunc(in, NaturalCompare)
	want := []string{"", "c9", "c10", "pts/1", "pts/1a", "pts/2", "pts/02", "pts/10", "ssh:99", "ssh:100", "tty1"}
	if !slices.Equal(in, want) {
		t.Errorf("sorted %q, want %q", in, want)
	}
}
