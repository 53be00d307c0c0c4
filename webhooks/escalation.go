package webhooks

import (
	"context"
	"fmt"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;roles,verbs=get

// maxPermissionChecks bounds the access reviews spent proving that someone
// holds every permission of a role; past it, only the bind verb will do.
const maxPermissionChecks = 256

// access asks the API server questions about a user's RBAC.
type access struct{ client client.Client }

// allowed asks whether user may do what attrs say.
func (a access) allowed(ctx context.Context, user *pimv1.UserInfo, res *authorizationv1.ResourceAttributes, nonRes *authorizationv1.NonResourceAttributes) (bool, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = v
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		ResourceAttributes: res, NonResourceAttributes: nonRes,
	}}
	if err := a.client.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// mayGrant applies Kubernetes' own escalation rule to kubepim: user may
// have kubepim grant roleRef in namespace ("" for cluster-wide) only if
// user may bind that role there, or already holds every permission it
// grants there. It returns nil when allowed, or the refusal.
func (a access) mayGrant(ctx context.Context, user *pimv1.UserInfo, roleRef pimv1.RoleRef, namespace string) error {
	resource := "clusterroles"
	if roleRef.Kind == pimv1.RoleKindRole {
		resource = "roles"
	}
	ok, err := a.allowed(ctx, user, &authorizationv1.ResourceAttributes{
		Group: rbacv1.GroupName, Resource: resource, Verb: "bind", Name: roleRef.Name, Namespace: namespace,
	}, nil)
	if err != nil || ok {
		return err
	}
	rules, err := a.rulesOf(ctx, roleRef, namespace)
	if err != nil {
		return err
	}
	refused := &refusal{fmt.Errorf("%s may not grant %s through kubepim: they may neither bind it (verb \"bind\" on %s %q) nor do everything it allows themselves",
		user.Username, describeGrant(roleRef, namespace), resource, roleRef.Name)}
	checks := 0
	for _, rule := range rules {
		for _, verb := range rule.Verbs {
			for _, url := range rule.NonResourceURLs {
				if checks++; checks > maxPermissionChecks {
					return refused
				}
				if ok, err := a.allowed(ctx, user, nil, &authorizationv1.NonResourceAttributes{Path: url, Verb: verb}); err != nil || !ok {
					if err != nil {
						return err
					}
					return refused
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
							return refused
						}
						ok, err := a.allowed(ctx, user, &authorizationv1.ResourceAttributes{
							Group: group, Resource: res, Verb: verb, Name: name, Namespace: namespace,
						}, nil)
						if err != nil {
							return err
						}
						if !ok {
							return refused
						}
					}
				}
			}
		}
	}
	return nil
}

// rulesOf reads the rules of the role (an absent role grants nothing yet,
// but could be created later with any rules: treat it as unprovable).
func (a access) rulesOf(ctx context.Context, roleRef pimv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	if roleRef.Kind == pimv1.RoleKindRole {
		r := &rbacv1.Role{}
		if err := a.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: roleRef.Name}, r); err != nil {
			if apierrors.IsNotFound(err) {
				return []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}, nil
			}
			return nil, err
		}
		return r.Rules, nil
	}
	r := &rbacv1.ClusterRole{}
	if err := a.client.Get(ctx, client.ObjectKey{Name: roleRef.Name}, r); err != nil {
		if apierrors.IsNotFound(err) {
			return []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}, nil
		}
		return nil, err
	}
	if r.AggregationRule != nil {
		// Aggregated roles change as other roles appear; only bind proves it.
		return []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}, nil
	}
	return r.Rules, nil
}

func describeGrant(roleRef pimv1.RoleRef, namespace string) string {
	if namespace == "" {
		return roleRef.Kind + " " + roleRef.Name + " cluster-wide"
	}
	return roleRef.Kind + " " + roleRef.Name + " in namespace " + namespace
}
