package lookup

import (
	"context"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// EffectiveSetting returns the policy that governs roleRef in namespace and
// the name of the RoleSetting it comes from ("" for the defaults).
func EffectiveSetting(ctx context.Context, c client.Reader, roleRef pimv1.RoleRef, namespace string) (pimv1.RoleSettingSpec, string, error) {
	ref := policy.SettingRoleRef(roleRef, namespace)
	var list pimv1.RoleSettingList
	if err := c.List(ctx, &list, client.MatchingFields{RoleSettingByRole: SettingKey(ref)}); err != nil {
		return pimv1.RoleSettingSpec{}, "", err
	}
	return policy.EffectiveSetting(policy.RoleDescription(roleRef, namespace), list.Items)
}

// AssignmentsOf lists the RoleAssignments of a role, for any subject.
func AssignmentsOf(ctx context.Context, c client.Reader, roleRef pimv1.RoleRef) ([]pimv1.RoleAssignment, error) {
	var list pimv1.RoleAssignmentList
	if err := c.List(ctx, &list, client.MatchingFields{AssignmentByRole: RoleKey(roleRef)}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// OpenRequestsOf lists a requester's requests for a role and namespace that
// are not final.
func OpenRequestsOf(ctx context.Context, c client.Reader, username string, roleRef pimv1.RoleRef, namespace string) ([]pimv1.ActivationRequest, error) {
	var list pimv1.ActivationRequestList
	if err := c.List(ctx, &list, client.MatchingFields{ActivationByRequesterGrant: RequesterGrantKey(username, roleRef, namespace)}); err != nil {
		return nil, err
	}
	open := list.Items[:0]
	for _, ar := range list.Items {
		if !policy.IsFinal(ar.Status.State) && ar.DeletionTimestamp.IsZero() {
			open = append(open, ar)
		}
	}
	return open, nil
}

// RoleRules reads the rules of the Role name in namespace (kind Role) or of
// the ClusterRole name, from c: the manager's cache holds roles with their
// rules (the authorizer and the reduced-scope check read it); the
// admission webhooks pass a reader of the API server. aggregated reports a ClusterRole with an aggregation rule, whose
// rules change as other roles appear. A missing role is a NotFound error.
func RoleRules(ctx context.Context, c client.Reader, kind, name, namespace string) (rules []rbacv1.PolicyRule, aggregated bool, err error) {
	if kind == pimv1.RoleKindRole {
		role := &rbacv1.Role{}
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, role)
		return role.Rules, false, err
	}
	role := &rbacv1.ClusterRole{}
	err = c.Get(ctx, client.ObjectKey{Name: name}, role)
	return role.Rules, err == nil && role.AggregationRule != nil, err
}

// ActivationsOf lists the ActivationRequests of a requester (by username),
// in any state.
func ActivationsOf(ctx context.Context, c client.Reader, username string) ([]pimv1.ActivationRequest, error) {
	var list pimv1.ActivationRequestList
	if err := c.List(ctx, &list, client.MatchingFields{ActivationByRequester: username}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// AssignmentsFor lists the RoleAssignments whose subject is user: by name,
// by one of the user's groups, or as the ServiceAccount the user is.
func AssignmentsFor(ctx context.Context, c client.Reader, user pimv1.UserInfo) ([]pimv1.RoleAssignment, error) {
	keys := []string{SubjectKey(pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: user.Username})}
	if rest, ok := strings.CutPrefix(user.Username, "system:serviceaccount:"); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok {
			keys = append(keys, SubjectKey(pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Namespace: ns, Name: name}))
		}
	}
	for _, g := range user.Groups {
		keys = append(keys, SubjectKey(pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: g}))
	}
	var out []pimv1.RoleAssignment
	for _, key := range keys {
		var list pimv1.RoleAssignmentList
		if err := c.List(ctx, &list, client.MatchingFields{AssignmentBySubject: key}); err != nil {
			return nil, err
		}
		out = append(out, list.Items...)
	}
	return out, nil
}

// SettingsOf lists the RoleSettings that name the role a grant of roleRef
// in namespace uses (policy.SettingRoleRef).
func SettingsOf(ctx context.Context, c client.Reader, roleRef pimv1.RoleRef, namespace string) ([]pimv1.RoleSetting, error) {
	var list pimv1.RoleSettingList
	if err := c.List(ctx, &list, client.MatchingFields{RoleSettingByRole: SettingKey(policy.SettingRoleRef(roleRef, namespace))}); err != nil {
		return nil, err
	}
	return list.Items, nil
}
