package main

import (
	"context"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

type requestRow struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Namespace string `json:"namespace"`
	Requester string `json:"requester"`
	State     string `json:"state"`
	Duration  string `json:"duration"`
	Left      string `json:"left,omitempty"`
	Reason    string `json:"justification"`
	Message   string `json:"message"`
}

func (p *pim) requestsCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "requests",
		Short: "My activation requests (--all: everyone's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			me, err := p.whoami(ctx)
			if err != nil {
				return err
			}
			return p.listRequests(ctx, func(ar *pimv1.ActivationRequest) bool {
				return all || (ar.Spec.Requester != nil && ar.Spec.Requester.Username == me.Username)
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "Show everyone's requests.")
	return cmd
}

func (p *pim) approvalsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "approvals",
		Short: "Requests that wait for my approval",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			me, err := p.whoami(ctx)
			if err != nil {
				return err
			}
			var settings pimv1.RoleSettingList
			if err := p.c.List(ctx, &settings); err != nil {
				return err
			}
			return p.listRequests(ctx, func(ar *pimv1.ActivationRequest) bool {
				if ar.Status.State != pimv1.ActivationStatePendingApproval || (ar.Spec.Requester != nil && ar.Spec.Requester.Username == me.Username) {
					return false
				}
				spec, err := settingFor(settings.Items, ar.Spec.RoleRef, ar.Spec.Namespace)
				if err != nil || !policy.IsApprover(spec.Activation.Approval, me) {
					return false
				}
				for _, a := range ar.Status.Approvals {
					if a.Approver.Username == me.Username {
						return false
					}
				}
				return true
			}, client.MatchingFields{pimv1.FieldState: pimv1.ActivationStatePendingApproval})
		},
	}
}

func (p *pim) listRequests(ctx context.Context, keep func(*pimv1.ActivationRequest) bool, opts ...client.ListOption) error {
	var list pimv1.ActivationRequestList
	if err := p.c.List(ctx, &list, opts...); err != nil {
		return err
	}
	now := p.clock.Now()
	var rows []requestRow
	for i := range list.Items {
		ar := &list.Items[i]
		if !keep(ar) {
			continue
		}
		row := requestRow{Name: ar.Name, Role: ar.Spec.RoleRef.Kind + "/" + ar.Spec.RoleRef.Name, Namespace: orAll(ar.Spec.Namespace),
			Requester: requesterOf(ar), State: ar.Status.State, Duration: shortDuration(ar.Spec.Duration.Duration),
			Reason: ar.Spec.Justification, Message: ar.Status.Message}
		if ar.Status.State == pimv1.ActivationStateActive && ar.Status.ExpiresAt != nil {
			row.Left = left(now, ar.Status.ExpiresAt.Time)
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	if p.output != "" && p.output != "table" {
		return p.print(rows)
	}
	if len(rows) == 0 {
		p.say("No requests.")
		return nil
	}
	w := tabwriter.NewWriter(p.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tROLE\tNAMESPACE\tREQUESTER\tSTATE\tDURATION\tLEFT\tJUSTIFICATION")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Role, r.Namespace, r.Requester, p.paint(dash(r.State)), r.Duration, dash(r.Left), r.Reason)
	}
	return w.Flush()
}

func requesterOf(ar *pimv1.ActivationRequest) string {
	if ar.Spec.Requester == nil {
		return "-"
	}
	return ar.Spec.Requester.Username
}
