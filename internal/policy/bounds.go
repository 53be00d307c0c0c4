package policy

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Everything kubepim writes into one object is bounded: the API server
// refuses an object over ~1.5 MiB (etcd) or with more than 256 KiB of
// annotations, and a status or event it refuses is a pass that fails
// again on every retry. Where kubepim aggregates (an alert over thousands
// of bindings, a message built from people's reasons) it cuts and says so;
// where a user makes a list grow, admission refuses the write instead.
// docs/architecture.md ("Bounded lists") has the table.

// MaxNamesShown is how many names a message built from a list shows
// before "and N more": enough to act on, whatever the list's length.
const MaxNamesShown = 5

// FirstNames returns at most n of names and, when some were left out, a
// last entry "and N more" saying how many.
func FirstNames(names []string, n int) []string {
	if len(names) <= n {
		return names
	}
	return append(slices.Clone(names[:n]), fmt.Sprintf("and %d more", len(names)-n))
}

// Truncate returns s when it holds at most limit bytes; otherwise s cut
// on a character boundary and ended with "… (N bytes cut)", the whole at
// most limit bytes, so that a reader knows something was left out and
// how much.
func Truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	// The marker's length depends on the number it carries; the number is
	// at most len(s), so sizing for that never overshoots.
	marker := fmt.Sprintf("… (%d bytes cut)", len(s))
	keep := max(limit-len(marker), 0)
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + fmt.Sprintf("… (%d bytes cut)", len(s)-keep)
}

// MaxNameLength is how much of one name a message shows: binding,
// assignment and subject names are at most 329 bytes, but a username may
// be 1 KiB.
const MaxNameLength = 512

// Names joins the first MaxNamesShown of names, each cut to MaxNameLength,
// and says how many more there are: at most about 3 KiB, whatever the
// list, with the count kept whole.
func Names(names []string) string {
	shown := FirstNames(names, MaxNamesShown)
	out := make([]string, len(shown))
	for i, n := range shown {
		out[i] = Truncate(n, MaxNameLength)
	}
	return strings.Join(out, ", ")
}

// JoinBounded joins names with sep, showing at most n of them (FirstNames)
// and at most limit bytes in all (Truncate).
func JoinBounded(names []string, sep string, n, limit int) string {
	return Truncate(strings.Join(FirstNames(names, n), sep), limit)
}
