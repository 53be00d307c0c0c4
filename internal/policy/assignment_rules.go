package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// CheckAssignment judges a RoleAssignment against its role's assignment
// policy, for an assigner who proved MFA or not. An assignment with no
// startTime starts at created (now for a new one). It returns every reason
// to refuse, joined.
func CheckAssignment(p pimv1.AssignmentPolicy, ra *pimv1.RoleAssignment, created time.Time, assignerMFA bool) error {
	role := RoleDescription(ra.Spec.RoleRef, ra.Spec.Namespace)
	allowPermanent, maxDuration := p.Eligible.PermanentAllowed(), p.Eligible.MaxDuration
	kind := "eligible"
	if ra.Spec.Type == pimv1.AssignmentActive {
		allowPermanent, maxDuration, kind = p.Active.PermanentAllowed(), p.Active.MaxDuration, "active"
	}
	var errs []error
	if ra.Spec.EndTime == nil && !allowPermanent {
		errs = append(errs, fmt.Errorf("%s assignments of %s cannot be permanent: set spec.endTime", kind, role))
	}
	if ra.Spec.EndTime != nil && maxDuration != nil {
		start := created
		if ra.Spec.StartTime != nil {
			start = ra.Spec.StartTime.Time
		}
		if d := ra.Spec.EndTime.Sub(start); d > maxDuration.Duration {
			errs = append(errs, fmt.Errorf("%s assignments of %s may last at most %s; this one lasts %s: move spec.endTime to %s or earlier",
				kind, role, maxDuration.Duration, d.Round(time.Second), start.Add(maxDuration.Duration).UTC().Format(time.RFC3339)))
		}
	}
	if ra.Spec.Type == pimv1.AssignmentActive {
		if p.Active.RequireJustification && strings.TrimSpace(ra.Spec.Justification) == "" {
			errs = append(errs, fmt.Errorf("active assignments of %s require a justification: set spec.justification", role))
		}
		if p.Active.RequireMFA && !assignerMFA {
			errs = append(errs, fmt.Errorf("active assignments of %s require the assigner to have signed in with multi-factor authentication", role))
		}
	}
	return errors.Join(errs...)
}

// Weakens lists how a new policy is weaker than the old one: longer or
// permanent grants, fewer requirements, less approval. Changing a policy
// that way needs the same power as granting the role.
func Weakens(old, updated pimv1.RoleSettingSpec) []string {
	var out []string
	oa, na := old.Activation, updated.Activation
	if na.MaxDuration.Duration > oa.MaxDuration.Duration {
		out = append(out, fmt.Sprintf("activation.maxDuration %s → %s", oa.MaxDuration.Duration, na.MaxDuration.Duration))
	}
	for _, b := range []struct {
		name     string
		old, new bool
	}{
		{"activation.requireJustification", oa.JustificationRequired(), na.JustificationRequired()},
		{"activation.requireTicket", oa.RequireTicket, na.RequireTicket},
		{"activation.requireMFA", oa.RequireMFA, na.RequireMFA},
		{"activation.approval.required", oa.Approval.Required, na.Approval.Required},
		{"assignment.active.requireJustification", old.Assignment.Active.RequireJustification, updated.Assignment.Active.RequireJustification},
		{"assignment.active.requireMFA", old.Assignment.Active.RequireMFA, updated.Assignment.Active.RequireMFA},
	} {
		if b.old && !b.new {
			out = append(out, b.name+" turned off")
		}
	}
	for _, b := range []struct {
		name     string
		old, new bool
	}{
		{"assignment.eligible.allowPermanent", old.Assignment.Eligible.PermanentAllowed(), updated.Assignment.Eligible.PermanentAllowed()},
		{"assignment.active.allowPermanent", old.Assignment.Active.PermanentAllowed(), updated.Assignment.Active.PermanentAllowed()},
	} {
		if !b.old && b.new {
			out = append(out, b.name+" turned on")
		}
	}
	if oa.Approval.Required && na.Approval.Required {
		if na.Approval.RequiredApprovals < oa.Approval.RequiredApprovals {
			out = append(out, fmt.Sprintf("activation.approval.requiredApprovals %d → %d", oa.Approval.RequiredApprovals, na.Approval.RequiredApprovals))
		}
		for _, a := range na.Approval.Approvers {
			if !containsPrincipal(oa.Approval.Approvers, a) {
				out = append(out, fmt.Sprintf("approver %s %s added", a.Kind, a.Name))
			}
		}
	}
	for _, b := range []struct {
		name     string
		old, new *time.Duration
	}{
		{"assignment.eligible.maxDuration", durationPtr(old.Assignment.Eligible.MaxDuration), durationPtr(updated.Assignment.Eligible.MaxDuration)},
		{"assignment.active.maxDuration", durationPtr(old.Assignment.Active.MaxDuration), durationPtr(updated.Assignment.Active.MaxDuration)},
		{"activation.idleTimeout", durationPtr(oa.IdleTimeout), durationPtr(na.IdleTimeout)},
	} {
		if b.old != nil && (b.new == nil || *b.new > *b.old) {
			out = append(out, b.name+" raised or removed")
		}
	}
	return out
}

func containsPrincipal(ps []pimv1.Principal, p pimv1.Principal) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

func durationPtr(d *metav1.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := d.Duration
	return &v
}
