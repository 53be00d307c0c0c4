package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz/rules"
)

// The decision of kubepim's authorizer (--access-mode=authorizer): the API
// server asks, for each request that RBAC did not allow, whether kubepim
// allows it, and kubepim answers from what it knows at that instant.

// RoleID names one Role (Kind Role, with its namespace) or ClusterRole.
type RoleID struct {
	Kind, Namespace, Name string
}

// RoleOf is the role a grant of roleRef in namespace uses: a Role lives in
// that namespace; a ClusterRole has none.
func RoleOf(roleRef pimv1.RoleRef, namespace string) RoleID {
	if roleRef.Kind == pimv1.RoleKindRole {
		return RoleID{Kind: roleRef.Kind, Namespace: namespace, Name: roleRef.Name}
	}
	return RoleID{Kind: roleRef.Kind, Name: roleRef.Name}
}

// AccessInput is everything one authorization decision is computed from,
// read at one instant.
type AccessInput struct {
	Now time.Time
	// User is who asks, as the API server authenticated them (with their
	// groups now).
	User pimv1.UserInfo
	// Attributes are what they ask to do.
	Attributes rules.Attributes
	// Activations are the user's ActivationRequests (any state).
	Activations []pimv1.ActivationRequest
	// Assignments are the RoleAssignments of the roles those requests are
	// for (any subject), and the user's own (for the hint).
	Assignments []pimv1.RoleAssignment
	// Settings are the RoleSettings of those roles.
	Settings []pimv1.RoleSetting
	// Rules are the rules of those roles as stored (an aggregated
	// ClusterRole's as aggregated); a role missing here does not exist and
	// grants nothing.
	Rules map[RoleID][]rbacv1.PolicyRule
}

// AccessDecision is the authorizer's answer.
type AccessDecision struct {
	// Allowed is true when an activation in force allows the request.
	Allowed bool
	// Activation names the request that allows it.
	Activation string
	// Eligibility names the Eligible RoleAssignment that activation relies
	// on now (what its "last used" is recorded on).
	Eligibility string
	// Reason says why, in words the user reads in a 403 (or the API
	// server's audit log for an allowed request): what to activate, or why
	// an activation that would allow it does not count now. Empty when
	// kubepim has nothing to say.
	Reason string
}

// MaxAccessReason bounds the reason: it ends up in the message of a 403.
const MaxAccessReason = 1024

// maxHints is how many roles a denial suggests.
const maxHints = 3

// DecideAccess is the authorizer's decision: allowed iff the user has an
// ActivationRequest in force now (ActivationInForce) whose role's rules
// allow these attributes in its scope — the namespace of a namespaced
// grant, everywhere for a cluster-wide one — exactly as a binding would;
// for a reduced-scope request, its permissions must allow them too
// (ScopeAllows).
// Denied, the reason names the roles the user is eligible for that would
// allow it, with the command that activates one.
func DecideAccess(in AccessInput) AccessDecision {
	var suspended []string
	for i := range in.Activations {
		ar := &in.Activations[i]
		if ar.Spec.Requester == nil || ar.Spec.Requester.Username != in.User.Username {
			continue
		}
		rs, ok := in.Rules[RoleOf(ar.Spec.RoleRef, ar.Spec.Namespace)]
		if !ok || !ScopeAllows(ar, rs, in.Attributes) {
			continue
		}
		if err := ActivationInForce(ar, in.Now, in.Assignments, in.Settings); err != nil {
			if !errors.Is(err, errNotInForce) {
				suspended = append(suspended, fmt.Sprintf("ActivationRequest %s would allow this but does not count now: %s", ar.Name, err))
			}
			continue
		}
		eligibility := ""
		instant := Window{Start: in.Now, End: &in.Now}
		if ra, err := EligibilityFor(*ar.Spec.Requester, ar.Spec.RoleRef, ar.Spec.Namespace, instant, in.Now, in.Assignments); err == nil && ra != nil {
			eligibility = ra.Name
		}
		return AccessDecision{Allowed: true, Activation: ar.Name, Eligibility: eligibility, Reason: Truncate(fmt.Sprintf("kubepim: allowed by ActivationRequest %s (%s) until %s",
			ar.Name, RoleDescription(ar.Spec.RoleRef, ar.Spec.Namespace), ar.Status.ExpiresAt.UTC().Format(time.RFC3339)), MaxAccessReason)}
	}
	reasons := suspended
	if hint := activationHint(in); hint != "" {
		reasons = append(reasons, hint)
	}
	if len(reasons) == 0 {
		return AccessDecision{}
	}
	// No "kubepim:" in front: the API server puts the authorizer's name
	// (config/authorizer names it kubepim) before the reason of an
	// authorizer that had no opinion.
	return AccessDecision{Reason: Truncate(strings.Join(reasons, "; "), MaxAccessReason)}
}

// errNotInForce: the request is not (or no longer, or not yet) active;
// nothing to explain.
var errNotInForce = errors.New("not in force")

// ActivationInForce returns nil when ar grants its role now: it is Active
// (or Scheduled with its start reached: the grant begins at activatedAt to
// the second, not when the controller's pass comes), now is in
// [activatedAt, expiresAt), nobody deactivated, cancelled or deleted it,
// the eligibility it relied on still holds (for the requester as admitted,
// as the controller judges it) and its role is not governed by conflicting
// RoleSettings. Otherwise it says why not: errNotInForce when the request
// simply is not active.
//
// Everything read here is written by kubepim's manager (status) or
// stamped by its webhooks (requester, the deactivation), so a user cannot
// lengthen an activation by editing the request; see
// docs/threat-model.md.
func ActivationInForce(ar *pimv1.ActivationRequest, now time.Time, assignments []pimv1.RoleAssignment, settings []pimv1.RoleSetting) error {
	switch {
	case ar.Spec.Requester == nil || ar.Spec.Requester.Username == "":
		return errNotInForce
	case ar.Status.State != pimv1.ActivationStateActive && ar.Status.State != pimv1.ActivationStateScheduled:
		return errNotInForce
	case ar.Status.ActivatedAt == nil || ar.Status.ExpiresAt == nil:
		return errNotInForce
	case !ar.DeletionTimestamp.IsZero():
		return errNotInForce
	}
	if phase, _ := (Window{Start: ar.Status.ActivatedAt.Time, End: &ar.Status.ExpiresAt.Time}).PhaseAt(now); phase != InForce {
		return errNotInForce
	}
	if _, ok := ar.Annotations[pimv1.AnnotationDeactivate]; ok {
		return errNotInForce
	}
	if _, ok := ar.Annotations[pimv1.AnnotationCancel]; ok {
		return errNotInForce
	}
	if _, err := SettingFor(settings, ar.Spec.RoleRef, ar.Spec.Namespace); err != nil {
		return err
	}
	instant := Window{Start: now, End: &now}
	if _, err := EligibilityFor(*ar.Spec.Requester, ar.Spec.RoleRef, ar.Spec.Namespace, instant, now, assignments); err != nil {
		return fmt.Errorf("the eligibility it relied on has ended or was removed")
	}
	return nil
}

// activationHint names the roles the user is eligible for now whose
// activation would allow the request, and how to activate one.
func activationHint(in AccessInput) string {
	type hint struct{ role, text string }
	var hints []hint
	seen := map[string]bool{}
	for i := range in.Assignments {
		ra := &in.Assignments[i]
		if ra.Spec.Type != pimv1.AssignmentEligible || !ra.DeletionTimestamp.IsZero() || !SubjectMatches(ra.Spec.Subject, in.User) {
			continue
		}
		if phase, _ := AssignmentWindow(ra).PhaseAt(in.Now); phase != InForce {
			continue
		}
		// The grant the request needs: the assignment's namespace, or for
		// a cluster-wide eligibility the request's own (cluster-wide for a
		// cluster-scoped request or a URL).
		ns := ra.Spec.Namespace
		if ns == "" && in.Attributes.ResourceRequest {
			ns = in.Attributes.Namespace
		}
		rs, ok := in.Rules[RoleOf(ra.Spec.RoleRef, ra.Spec.Namespace)]
		if !ok || !rules.GrantAllows(rs, ns, in.Attributes) {
			continue
		}
		key := ra.Spec.RoleRef.Kind + "/" + ra.Spec.RoleRef.Name + "/" + ns
		if seen[key] {
			continue
		}
		seen[key] = true
		hints = append(hints, hint{role: key, text: hintFor(in, ra.Spec.RoleRef, ns)})
	}
	if len(hints) == 0 {
		return ""
	}
	slices.SortFunc(hints, func(a, b hint) int { return strings.Compare(a.role, b.role) })
	texts := make([]string, 0, maxHints)
	for _, h := range hints[:min(len(hints), maxHints)] {
		texts = append(texts, h.text)
	}
	if len(hints) > maxHints {
		texts = append(texts, fmt.Sprintf("and %d more roles", len(hints)-maxHints))
	}
	return strings.Join(texts, "; ")
}

// hintFor is what to tell a user eligible for roleRef in namespace: the
// command that activates it, or where their open request for it stands.
func hintFor(in AccessInput, roleRef pimv1.RoleRef, namespace string) string {
	what := RoleDescription(roleRef, namespace)
	for i := range in.Activations {
		ar := &in.Activations[i]
		if ar.Spec.RoleRef == roleRef && ar.Spec.Namespace == namespace && !IsFinal(ar.Status.State) && ar.DeletionTimestamp.IsZero() &&
			ar.Status.State != pimv1.ActivationStateActive &&
			// A reduced scope that would not allow it is not the way.
			(!IsReduced(ar) || rules.GrantAllows(PermissionRules(ar.Spec.Permissions), namespace, in.Attributes)) {
			return fmt.Sprintf("your ActivationRequest %s for %s, which allows this, is %s", ar.Name, what, stateOrPending(ar.Status.State))
		}
	}
	return fmt.Sprintf("you are eligible for %s, which allows this; activate it with: %s", what, ActivateCommand(roleRef, namespace))
}

// ActivateCommand is the kubectl plugin's command that activates roleRef
// in namespace ("" for cluster-wide).
func ActivateCommand(roleRef pimv1.RoleRef, namespace string) string {
	cmd := "kubectl pim activate " + roleRef.Name
	if roleRef.Kind == pimv1.RoleKindRole {
		cmd += " --kind Role"
	}
	if namespace != "" {
		cmd += " -n " + namespace
	}
	return cmd + ` --reason "..."`
}
