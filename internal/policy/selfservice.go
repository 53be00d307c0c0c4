package policy

import (
	"regexp"
	"slices"
	"strings"
	"time"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// What the front ends people use (the kubectl plugin and the console) show
// and offer; they read the API as the user, so these take the full lists
// the user may read rather than the manager's indexes.

// SettingFor returns the policy that governs a grant of roleRef in
// namespace, picked from all RoleSettings as the webhooks pick it from
// their index (lookup.EffectiveSetting): the defaults when no setting
// names the role, an error when several do.
func SettingFor(settings []pimv1.RoleSetting, roleRef pimv1.RoleRef, namespace string) (pimv1.RoleSettingSpec, error) {
	want := SettingRoleRef(roleRef, namespace)
	var matching []pimv1.RoleSetting
	for _, rs := range settings {
		if rs.Spec.RoleRef == want {
			matching = append(matching, rs)
		}
	}
	spec, _, err := EffectiveSetting(RoleDescription(roleRef, namespace), matching)
	return spec, err
}

// AwaitsDecisionBy reports whether user may still decide on ar: it waits
// for approval, its policy names user (or one of user's groups) as an
// approver, user is not the requester, and has not decided yet. The
// webhook decides for real (CheckDecision); this says what to offer.
func AwaitsDecisionBy(ar *pimv1.ActivationRequest, p pimv1.ApprovalPolicy, user pimv1.UserInfo) bool {
	if ar.Status.State != pimv1.ActivationStatePendingApproval || !IsApprover(p, user) {
		return false
	}
	if ar.Spec.Requester != nil && ar.Spec.Requester.Username == user.Username {
		return false
	}
	return !slices.ContainsFunc(ar.Status.Approvals, func(a pimv1.ApprovalRecord) bool { return a.Approver.Username == user.Username })
}

// MFAClaimed reports whether a user's extra claim key carries one of the
// values that prove a second factor (the webhooks' --mfa-claim and
// --mfa-claim-values).
func MFAClaimed(extra map[string][]string, key string, values []string) bool {
	return slices.ContainsFunc(extra[key], func(v string) bool { return slices.Contains(values, v) })
}

// DefaultActivationDuration is how long an activation lasts when the user
// does not say: an hour, or the policy's maximum when that is shorter.
func DefaultActivationDuration(a pimv1.ActivationPolicy) time.Duration {
	if a.MaxDuration.Duration > 0 && a.MaxDuration.Duration < time.Hour {
		return a.MaxDuration.Duration
	}
	return time.Hour
}

var nameUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// RequestGenerateName is the generateName of a user's request for a
// role: "alice-pod-debugger-", then the API server's random suffix.
func RequestGenerateName(username, role string) string {
	return strings.Trim(nameUnsafe.ReplaceAllString(strings.ToLower(username+"-"+role), "-"), "-") + "-"
}
