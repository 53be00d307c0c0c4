package webhooks

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;roles,verbs=get

// maxPermissionChecks bounds the access reviews spent proving that someone
// holds every permission of a role; past it, only the bind verb will do.
const maxPermissionChecks = 256

// allRules is what a role grants that kubepim cannot pin down: one that
// does not exist yet (it could be created with any rules), or an
// aggregated ClusterRole (its rules change as other roles appear).
var allRules = []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}

func roleResource(roleRef pimv1.RoleRef) string {
	if roleRef.Kind == pimv1.RoleKindRole {
		return "roles"
	}
	return "clusterroles"
}

// mayGrant applies Kubernetes' own escalation rule to kubepim: user may
// have kubepim grant roleRef in namespace ("" for cluster-wide) only if
// user may bind that role there, or already holds every permission it
// grants there. An error means an API call failed.
func (h handlerBase) mayGrant(ctx context.Context, user *pimv1.UserInfo, roleRef pimv1.RoleRef, namespace string) (bool, error) {
	ok, err := h.allowed(ctx, user, authz.Attributes{Resource: &authorizationv1.ResourceAttributes{
		Group: rbacv1.GroupName, Resource: roleResource(roleRef), Verb: "bind", Name: roleRef.Name, Namespace: namespace,
	}})
	if err != nil || ok {
		return ok, err
	}
	rules, aggregated, err := lookup.RoleRules(ctx, h.direct, roleRef.Kind, roleRef.Name, namespace)
	switch {
	case apierrors.IsNotFound(err), err == nil && aggregated:
		rules = allRules
	case err != nil:
		return false, err
	}
	checks := 0
	for _, rule := range rules {
		for _, verb := range rule.Verbs {
			for _, url := range rule.NonResourceURLs {
				if checks++; checks > maxPermissionChecks {
					return false, nil
				}
				if ok, err := h.allowed(ctx, user, authz.Attributes{NonResource: &authorizationv1.NonResourceAttributes{Path: url, Verb: verb}}); err != nil || !ok {
					return false, err
				}
			}
			for _, group := range rule.APIGroups {
				for _, res := range rule.Resources {
					names := rule.ResourceNames
					if len(names) == 0 {
						names = []string{""}
					}
					for _, name := range names {
						if checks++; checks > maxPermissionChecks {
							return false, nil
						}
						ok, err := h.allowed(ctx, user, authz.Attributes{Resource: &authorizationv1.ResourceAttributes{
							Group: group, Resource: res, Verb: verb, Name: name, Namespace: namespace,
						}})
						if err != nil || !ok {
							return false, err
						}
					}
				}
			}
		}
	}
	return true, nil
}

// grantRefusal says why user may not have kubepim grant roleRef.
func grantRefusal(user *pimv1.UserInfo, roleRef pimv1.RoleRef, namespace string) string {
	return fmt.Sprintf("%s may not grant %s through kubepim: they may neither bind it (verb \"bind\" on %s %q) nor do everything it allows themselves",
		user.Username, policy.RoleDescription(roleRef, namespace), roleResource(roleRef), roleRef.Name)
}
