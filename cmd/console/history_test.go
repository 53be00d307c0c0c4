package main

import (
	"net/url"
	"testing"
	"time"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
)

func TestDrawTimeline(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(10 * time.Hour)
	row := func(id, who string, start, end time.Time, ended bool) heldRow {
		return heldRow{ID: id, Who: who, Held: audit.Held{Via: audit.ViaActivation, From: start, Until: end, Ended: ended,
			Target: pimv1.AuditObjectReference{Kind: "ActivationRequest", Name: id}}}
	}
	tl := drawTimeline([]heldRow{
		row("a", "User alice", from.Add(-time.Hour), from.Add(5*time.Hour), true), // starts before the window
		row("b", "User alice", from.Add(8*time.Hour), time.Time{}, false),         // no end
		row("c", "User bob", from.Add(2*time.Hour), from.Add(3*time.Hour), false), // end not recorded, past
	}, from, to, to.Add(time.Hour))
	if len(tl.Rows) != 2 || len(tl.Rows[0].Bars) != 2 || tl.Drawn != 3 {
		t.Fatalf("rows = %+v", tl.Rows)
	}
	a, b, c := tl.Rows[0].Bars[0], tl.Rows[0].Bars[1], tl.Rows[1].Bars[0]
	width := float64(tlRight - tlLabel)
	if a.X != tlLabel || a.W != width/2 {
		t.Errorf("a clipped to the window's start: x %v w %v", a.X, a.W)
	}
	if b.X+b.W != tlRight || b.Class != "bar activation open" {
		t.Errorf("b runs to the window's end, open: %+v", b)
	}
	if c.Class != "bar activation due" {
		t.Errorf("c's end is only the due one: %+v", c)
	}
	if len(tl.Ticks) != tlTicks+1 || tl.At != nil {
		t.Errorf("ticks %v, at %v", tl.Ticks, tl.At)
	}
	if at := drawTimeline([]heldRow{row("a", "User alice", from, to, true)}, from.Add(time.Hour), from.Add(time.Hour), to); at.At == nil {
		t.Error("an instant is marked")
	}
	if drawTimeline(nil, from, to, to) != nil {
		t.Error("no grants, no chart")
	}
}

func TestHistoryQuery(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	q, v, err := historyQuery(url.Values{"role": {"admin"}, "namespace": {"prod"}}, now)
	if err != nil || !q.From.Equal(now.Add(-24*time.Hour)) || !q.To.Equal(now) || !v.Asked || q.Namespace != "prod" {
		t.Fatalf("defaults: %+v %+v %v", q, v, err)
	}
	if v.CLI != "kubectl pim audit who --role admin --namespace prod --from 2026-11-29T12:00:00Z --to 2026-11-30T12:00:00Z" {
		t.Errorf("CLI = %q", v.CLI)
	}
	q, v, _ = historyQuery(url.Values{"role": {"admin"}, "from": {"2026-11-30T10:00"}, "until": {"2026-11-30T10:00:00"}}, now)
	if !q.From.Equal(q.To) || v.CLI != "kubectl pim audit who --role admin --at 2026-11-30T10:00:00Z" {
		t.Errorf("an instant: %+v %q", q, v.CLI)
	}
	for _, bad := range []url.Values{{"from": {"yesterday"}}, {"from": {"2026-11-30T10:00"}, "until": {"2026-11-30T09:00"}}} {
		if _, _, err := historyQuery(bad, now); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
