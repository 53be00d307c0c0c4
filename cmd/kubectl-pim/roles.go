package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// roleRow is one line of "kubectl pim roles".
type roleRow struct {
	Role      string `json:"role"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Type      string `json:"type"`
	Via       string `json:"via"`
	State     string `json:"state"`
	Ends      string `json:"ends"`
	Requires  string `json:"requires"`
	Request   string `json:"request,omitempty"`
	// LastUsedAt is when kubepim's authorizer last allowed a request
	// through it (--access-mode=authorizer; RFC 3339), empty when unknown.
	LastUsedAt string `json:"lastUsedAt,omitempty"`
}

func (r roleRow) namespace() string { return r.Namespace }

func (p *pim) rolesCommand() *cobra.Command {
	return listCommand(p, list[roleRow]{
		use:    "roles",
		short:  "My eligible and active roles, and what activating each requires (--all: everyone's)",
		all:    "Show everyone's eligible and active roles, not only mine.",
		rows:   p.roleRows,
		header: "ROLE\tKIND\tNAMESPACE\tTYPE\tVIA\tSTATE\tENDS IN\tLAST USED\tACTIVATION REQUIRES",
		cells: func(r roleRow) []string {
			req := r.Requires
			if r.Request != "" {
				req = "request " + r.Request
			}
			return []string{r.Role, r.Kind, r.Namespace, r.Type, r.Via, p.paint(r.State), dash(r.Ends), ago(p.clock.Now(), r.LastUsedAt), dash(req)}
		},
		empty: func(scope listScope) string {
			if scope.all {
				return "No eligible or active roles."
			}
			return scope.me.Username + " has no eligible or active roles."
		},
	})
}

func (p *pim) roleRows(ctx context.Context, scope listScope) ([]roleRow, error) {
	var assignments pimv1.RoleAssignmentList
	if err := p.c.List(ctx, &assignments); err != nil {
		return nil, err
	}
	var settings pimv1.RoleSettingList
	if err := p.c.List(ctx, &settings); err != nil {
		return nil, err
	}
	var requests pimv1.ActivationRequestList
	if err := p.c.List(ctx, &requests); err != nil {
		return nil, err
	}
	now := p.clock.Now()
	var rows []roleRow
	for _, ra := range assignments.Items {
		if (!scope.all && !policy.SubjectMatches(ra.Spec.Subject, scope.me)) || ra.Status.State == pimv1.AssignmentStateExpired {
			continue
		}
		row := roleRow{Role: ra.Spec.RoleRef.Name, Kind: ra.Spec.RoleRef.Kind, Namespace: orAll(ra.Spec.Namespace),
			Type: ra.Spec.Type, Via: ra.Spec.Subject.Kind + " " + ra.Spec.Subject.Name, State: string(ra.Status.State), Ends: "never"}
		if ra.Spec.EndTime != nil {
			row.Ends = left(now, ra.Spec.EndTime.Time)
		}
		if ra.Status.LastUsedAt != nil {
			row.LastUsedAt = ra.Status.LastUsedAt.UTC().Format(time.RFC3339)
		}
		if ra.Spec.Type == pimv1.AssignmentEligible {
			row.Requires = requirements(policy.SettingFor(settings.Items, ra.Spec.RoleRef, ra.Spec.Namespace))
		}
		rows = append(rows, row)
	}
	for _, ar := range requests.Items {
		if ar.Spec.Requester == nil || (!scope.all && ar.Spec.Requester.Username != scope.me.Username) || policy.IsFinal(ar.Status.State) {
			continue
		}
		row := roleRow{Role: ar.Spec.RoleRef.Name, Kind: ar.Spec.RoleRef.Kind, Namespace: orAll(ar.Spec.Namespace),
			Type: "Activation", Via: "User " + ar.Spec.Requester.Username, State: string(ar.Status.State), Request: ar.Name}
		if ar.Status.ExpiresAt != nil {
			row.Ends = left(now, ar.Status.ExpiresAt.Time)
		}
		if ar.Status.LastUsedAt != nil {
			row.LastUsedAt = ar.Status.LastUsedAt.UTC().Format(time.RFC3339)
		}
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		return rows[i].Role+rows[i].Namespace+rows[i].Type+rows[i].Via < rows[j].Role+rows[j].Namespace+rows[j].Type+rows[j].Via
	})
	return rows, nil
}

// requirements says in a few words what activating takes.
func requirements(spec pimv1.RoleSettingSpec, err error) string {
	if err != nil {
		return "blocked: conflicting RoleSettings"
	}
	a := spec.Activation
	parts := []string{"max " + shortDuration(a.MaxDuration.Duration)}
	if a.JustificationRequired() {
		parts = append(parts, "justification")
	}
	if a.RequireTicket {
		parts = append(parts, "ticket")
	}
	if a.RequireMFA {
		parts = append(parts, "MFA")
	}
	if a.Approval.Required {
		parts = append(parts, fmt.Sprintf("%d approval(s)", max(a.Approval.RequiredApprovals, 1)))
	}
	return strings.Join(parts, ", ")
}

// shortDuration writes 4h, 30m, 1h30m rather than 4h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ago says how long ago an RFC 3339 time was ("12m ago", "3d ago"), "-"
// when there is none.
func ago(now time.Time, rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
	return shortDuration(d.Truncate(time.Minute)) + " ago"
}

func orAll(ns string) string {
	if ns == "" {
		return "(cluster)"
	}
	return ns
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
