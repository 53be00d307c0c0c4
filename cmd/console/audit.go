package main

import (
	"bytes"
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
)

// The Audit page reads the trail with the user's token, as kubectl would:
// an auditor (kubepim-auditor: list auditevents) sees it, anyone else gets
// the API server's refusal. The download is internal/audit's export (the
// same code as the manager's /audit endpoint and `manager audit export`),
// run as the user.

// auditShown is how many matching events the page lists (newest first);
// the download has them all.
const auditShown = 100

// auditActions are the actions the filter offers.
var auditActions = []string{
	pimv1.AuditActivationRequested, pimv1.AuditApproved, pimv1.AuditDenied, pimv1.AuditTimedOut, pimv1.AuditActivated,
	pimv1.AuditExpired, pimv1.AuditDeactivated, pimv1.AuditCancelled, pimv1.AuditExtended, pimv1.AuditFailed,
	pimv1.AuditAssignmentCreated, pimv1.AuditAssignmentChanged, pimv1.AuditAssignmentRemoved, pimv1.AuditAssignmentActivated,
	pimv1.AuditAssignmentExpired, pimv1.AuditReviewCreated, pimv1.AuditReviewChanged, pimv1.AuditReviewDecision,
	pimv1.AuditReviewApplied, pimv1.AuditSettingChanged, pimv1.AuditAlertRaised, pimv1.AuditBindingRepaired,
	pimv1.AuditOutsideBindingRemoved, pimv1.AuditMFAFailed,
}

// auditView is the Audit page.
type auditView struct {
	// The filter as typed.
	Since, Until, User, Role, Action string
	Actions                          []string
	Events                           []*pimv1.AuditEvent
	// Matched counts every matching event; Total every event read.
	Matched, Total int
	Chain          audit.Report
	// ChainNote says why the chain was verified without the anchor.
	ChainNote string
	// CSV and JSON are the downloads' links, with the filter.
	CSV, JSON string
	// Days are the days read (a time range), "" when the whole trail was.
	Days string
}

// auditFilter reads the filter from the query; times are the form's
// (UTC) or RFC 3339.
func auditFilter(q url.Values) (audit.Filter, auditView, error) {
	v := auditView{Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until")),
		User: strings.TrimSpace(q.Get("user")), Role: strings.TrimSpace(q.Get("role")), Action: strings.TrimSpace(q.Get("action")), Actions: auditActions}
	f := audit.Filter{User: v.User, Role: v.Role, Action: v.Action}
	for _, t := range []struct {
		name, value string
		into        *time.Time
	}{{"From", v.Since, &f.Since}, {"Until", v.Until, &f.Until}} {
		if t.value == "" {
			continue
		}
		at, err := parseStart(t.value)
		if err != nil {
			if at, err = time.Parse(time.RFC3339, t.value); err != nil {
				return f, v, errors.New(t.name + ": give a date and time (UTC), for example 2026-11-24T00:00")
			}
		}
		*t.into = at
	}
	p := url.Values{}
	for k, val := range map[string]string{"since": v.Since, "until": v.Until, "user": v.User, "role": v.Role, "action": v.Action} {
		if val != "" {
			p.Set(k, val)
		}
	}
	for _, d := range []struct {
		format string
		into   *string
	}{{"csv", &v.CSV}, {"json", &v.JSON}} {
		p.Set("format", d.format)
		*d.into = "/audit/export?" + p.Encode()
	}
	return f, v, nil
}

// auditRefused is what a user who may not read the trail is shown.
func (s *Server) auditRefused(q *request, err error) {
	if apierrors.IsForbidden(err) {
		q.page(s, http.StatusForbidden, "error", page{Title: "Audit", Nav: "audit",
			Error: "You may not read kubepim's audit trail: it is for auditors (the kubepim-auditor role). The Kubernetes API server said: " + err.Error()})
		return
	}
	s.apiError(q, err)
}

// auditPage lists the events that match the filter, newest first, and
// verifies the chain, in one paged read of the trail.
func (s *Server) auditPage(q *request) {
	ctx := q.r.Context()
	f, v, err := auditFilter(q.r.URL.Query())
	if err != nil {
		q.page(s, http.StatusBadRequest, "audit", page{Title: "Audit", Nav: "audit", Error: err.Error(), Data: v})
		return
	}
	// The anchor is a ConfigMap in kubepim's namespace, which auditors may
	// not usually read: then the chain is verified from its oldest
	// retained event, and the page says so.
	var chain *audit.Chain
	anchor, err := audit.ReadAnchor(ctx, q.c, s.opts.Namespace)
	switch {
	case err == nil:
		chain = audit.NewChain(anchor)
	case apierrors.IsForbidden(err):
		chain = audit.NewChainFromOldest()
		v.ChainNote = "You may not read the chain's anchor (ConfigMap " + audit.AnchorName + " in " + s.opts.Namespace +
			"), so the chain was verified from its oldest retained event: a removal of the oldest events would look like pruning."
	default:
		s.apiError(q, err)
		return
	}
	// A time range reads only its days' events (the kubepim.io/day label,
	// selected by the API server), when every event is labelled; the
	// chain is then verified over those events.
	sel, days, err := audit.RangeSelector(ctx, q.c, f.Since, f.Until, s.opts.Clock.Now())
	if err != nil {
		s.auditRefused(q, err)
		return
	}
	if sel != nil {
		chain = audit.NewSegment()
		v.Days = days
		v.ChainNote = "The chain was verified over the events of the days asked for (" + days + "): edits, insertions and removals among them are found; the links before the range are not read (the whole trail is, without From)."
	}
	byNewest := func(a, b *pimv1.AuditEvent) int { return cmp.Compare(b.Spec.Sequence, a.Spec.Sequence) }
	var opts []client.ListOption
	if sel != nil {
		opts = append(opts, sel)
	}
	err = audit.EachWhere(ctx, q.c, func(ev *pimv1.AuditEvent) error {
		v.Total++
		chain.Add(ev)
		if f.Matches(ev) {
			v.Matched++
			v.Events = append(v.Events, ev)
			// Keep only the newest: memory stays bounded however long the
			// trail.
			if len(v.Events) >= 2*auditShown {
				slices.SortFunc(v.Events, byNewest)
				v.Events = slices.Clip(v.Events[:auditShown])
			}
		}
		return nil
	}, opts...)
	if err != nil {
		s.auditRefused(q, err)
		return
	}
	slices.SortFunc(v.Events, byNewest)
	if len(v.Events) > auditShown {
		v.Events = v.Events[:auditShown]
	}
	v.Chain = chain.Report()
	q.page(s, http.StatusOK, "audit", page{Title: "Audit", Nav: "audit", Data: v})
}

// auditExport downloads the matching events as CSV or JSON lines, with
// internal/audit's export run as the user.
func (s *Server) auditExport(q *request) {
	f, _, err := auditFilter(q.r.URL.Query())
	if err != nil {
		q.page(s, http.StatusBadRequest, "error", page{Title: "Audit", Nav: "audit", Error: err.Error()})
		return
	}
	format := q.r.URL.Query().Get("format")
	contentType := map[string]string{"csv": "text/csv; charset=utf-8", "json": "application/x-ndjson"}[format]
	if contentType == "" {
		q.page(s, http.StatusBadRequest, "error", page{Title: "Audit", Nav: "audit", Error: "format must be csv or json"})
		return
	}
	// Whole before a byte is sent, so that a refusal is a page, not a
	// truncated file.
	var buf bytes.Buffer
	if err := audit.Export(q.r.Context(), q.c, f, s.opts.Clock.Now(), format, &buf); err != nil {
		s.auditRefused(q, err)
		return
	}
	ext := format
	if format == "json" {
		ext = "jsonl"
	}
	h := q.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `attachment; filename="kubepim-audit-`+s.opts.Clock.Now().UTC().Format("20060102T150405Z")+"."+ext+`"`)
	_, _ = q.w.Write(buf.Bytes())
}
