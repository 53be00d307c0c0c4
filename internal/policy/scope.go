package policy

import (
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	rbacvalidation "k8s.io/component-helpers/auth/rbac/validation"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz/rules"
)

// Reduced scope (issue #19): an ActivationRequest's spec.permissions
// narrows it to a subset of its role. The subset must be covered by the
// role's rules when the request is made (admission), and it is granted
// only while the role's current rules still cover it (the controller, at
// each pass; the authorizer, at each request, also requires the role's
// own rules to allow the request).

// maxUncoveredShown bounds how many uncovered permissions a refusal lists.
const maxUncoveredShown = 5

// IsReduced reports whether ar asks for a subset of its role.
func IsReduced(ar *pimv1.ActivationRequest) bool { return len(ar.Spec.Permissions) > 0 }

// PermissionRules converts a request's permissions to RBAC rules, as the
// role kubepim generates for it holds them (and as the authorizer
// evaluates them).
func PermissionRules(ps []pimv1.PermissionRule) []rbacv1.PolicyRule {
	if len(ps) == 0 {
		return nil
	}
	out := make([]rbacv1.PolicyRule, 0, len(ps))
	for _, p := range ps {
		out = append(out, rbacv1.PolicyRule{
			Verbs:           clone(p.Verbs),
			APIGroups:       clone(p.APIGroups),
			Resources:       clone(p.Resources),
			ResourceNames:   clone(p.ResourceNames),
			NonResourceURLs: clone(p.NonResourceURLs),
		})
	}
	return out
}

func clone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// ScopeProblem is why one permission of a request cannot be granted.
type ScopeProblem struct {
	// Index of the permission in spec.permissions.
	Index int
	// Message says what is wrong, naming the verbs and resources.
	Message string
}

// CheckScope decides whether a reduced-scope request for roleRef in
// namespace ("" for cluster-wide) may be granted permissions, given the
// role's rules now (roleExists false: the role does not exist). Each
// permission must be well formed, grantable in that scope (a
// non-resource URL only cluster-wide, and never from a Role) and covered
// by the role's rules, with RBAC's own escalation check
// (k8s.io/component-helpers/auth/rbac/validation.Covers): so the subset
// never allows what the role does not. No problems means it may.
func CheckScope(roleRef pimv1.RoleRef, namespace string, roleRules []rbacv1.PolicyRule, roleExists bool, permissions []pimv1.PermissionRule) []ScopeProblem {
	// Covers breaks every rule down into one atom per verb, group,
	// resource and name, and checks each against every rule of the role:
	// the requester picks the size (16 rules of 16 of each make a million
	// atoms, seconds of CPU per admission and per controller pass), so the
	// breakdown is bounded before Covers runs.
	if n := scopeAtoms(permissions); n > MaxScopeCombinations {
		return []ScopeProblem{{Index: 0, Message: fmt.Sprintf("the permissions break down into %d combinations of verb, apiGroup, resource and name (or verb and URL), more than the %d allowed: use fewer rules, or \"*\"", n, MaxScopeCombinations)}}
	}
	var out []ScopeProblem
	what := RoleDescription(roleRef, namespace)
	for i, p := range permissions {
		if msg := shapeProblem(roleRef, namespace, p); msg != "" {
			out = append(out, ScopeProblem{Index: i, Message: msg})
			continue
		}
		if !roleExists {
			out = append(out, ScopeProblem{Index: i, Message: fmt.Sprintf("%s does not exist: there is nothing to narrow", what)})
			continue
		}
		covered, missing := rbacvalidation.Covers(roleRules, PermissionRules([]pimv1.PermissionRule{p}))
		if covered {
			continue
		}
		shown := make([]string, 0, maxUncoveredShown)
		for _, m := range missing[:min(len(missing), maxUncoveredShown)] {
			shown = append(shown, describeAtom(m))
		}
		if len(missing) > maxUncoveredShown {
			shown = append(shown, fmt.Sprintf("and %d more", len(missing)-maxUncoveredShown))
		}
		out = append(out, ScopeProblem{Index: i, Message: fmt.Sprintf("%s does not allow %s: a reduced scope can only narrow the role, never add to it",
			what, strings.Join(shown, ", "))})
	}
	return out
}

// MaxScopeCombinations bounds how many RBAC atoms (one verb, group,
// resource and name; or one verb and URL) a request's permissions may
// break down into.
const MaxScopeCombinations = 4096

func scopeAtoms(permissions []pimv1.PermissionRule) int {
	total := 0
	for _, p := range permissions {
		if len(p.NonResourceURLs) > 0 {
			total += len(p.Verbs) * len(p.NonResourceURLs)
			continue
		}
		total += len(p.Verbs) * len(p.APIGroups) * len(p.Resources) * max(len(p.ResourceNames), 1)
	}
	return total
}

// ScopeError joins problems into one error ("" when none).
func ScopeError(problems []ScopeProblem) error {
	if len(problems) == 0 {
		return nil
	}
	msgs := make([]string, 0, len(problems))
	for _, p := range problems {
		msgs = append(msgs, fmt.Sprintf("spec.permissions[%d]: %s", p.Index, p.Message))
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

func shapeProblem(roleRef pimv1.RoleRef, namespace string, p pimv1.PermissionRule) string {
	switch {
	case len(p.Verbs) == 0:
		return "a rule needs at least one verb"
	case len(p.NonResourceURLs) > 0 && (len(p.Resources) > 0 || len(p.APIGroups) > 0 || len(p.ResourceNames) > 0):
		return "a rule has either resources (with apiGroups) or nonResourceURLs, not both"
	case len(p.NonResourceURLs) > 0 && roleRef.Kind == pimv1.RoleKindRole:
		return "a Role cannot hold nonResourceURLs"
	case len(p.NonResourceURLs) > 0 && namespace != "":
		return "nonResourceURLs are granted only cluster-wide: a request in namespace " + namespace + " cannot carry them"
	case len(p.NonResourceURLs) == 0 && (len(p.Resources) == 0 || len(p.APIGroups) == 0):
		return "a resource rule needs apiGroups (\"\" is the core group) and resources"
	}
	return ""
}

// describeAtom names one broken-down rule (one verb, group, resource and
// name, or one verb and URL): `delete secrets` or `get apps/deployments "web"`.
func describeAtom(r rbacv1.PolicyRule) string {
	verb := strings.Join(r.Verbs, ",")
	if len(r.NonResourceURLs) > 0 {
		return fmt.Sprintf("%s %s", verb, strings.Join(r.NonResourceURLs, ","))
	}
	res := strings.Join(r.Resources, ",")
	if g := strings.Join(r.APIGroups, ","); g != "" {
		res = g + "/" + res
	}
	if len(r.ResourceNames) > 0 {
		return fmt.Sprintf("%s %s %q", verb, res, strings.Join(r.ResourceNames, ","))
	}
	return verb + " " + res
}

// maxScopeSummary bounds a scope's summary in messages and records.
const maxScopeSummary = 1024

// ScopeSummary says in one line what a reduced-scope request asks for:
// "get,list pods,pods/log; delete apps/deployments [web]; get /healthz",
// cut at maxScopeSummary (for notifications and records). Empty for a
// request of the whole role.
func ScopeSummary(permissions []pimv1.PermissionRule) string {
	parts := make([]string, 0, len(permissions))
	for _, p := range permissions {
		parts = append(parts, RuleSummary(p))
	}
	return Truncate(strings.Join(parts, "; "), maxScopeSummary)
}

// RuleSummary is one rule of a reduced scope, in full: "get,list
// pods,apps/deployments [web]" or "get /healthz".
func RuleSummary(p pimv1.PermissionRule) string {
	verbs := strings.Join(p.Verbs, ",")
	if len(p.NonResourceURLs) > 0 {
		return verbs + " " + strings.Join(p.NonResourceURLs, ",")
	}
	res := make([]string, 0, len(p.Resources)*max(len(p.APIGroups), 1))
	for _, g := range p.APIGroups {
		for _, r := range p.Resources {
			if g == "" {
				res = append(res, r)
			} else {
				res = append(res, g+"/"+r)
			}
		}
	}
	s := verbs + " " + strings.Join(res, ",")
	if len(p.ResourceNames) > 0 {
		s += " [" + strings.Join(p.ResourceNames, ",") + "]"
	}
	return s
}

// ScopeAllows reports whether ar's scope allows a, granted in ar's
// namespace: the whole role's rules for a request of the whole role;
// for a reduced scope, its permissions AND the role's current rules
// (exactly as the generated role would, bounded by the role).
func ScopeAllows(ar *pimv1.ActivationRequest, roleRules []rbacv1.PolicyRule, a rules.Attributes) bool {
	if !rules.GrantAllows(roleRules, ar.Spec.Namespace, a) {
		return false
	}
	return !IsReduced(ar) || rules.GrantAllows(PermissionRules(ar.Spec.Permissions), ar.Spec.Namespace, a)
}
