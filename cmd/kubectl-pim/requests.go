package main

import (
	"context"
	"sort"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

type requestRow struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Namespace string `json:"namespace"`
	// Scope is "role" for the whole role, else the reduced scope asked for.
	Scope     string `json:"scope"`
	Requester string `json:"requester"`
	State     string `json:"state"`
	Duration  string `json:"duration"`
	Left      string `json:"left,omitempty"`
	Reason    string `json:"justification"`
	Message   string `json:"message"`
}

func (r requestRow) namespace() string { return r.Namespace }

func (p *pim) requestsCommand() *cobra.Command {
	return listCommand(p, list[requestRow]{
		use:   "requests",
		short: "My activation requests (--all: everyone's)",
		all:   "Show everyone's requests, not only mine.",
		rows: func(ctx context.Context, scope listScope) ([]requestRow, error) {
			return p.requestRows(ctx, func(ar *pimv1.ActivationRequest) bool {
				return scope.all || (ar.Spec.Requester != nil && ar.Spec.Requester.Username == scope.me.Username)
			})
		},
		header: requestHeader, cells: p.requestCells,
		empty: func(listScope) string { return "No requests." },
	})
}

func (p *pim) approvalsCommand() *cobra.Command {
	return listCommand(p, list[requestRow]{
		use:   "approvals",
		short: "Requests that wait for my approval (--all: every request waiting for approval)",
		all:   "Show every request waiting for approval, not only those I may decide on.",
		rows: func(ctx context.Context, scope listScope) ([]requestRow, error) {
			me := scope.me
			var settings pimv1.RoleSettingList
			if err := p.c.List(ctx, &settings); err != nil {
				return nil, err
			}
			return p.requestRows(ctx, func(ar *pimv1.ActivationRequest) bool {
				if ar.Status.State != pimv1.ActivationStatePendingApproval {
					return false
				}
				if scope.all {
					return true
				}
				spec, err := policy.SettingFor(settings.Items, ar.Spec.RoleRef, ar.Spec.Namespace)
				return err == nil && policy.AwaitsDecisionBy(ar, spec.Activation.Approval, me)
			}, client.MatchingFields{pimv1.FieldState: string(pimv1.ActivationStatePendingApproval)})
		},
		header: requestHeader, cells: p.requestCells,
		empty: func(listScope) string { return "No requests." },
	})
}

const requestHeader = "NAME\tROLE\tNAMESPACE\tREQUESTER\tSTATE\tDURATION\tLEFT\tJUSTIFICATION\tSCOPE"

func (p *pim) requestCells(r requestRow) []string {
	return []string{r.Name, r.Role, r.Namespace, r.Requester, p.paint(dash(r.State)), r.Duration, dash(r.Left), r.Reason, r.Scope}
}

func (p *pim) requestRows(ctx context.Context, keep func(*pimv1.ActivationRequest) bool, opts ...client.ListOption) ([]requestRow, error) {
	var list pimv1.ActivationRequestList
	if err := p.c.List(ctx, &list, opts...); err != nil {
		return nil, err
	}
	now := p.clock.Now()
	var rows []requestRow
	for i := range list.Items {
		ar := &list.Items[i]
		if !keep(ar) {
			continue
		}
		row := requestRow{Name: ar.Name, Role: ar.Spec.RoleRef.Kind + "/" + ar.Spec.RoleRef.Name, Namespace: orAll(ar.Spec.Namespace),
			Scope: scopeOf(ar), Requester: requesterOf(ar), State: string(ar.Status.State), Duration: shortDuration(ar.Spec.Duration.Duration),
			Reason: ar.Spec.Justification, Message: ar.Status.Message}
		if ar.Status.State == pimv1.ActivationStateActive && ar.Status.ExpiresAt != nil {
			row.Left = left(now, ar.Status.ExpiresAt.Time)
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows, nil
}

// scopeOf is what a request grants of its role: "role" (all of it) or
// its reduced scope.
func scopeOf(ar *pimv1.ActivationRequest) string {
	if !policy.IsReduced(ar) {
		return "role"
	}
	return "reduced: " + policy.ScopeSummary(ar.Spec.Permissions)
}

func requesterOf(ar *pimv1.ActivationRequest) string {
	if ar.Spec.Requester == nil {
		return "-"
	}
	return ar.Spec.Requester.Username
}
