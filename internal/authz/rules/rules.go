// Package rules evaluates RBAC PolicyRules against the attributes of a
// request exactly as the API server's RBAC authorizer does: the same
// matching of verbs, API groups, resources and subresources ("pods/log",
// "*/scale"), resource names and non-resource URLs (a trailing "*" is a
// prefix), with "*" as every value, and the same scoping of a binding (a
// ClusterRoleBinding applies everywhere, a RoleBinding only to resource
// requests in its namespace). An aggregated ClusterRole is evaluated with
// the rules stored in it, as the aggregation controller wrote them: so
// does RBAC.
//
// k8s.io/component-helpers/auth/rbac/validation offers only Covers (does
// one set of rules contain another, for escalation checks), whose notion
// of resource names differs from a request's (a request without a name is
// not allowed by a rule that lists names); the authorizer's own matching
// lives in k8s.io/kubernetes, which cannot be imported. The differential
// test in this package holds this code to the real API server's answers.
package rules

import (
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// Attributes is what a request asks to do: a resource request (verb,
// namespace, API group, resource, subresource, name) or a non-resource
// request (verb, path).
type Attributes struct {
	// ResourceRequest is true for a request on a resource, false for a
	// non-resource URL.
	ResourceRequest bool
	Verb            string
	// Namespace of the resource ("" for a cluster-scoped request).
	Namespace   string
	APIGroup    string
	Resource    string
	Subresource string
	Name        string
	// Path of a non-resource request.
	Path string
}

// FromSpec reads the attributes of a SubjectAccessReview's spec (what the
// API server sends an authorization webhook). A spec with neither
// resource nor non-resource attributes is a non-resource request on no
// path, which no rule allows but one with the non-resource URL "*".
func FromSpec(spec authorizationv1.SubjectAccessReviewSpec) Attributes {
	if r := spec.ResourceAttributes; r != nil {
		return Attributes{ResourceRequest: true, Verb: r.Verb, Namespace: r.Namespace, APIGroup: r.Group,
			Resource: r.Resource, Subresource: r.Subresource, Name: r.Name}
	}
	if n := spec.NonResourceAttributes; n != nil {
		return Attributes{Verb: n.Verb, Path: n.Path}
	}
	return Attributes{}
}

// Namespaced reports whether a binding in bindingNamespace applies to a:
// a cluster-wide binding ("") to every request; a RoleBinding only to
// resource requests in its own namespace (RBAC visits the RoleBindings of
// the request's namespace, and a non-resource request has none).
func Namespaced(bindingNamespace string, a Attributes) bool {
	return bindingNamespace == "" || (a.ResourceRequest && a.Namespace != "" && a.Namespace == bindingNamespace)
}

// GrantAllows reports whether rules, bound in bindingNamespace ("" for a
// ClusterRoleBinding), allow a.
func GrantAllows(rules []rbacv1.PolicyRule, bindingNamespace string, a Attributes) bool {
	return Namespaced(bindingNamespace, a) && AnyAllows(rules, a)
}

// AnyAllows reports whether one of rules allows a.
func AnyAllows(rules []rbacv1.PolicyRule, a Attributes) bool {
	for i := range rules {
		if Allows(&rules[i], a) {
			return true
		}
	}
	return false
}

// Allows reports whether one rule allows a, as RBAC's RuleAllows does.
func Allows(rule *rbacv1.PolicyRule, a Attributes) bool {
	if !verbMatches(rule, a.Verb) {
		return false
	}
	if !a.ResourceRequest {
		return nonResourceURLMatches(rule, a.Path)
	}
	combined := a.Resource
	if a.Subresource != "" {
		combined = a.Resource + "/" + a.Subresource
	}
	return apiGroupMatches(rule, a.APIGroup) && resourceMatches(rule, combined, a.Subresource) && resourceNameMatches(rule, a.Name)
}

func verbMatches(rule *rbacv1.PolicyRule, verb string) bool {
	for _, v := range rule.Verbs {
		if v == rbacv1.VerbAll || v == verb {
			return true
		}
	}
	return false
}

func apiGroupMatches(rule *rbacv1.PolicyRule, group string) bool {
	for _, g := range rule.APIGroups {
		if g == rbacv1.APIGroupAll || g == group {
			return true
		}
	}
	return false
}

// resourceMatches: "*" matches everything, "pods/log" the subresource log
// of pods only, "pods" pods without a subresource, and "*/scale" the
// subresource scale of any resource.
func resourceMatches(rule *rbacv1.PolicyRule, combined, subresource string) bool {
	for _, r := range rule.Resources {
		if r == rbacv1.ResourceAll || r == combined {
			return true
		}
		if subresource != "" && r == "*/"+subresource {
			return true
		}
	}
	return false
}

// resourceNameMatches: a rule without names allows every name; a rule with
// names allows only requests for one of them (so never a list or a create
// without a name).
func resourceNameMatches(rule *rbacv1.PolicyRule, name string) bool {
	if len(rule.ResourceNames) == 0 {
		return true
	}
	for _, n := range rule.ResourceNames {
		if n == name {
			return true
		}
	}
	return false
}

// nonResourceURLMatches: "*" matches every path, "/healthz" that path
// only, and a URL ending in "*" every path that starts with what precedes
// its trailing asterisks.
func nonResourceURLMatches(rule *rbacv1.PolicyRule, path string) bool {
	for _, u := range rule.NonResourceURLs {
		if u == rbacv1.NonResourceAll || u == path {
			return true
		}
		if strings.HasSuffix(u, "*") && strings.HasPrefix(path, strings.TrimRight(u, "*")) {
			return true
		}
	}
	return false
}
