package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
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
}

func (p *pim) rolesCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "roles",
		Short: "My eligible and active roles, and what activating each requires",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			me, err := p.whoami(ctx)
			if err != nil {
				return err
			}
			var assignments pimv1.RoleAssignmentList
			if err := p.c.List(ctx, &assignments); err != nil {
				return err
			}
			var settings pimv1.RoleSettingList
			if err := p.c.List(ctx, &settings); err != nil {
				return err
			}
			var requests pimv1.ActivationRequestList
			if err := p.c.List(ctx, &requests); err != nil {
				return err
			}
			now := p.clock.Now()
			var rows []roleRow
			for _, ra := range assignments.Items {
				if !policy.SubjectMatches(ra.Spec.Subject, me) || ra.Status.State == pimv1.AssignmentStateExpired {
					continue
				}
				row := roleRow{Role: ra.Spec.RoleRef.Name, Kind: ra.Spec.RoleRef.Kind, Namespace: orAll(ra.Spec.Namespace),
					Type: ra.Spec.Type, Via: ra.Spec.Subject.Kind + " " + ra.Spec.Subject.Name, State: ra.Status.State, Ends: "never"}
				if ra.Spec.EndTime != nil {
					row.Ends = left(now, ra.Spec.EndTime.Time)
				}
				if ra.Spec.Type == pimv1.AssignmentEligible {
					row.Requires = requirements(settingFor(settings.Items, ra.Spec.RoleRef, ra.Spec.Namespace))
				}
				rows = append(rows, row)
			}
			for _, ar := range requests.Items {
				if ar.Spec.Requester == nil || ar.Spec.Requester.Username != me.Username || policy.IsFinal(ar.Status.State) {
					continue
				}
				row := roleRow{Role: ar.Spec.RoleRef.Name, Kind: ar.Spec.RoleRef.Kind, Namespace: orAll(ar.Spec.Namespace),
					Type: "Activation", Via: "User " + me.Username, State: ar.Status.State, Request: ar.Name}
				if ar.Status.ExpiresAt != nil {
					row.Ends = left(now, ar.Status.ExpiresAt.Time)
				}
				rows = append(rows, row)
			}
			sort.SliceStable(rows, func(i, j int) bool {
				return rows[i].Role+rows[i].Namespace+rows[i].Type < rows[j].Role+rows[j].Namespace+rows[j].Type
			})
			if p.output != "" && p.output != "table" {
				return p.print(rows)
			}
			if len(rows) == 0 {
				fmt.Fprintf(p.Out, "%s has no eligible or active roles.\n", me.Username)
				return nil
			}
			w := tabwriter.NewWriter(p.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ROLE\tKIND\tNAMESPACE\tTYPE\tVIA\tSTATE\tENDS IN\tACTIVATION REQUIRES")
			for _, r := range rows {
				req := r.Requires
				if r.Request != "" {
					req = "request " + r.Request
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Role, r.Kind, r.Namespace, r.Type, r.Via, p.paint(r.State), dash(r.Ends), dash(req))
			}
			return w.Flush()
		},
	}
}

// settingFor returns the policy governing a grant, as the webhook does.
func settingFor(settings []pimv1.RoleSetting, roleRef pimv1.RoleRef, namespace string) (pimv1.RoleSettingSpec, error) {
	want := policy.SettingRoleRef(roleRef, namespace)
	var matching []pimv1.RoleSetting
	for _, rs := range settings {
		if rs.Spec.RoleRef == want {
			matching = append(matching, rs)
		}
	}
	spec, _, err := policy.EffectiveSetting(policy.RoleDescription(roleRef, namespace), matching)
	return spec, err
}

// requirements says in a few words what activating takes.
func requirements(spec pimv1.RoleSettingSpec, err error) string {
	if err != nil {
		return "blocked: conflicting RoleSettings"
	}
	a := spec.Activation
	parts := []string{"max " + shortDuration(a.MaxDuration.Duration)}
	if a.RequireJustification {
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
