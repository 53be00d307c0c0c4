package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// sample is a set of measured durations.
type sample []time.Duration

// quantile returns the nearest-rank quantile q (0 < q <= 1).
func (s sample) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func (s sample) max() time.Duration { return s.quantile(1) }
func (s sample) min() time.Duration { return s.quantile(1e-9) }

// row is one line of the results table.
type row struct {
	Metric, P50, P99, Max, Target, Verdict string
}

// results collects the table and the notes printed under it.
type results struct {
	rows  []row
	notes []string
}

func (r *results) add(row row) {
	r.rows = append(r.rows, row)
	fmt.Fprintf(logOut, "bench: %s: p50 %s p99 %s max/value %s %s\n", row.Metric, row.P50, row.P99, row.Max, row.Verdict)
}

func (r *results) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	r.notes = append(r.notes, n)
	fmt.Fprintf(logOut, "bench: note: %s\n", n)
}

// latencyRow summarizes a sample; target checks the p99 when positive.
func latencyRow(metric string, s sample, target time.Duration) row {
	r := row{Metric: fmt.Sprintf("%s (n=%d)", metric, len(s)), P50: ms(s.quantile(0.5)), P99: ms(s.quantile(0.99)), Max: ms(s.max()), Target: "—", Verdict: "reported"}
	if target > 0 {
		r.Target = "p99 ≤ " + ms(target)
		r.Verdict = verdict(s.quantile(0.99) <= target, float64(s.quantile(0.99))/float64(target))
	}
	if len(s) == 0 {
		r.P50, r.P99, r.Max, r.Verdict = "—", "—", "—", "not measured"
	}
	return r
}

func verdict(ok bool, factor float64) string {
	if ok {
		return "met"
	}
	return fmt.Sprintf("MISSED (%.2f× the target)", factor)
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func secs(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mib(bytes uint64) string {
	return fmt.Sprintf("%.0f MiB", float64(bytes)/(1<<20))
}

// print writes the table as Markdown, columns aligned.
func (r *results) print(w io.Writer) {
	header := row{"Metric", "p50", "p99", "max / value", "target", "verdict"}
	all := append([]row{header}, r.rows...)
	width := make([]int, 6)
	cells := func(x row) []string { return []string{x.Metric, x.P50, x.P99, x.Max, x.Target, x.Verdict} }
	for _, x := range all {
		for i, c := range cells(x) {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	line := func(cs []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cs {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len([]rune(c))) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(cells(header))
	sep := make([]string, 6)
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, x := range r.rows {
		line(cells(x))
	}
	if len(r.notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

// verdictMax judges a value against an upper bound.
func verdictMax(v, target float64) string { return verdict(v <= target, v/target) }
