package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestCheckScope(t *testing.T) {
	podAdmin := []rbacv1.PolicyRule{
		{Verbs: []string{"get", "list", "delete"}, APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}},
		{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}},
		{Verbs: []string{"get"}, APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{"web"}},
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/debug/*"}},
	}
	wildcard := []rbacv1.PolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}
	cluster := pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pod-admin"}
	role := pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: "pod-admin"}
	res := func(verbs, groups, resources []string, names ...string) pimv1.PermissionRule {
		return pimv1.PermissionRule{Verbs: verbs, APIGroups: groups, Resources: resources, ResourceNames: names}
	}
	core := []string{""}
	tests := []struct {
		name      string
		roleRef   pimv1.RoleRef
		namespace string
		rules     []rbacv1.PolicyRule
		missing   bool
		perms     []pimv1.PermissionRule
		want      map[int]string // index -> a part of its message; empty: granted
	}{
		{name: "a subset of verbs and resources", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"get", "list"}, core, []string{"pods", "pods/log"})}},
		{name: "one name of a rule without names", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"delete"}, core, []string{"pods"}, "web-1")}},
		{name: "the very names a rule lists", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"get"}, []string{"apps"}, []string{"deployments"}, "web")}},
		{name: "a verb the role lacks", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"get"}, core, []string{"pods"}), res([]string{"list", "delete"}, core, []string{"secrets"})},
			want:  map[int]string{1: "ClusterRole pod-admin in namespace prod does not allow list secrets, delete secrets"}},
		{name: "a resource the role lacks", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"get"}, core, []string{"pods/exec"})},
			want:  map[int]string{0: "does not allow get pods/exec"}},
		{name: "another API group", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"get"}, []string{"apps"}, []string{"pods"})},
			want:  map[int]string{0: "does not allow get apps/pods"}},
		{name: "every name where the role lists some", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"get"}, []string{"apps"}, []string{"deployments"})},
			want:  map[int]string{0: "does not allow get apps/deployments"}},
		{name: "a wildcard the role does not have", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"*"}, core, []string{"pods"})},
			want:  map[int]string{0: "does not allow * pods"}},
		{name: "anything under a wildcard role", roleRef: cluster, namespace: "prod", rules: wildcard,
			perms: []pimv1.PermissionRule{res([]string{"get", "escalate"}, []string{"rbac.authorization.k8s.io", "apps"}, []string{"roles", "deployments/scale"})}},
		{name: "a non-resource URL cluster-wide", roleRef: cluster, rules: podAdmin,
			perms: []pimv1.PermissionRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/debug/pprof"}}}},
		{name: "a URL the role's prefix does not cover", roleRef: cluster, rules: podAdmin,
			perms: []pimv1.PermissionRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/metrics"}}},
			want:  map[int]string{0: "does not allow get /metrics"}},
		{name: "no non-resource URL in a namespace", roleRef: cluster, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/debug/pprof"}}},
			want:  map[int]string{0: "nonResourceURLs are granted only cluster-wide"}},
		{name: "no non-resource URL from a Role", roleRef: role, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/debug/pprof"}}},
			want:  map[int]string{0: "a Role cannot hold nonResourceURLs"}},
		{name: "a Role's subset", roleRef: role, namespace: "prod", rules: podAdmin,
			perms: []pimv1.PermissionRule{res([]string{"get"}, core, []string{"secrets"}, "db")}},
		{name: "resources and URLs in one rule", roleRef: cluster, rules: podAdmin,
			perms: []pimv1.PermissionRule{{Verbs: []string{"get"}, APIGroups: core, Resources: []string{"pods"}, NonResourceURLs: []string{"/debug/x"}}},
			want:  map[int]string{0: "not both"}},
		{name: "resources without a group", roleRef: cluster, rules: podAdmin,
			perms: []pimv1.PermissionRule{{Verbs: []string{"get"}, Resources: []string{"pods"}}},
			want:  map[int]string{0: "needs apiGroups"}},
		{name: "no verb", roleRef: cluster, rules: podAdmin,
			perms: []pimv1.PermissionRule{{APIGroups: core, Resources: []string{"pods"}}},
			want:  map[int]string{0: "at least one verb"}},
		{name: "a role that does not exist", roleRef: cluster, missing: true,
			perms: []pimv1.PermissionRule{res([]string{"get"}, core, []string{"pods"})},
			want:  map[int]string{0: "does not exist"}},
		{name: "a role that shrank to nothing", roleRef: cluster, rules: nil,
			perms: []pimv1.PermissionRule{res([]string{"get"}, core, []string{"pods"})},
			want:  map[int]string{0: "does not allow get pods"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckScope(tc.roleRef, tc.namespace, tc.rules, !tc.missing, tc.perms)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want problems at %v", got, tc.want)
			}
			for _, p := range got {
				part, ok := tc.want[p.Index]
				if !ok || !strings.Contains(p.Message, part) {
					t.Errorf("problem %d: %q, want it to contain %q", p.Index, p.Message, part)
				}
			}
		})
	}
}

func TestScopeSummary(t *testing.T) {
	got := ScopeSummary([]pimv1.PermissionRule{
		{Verbs: []string{"get", "list"}, APIGroups: []string{"", "apps"}, Resources: []string{"pods"}, ResourceNames: []string{"web"}},
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}},
	})
	if want := "get,list pods,apps/pods [web]; get /healthz"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if ScopeSummary(nil) != "" {
		t.Error("the whole role has no summary")
	}
}

// A requester chooses the size of spec.permissions: 16 rules of 16 verbs,
// groups, resources and names break down into a million RBAC atoms, each
// checked against every rule of the role (Covers) — seconds of CPU per
// admission and per controller pass. The breakdown is bounded, and
// refused before Covers runs.
func TestCheckScopeBoundsTheBreakdown(t *testing.T) {
	sixteen := func(p string) []string {
		out := make([]string, 16)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", p, i)
		}
		return out
	}
	var role []rbacv1.PolicyRule
	for i := range 50 {
		role = append(role, rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{fmt.Sprintf("g%d", i)}, Resources: []string{"x"}})
	}
	role = append(role, rbacv1.PolicyRule{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}})
	wide := pimv1.PermissionRule{Verbs: sixteen("v"), APIGroups: sixteen("g"), Resources: sixteen("r"), ResourceNames: sixteen("n")}
	ps := make([]pimv1.PermissionRule, 16)
	for i := range ps {
		ps[i] = wide
	}
	ref := pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "big"}
	start := time.Now()
	problems := CheckScope(ref, "", role, true, ps)
	if took := time.Since(start); took > time.Second {
		t.Errorf("CheckScope of the largest permissions took %s", took)
	}
	if len(problems) == 0 || !strings.Contains(ScopeError(problems).Error(), "combinations") {
		t.Fatalf("the largest permissions were not refused for their size: %v", problems)
	}

	// Within the bound, the same shape is checked as before.
	small := pimv1.PermissionRule{Verbs: []string{"get", "list"}, APIGroups: []string{"", "apps"}, Resources: []string{"pods", "deployments"}}
	if problems := CheckScope(ref, "", role, true, []pimv1.PermissionRule{small}); len(problems) != 0 {
		t.Errorf("a small scope covered by * was refused: %v", problems)
	}
}

// A reduced scope's rules are shown in full, as ScopeSummary writes
// a short one, and never cut: approvers see every rule they approve.
func TestRuleSummary(t *testing.T) {
	short := []pimv1.PermissionRule{
		{Verbs: []string{"get", "list"}, APIGroups: []string{"", "apps"}, Resources: []string{"pods", "deployments"}, ResourceNames: []string{"web"}},
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}},
	}
	for _, r := range short {
		if got, want := RuleSummary(r), ScopeSummary([]pimv1.PermissionRule{r}); got != want {
			t.Errorf("RuleSummary = %q, ScopeSummary = %q", got, want)
		}
	}
	long := pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}}
	for i := range 16 {
		long.ResourceNames = append(long.ResourceNames, fmt.Sprintf("%s-%02d", strings.Repeat("x", 200), i))
	}
	got := RuleSummary(long)
	if !strings.HasSuffix(got, strings.Repeat("x", 200)+"-15]") || strings.Contains(got, "cut") {
		t.Errorf("a long rule is cut: %q", got[len(got)-80:])
	}
}
