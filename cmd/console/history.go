package main

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kubepim/kubepim/internal/audit"
)

// Access history answers what an incident responder asks first: who held
// this role (or could act in this namespace with it) between these times?
// It reads the audit trail as the user (an auditor), builds the grant
// intervals with internal/audit (Intervals, Who: the code behind `kubectl
// pim audit who`), and draws them as an SVG timeline on the server: one
// row per person, each bar a link to its request. No script, no chart
// library.

// Timeline geometry, in the SVG's own units (it scales to the page).
const (
	tlWidth  = 1000
	tlLabel  = 230 // the names' column
	tlRight  = 990
	tlTop    = 34 // the time axis above the rows
	tlRow    = 30
	tlBar    = 18
	tlTicks  = 4
	tlMaxRun = 500 // rows drawn at most; the table lists everything
)

// historyView is the Access history page.
type historyView struct {
	// The question as typed.
	Role, Namespace, From, Until string
	// Asked is set once a role was given.
	Asked  bool
	Held   []heldRow
	People int
	Chart  *timeline
	// CLI is the same question for kubectl pim.
	CLI string
}

// heldRow is one grant in the table, with its bar's anchor.
type heldRow struct {
	audit.Held
	ID, Who, Link string
}

type timeline struct {
	Width, Height, Label, Right int
	Ticks                       []tick
	Rows                        []laneRow
	// At marks the instant asked about, when From equals Until.
	At    *tick
	Drawn int
}

type tick struct {
	X    float64
	Text string
	// Anchor keeps the first and last labels inside the picture.
	Anchor string
}

type laneRow struct {
	Who        string
	Y, TextY   int
	Bars       []bar
	LineY      int
	LineFromTo [2]int
}

type bar struct {
	ID, Link, Class, Title string
	X, Y, W, H             float64
}

// historyLink is where a bar leads: an activation's request page; an
// assignment's trail.
func historyLink(h audit.Held) string {
	if h.Target.Kind == "ActivationRequest" {
		return "/requests/" + url.PathEscape(h.Target.Name)
	}
	p := url.Values{"role": {h.RoleRef.Name}}
	if h.Subject.Kind != "Group" {
		p.Set("user", h.Subject.Name)
	}
	return "/audit?" + p.Encode()
}

// historyQuery reads the question; without times, the last 24 hours.
func historyQuery(q url.Values, now time.Time) (audit.WhoQuery, historyView, error) {
	v := historyView{Role: strings.TrimSpace(q.Get("role")), Namespace: strings.TrimSpace(q.Get("namespace")),
		From: strings.TrimSpace(q.Get("from")), Until: strings.TrimSpace(q.Get("until"))}
	w := audit.WhoQuery{Role: v.Role, Namespace: v.Namespace, From: now.Add(-24 * time.Hour), To: now}
	for _, t := range []struct {
		name, value string
		into        *time.Time
	}{{"From", v.From, &w.From}, {"Until", v.Until, &w.To}} {
		if t.value == "" {
			continue
		}
		at, err := parseStart(t.value)
		if err != nil {
			if at, err = time.Parse(time.RFC3339, t.value); err != nil {
				return w, v, errors.New(t.name + ": give a date and time (UTC), for example 2026-11-24T00:00")
			}
		}
		*t.into = at.UTC()
	}
	if v.From == "" {
		v.From = w.From.UTC().Format("2006-01-02T15:04:05")
	}
	if v.Until == "" {
		v.Until = w.To.UTC().Format("2006-01-02T15:04:05")
	}
	if w.To.Before(w.From) {
		return w, v, errors.New("Until is before From")
	}
	v.Asked = v.Role != ""
	cli := "kubectl pim audit who --role " + v.Role
	if v.Namespace != "" {
		cli += " --namespace " + v.Namespace
	}
	if w.From.Equal(w.To) {
		cli += " --at " + w.From.UTC().Format(time.RFC3339)
	} else {
		cli += " --from " + w.From.UTC().Format(time.RFC3339) + " --to " + w.To.UTC().Format(time.RFC3339)
	}
	v.CLI = cli
	return w, v, nil
}

func (s *Server) historyPage(q *request) {
	w, v, err := historyQuery(q.r.URL.Query(), s.opts.Clock.Now())
	p := page{Title: "Access history", Nav: "history", Data: &v}
	if err != nil {
		p.Error = err.Error()
		q.page(s, http.StatusBadRequest, "history", p)
		return
	}
	if !v.Asked {
		q.page(s, http.StatusOK, "history", p)
		return
	}
	held, err := audit.History(q.r.Context(), q.c, w.Role)
	if err != nil {
		s.auditRefused(q, err)
		return
	}
	people := map[string]bool{}
	for i, h := range audit.Who(held, w) {
		who := audit.SubjectString(h.Subject)
		people[who] = true
		v.Held = append(v.Held, heldRow{Held: h, ID: "held-" + strconv.Itoa(i), Who: who, Link: historyLink(h)})
	}
	v.People = len(people)
	v.Chart = drawTimeline(v.Held, w.From, w.To, s.opts.Clock.Now())
	q.page(s, http.StatusOK, "history", p)
}

// drawTimeline lays the grants out: one row per person, in the order
// given (Who sorts by subject, then start); bars clipped to the window.
func drawTimeline(rows []heldRow, from, to, now time.Time) *timeline {
	if len(rows) == 0 {
		return nil
	}
	t := &timeline{Width: tlWidth, Label: tlLabel, Right: tlRight}
	start, end := from, to
	if !end.After(start) {
		// One instant: an hour either side, and a mark at the instant.
		start, end = from.Add(-time.Hour), to.Add(time.Hour)
	}
	span := end.Sub(start).Seconds()
	x := func(at time.Time) float64 {
		f := at.Sub(start).Seconds() / span
		f = min(max(f, 0), 1)
		return float64(tlLabel) + f*float64(tlRight-tlLabel)
	}
	if from.Equal(to) {
		t.At = &tick{X: x(from), Text: from.UTC().Format("2006-01-02 15:04:05 UTC")}
	}
	layout := "2006-01-02 15:04"
	// Labels as precise as the window needs.
	switch span := end.Sub(start); {
	case span <= 2*time.Hour:
		layout = "15:04:05"
	case span <= 48*time.Hour:
		layout = "01-02 15:04"
	case span > 60*24*time.Hour:
		layout = "2006-01-02"
	}
	for i := 0; i <= tlTicks; i++ {
		at := start.Add(time.Duration(float64(end.Sub(start)) * float64(i) / tlTicks))
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case tlTicks:
			anchor = "end"
		}
		t.Ticks = append(t.Ticks, tick{X: x(at), Text: at.UTC().Format(layout), Anchor: anchor})
	}
	layout = "2006-01-02 15:04:05"
	index := map[string]int{}
	for _, r := range rows {
		i, ok := index[r.Who]
		if !ok {
			if len(t.Rows) >= tlMaxRun {
				continue
			}
			y := tlTop + len(t.Rows)*tlRow
			t.Rows = append(t.Rows, laneRow{Who: r.Who, Y: y, TextY: y + tlRow/2 + 5, LineY: y + tlRow/2})
			i = len(t.Rows) - 1
			index[r.Who] = i
		}
		row := &t.Rows[i]
		until, class := r.Until, "bar "+strings.ToLower(r.Via)
		switch {
		case until.IsZero():
			until, class = end, class+" open"
		case !r.Ended && until.After(now):
			class += " open"
		case !r.Ended:
			class += " due"
		}
		x0, x1 := x(r.From), x(until)
		title := r.Who + " · " + r.Via + " · " + scope(r.Namespace) + " · " + r.From.UTC().Format(layout) + " – "
		if r.Until.IsZero() {
			title += "no end"
		} else {
			title += r.Until.UTC().Format(layout)
		}
		if r.Justification != "" {
			title += " · " + r.Justification
		}
		row.Bars = append(row.Bars, bar{ID: "bar-" + r.ID, Link: r.Link, Class: class, Title: title,
			X: x0, Y: float64(row.Y + (tlRow-tlBar)/2), W: max(x1-x0, 3), H: tlBar})
		t.Drawn++
	}
	t.Height = tlTop + len(t.Rows)*tlRow + 6
	return t
}
