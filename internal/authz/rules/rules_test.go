package rules

import (
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

func res(verb, ns, group, resource, sub, name string) Attributes {
	return Attributes{ResourceRequest: true, Verb: verb, Namespace: ns, APIGroup: group, Resource: resource, Subresource: sub, Name: name}
}

func url(verb, path string) Attributes { return Attributes{Verb: verb, Path: path} }

func TestAllows(t *testing.T) {
	pods := rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	tests := []struct {
		name string
		rule rbacv1.PolicyRule
		a    Attributes
		want bool
	}{
		{"exact", pods, res("get", "prod", "", "pods", "", "web"), true},
		{"another verb", pods, res("delete", "prod", "", "pods", "", "web"), false},
		{"verbs are case-sensitive", pods, res("GET", "prod", "", "pods", "", ""), false},
		{"another group", pods, res("get", "prod", "apps", "pods", "", ""), false},
		{"another resource", pods, res("get", "prod", "", "secrets", "", ""), false},
		{"a subresource is not the resource", pods, res("get", "prod", "", "pods", "log", ""), false},
		{"verb *", rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{""}, Resources: []string{"pods"}}, res("escalate", "", "", "pods", "", ""), true},
		{"a requested verb * needs a rule verb *", pods, res("*", "", "", "pods", "", ""), false},
		{"group *", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{"*"}, Resources: []string{"deployments"}}, res("get", "", "apps", "deployments", "", ""), true},
		{"no group at all", rbacv1.PolicyRule{Verbs: []string{"get"}, Resources: []string{"pods"}}, res("get", "", "", "pods", "", ""), false},
		{"resource * covers subresources", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"*"}}, res("get", "", "", "pods", "exec", ""), true},
		{"pods/log", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}, res("get", "", "", "pods", "log", ""), true},
		{"pods/log is not pods", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}, res("get", "", "", "pods", "", ""), false},
		{"pods/log is not pods/exec", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}, res("get", "", "", "pods", "exec", ""), false},
		{"*/scale", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"apps"}, Resources: []string{"*/scale"}}, res("update", "", "apps", "deployments", "scale", ""), true},
		{"*/scale is not the resource", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"apps"}, Resources: []string{"*/scale"}}, res("update", "", "apps", "deployments", "", ""), false},
		{"*/scale is not */status", rbacv1.PolicyRule{Verbs: []string{"update"}, APIGroups: []string{"apps"}, Resources: []string{"*/scale"}}, res("update", "", "apps", "deployments", "status", ""), false},
		{"pods/* is no wildcard", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/*"}}, res("get", "", "", "pods", "log", ""), false},
		{"pods/* matches the subresource named *", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/*"}}, res("get", "", "", "pods", "*", ""), true},
		{"names: one listed", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a", "b"}}, res("get", "ns", "", "configmaps", "", "b"), true},
		{"names: another", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}}, res("get", "ns", "", "configmaps", "", "c"), false},
		{"names: a list has no name", rbacv1.PolicyRule{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}}, res("list", "ns", "", "configmaps", "", ""), false},
		{"names: * is a name, not a wildcard", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"*"}}, res("get", "ns", "", "configmaps", "", "a"), false},
		{"a resource rule allows no URL", pods, url("get", "/healthz"), false},
		{"URL exact", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}, url("get", "/healthz"), true},
		{"URL exact is exact", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}, url("get", "/healthz/etcd"), false},
		{"URL prefix", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz/*"}}, url("get", "/healthz/etcd"), true},
		{"URL prefix needs the slash", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz/*"}}, url("get", "/healthz"), false},
		{"URL prefix without a slash", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/api*"}}, url("get", "/apis/apps"), true},
		{"URL trailing asterisks", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/a**"}}, url("get", "/ab"), true},
		{"URL *", rbacv1.PolicyRule{Verbs: []string{"post"}, NonResourceURLs: []string{"*"}}, url("post", "/anything"), true},
		{"URL verb", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"*"}}, url("post", "/anything"), false},
		{"a URL rule allows no resource", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"*"}}, res("get", "", "", "pods", "", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Allows(&tt.rule, tt.a); got != tt.want {
				t.Errorf("Allows(%+v, %+v) = %v, want %v", tt.rule, tt.a, got, tt.want)
			}
		})
	}
}

func TestGrantAllows(t *testing.T) {
	all := []rbacv1.PolicyRule{
		{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
		{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}},
	}
	tests := []struct {
		name      string
		namespace string
		a         Attributes
		want      bool
	}{
		{"cluster-wide: a namespace", "", res("get", "prod", "", "pods", "", ""), true},
		{"cluster-wide: cluster-scoped", "", res("get", "", "", "nodes", "", ""), true},
		{"cluster-wide: a URL", "", url("get", "/metrics"), true},
		{"namespaced: its namespace", "prod", res("get", "prod", "", "pods", "", ""), true},
		{"namespaced: another namespace", "prod", res("get", "dev", "", "pods", "", ""), false},
		{"namespaced: all namespaces", "prod", res("list", "", "", "pods", "", ""), false},
		{"namespaced: a URL", "prod", url("get", "/metrics"), false},
		{"namespaced: cluster-scoped resources asked in its namespace", "prod", res("get", "prod", "", "nodes", "", ""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := GrantAllows(all, tt.namespace, tt.a); got != tt.want {
				t.Errorf("GrantAllows(%q, %+v) = %v, want %v", tt.namespace, tt.a, got, tt.want)
			}
		})
	}
	if GrantAllows(nil, "", res("get", "", "", "pods", "", "")) {
		t.Error("no rules allow nothing")
	}
}

func TestFromSpec(t *testing.T) {
	got := FromSpec(authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
		Namespace: "prod", Verb: "get", Group: "apps", Version: "v1", Resource: "deployments", Subresource: "scale", Name: "web"}})
	if want := res("get", "prod", "apps", "deployments", "scale", "web"); got != want {
		t.Errorf("resource: got %+v, want %+v", got, want)
	}
	got = FromSpec(authorizationv1.SubjectAccessReviewSpec{NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}})
	if want := url("get", "/metrics"); got != want {
		t.Errorf("non-resource: got %+v, want %+v", got, want)
	}
}
