package rules_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	rbacvalidation "k8s.io/component-helpers/auth/rbac/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz/rules"
	"github.com/kubepim/kubepim/internal/policy"
)

// The differential test: for generated rules, bound to a user by a real
// ClusterRoleBinding or RoleBinding, and generated request attributes,
// kubepim's evaluation equals the API server's RBAC authorizer's answer to
// a SubjectAccessReview, case by case. The vocabularies are small so that
// rules and requests meet often, and half the requests are drawn from the
// rules they are asked against, so both answers are common.

const (
	diffSeed  = 19
	diffCases = 300 // rule sets, each bound to its own user
	diffAsks  = 4   // requests asked per rule set
	diffNS    = "diff"
)

var (
	verbs       = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate", "*"}
	groups      = []string{"", "apps", "batch", "rbac.authorization.k8s.io", "*"}
	ruleRes     = []string{"pods", "pods/log", "pods/exec", "pods/status", "deployments", "deployments/scale", "*/scale", "*/status", "secrets", "configmaps", "nodes", "*", "pods/*"}
	askRes      = [][2]string{{"pods", ""}, {"pods", "log"}, {"pods", "exec"}, {"pods", "status"}, {"deployments", ""}, {"deployments", "scale"}, {"deployments", "status"}, {"replicasets", "scale"}, {"secrets", ""}, {"configmaps", ""}, {"nodes", ""}, {"*", ""}, {"pods", "*"}}
	names       = []string{"", "a", "b"}
	ruleURLs    = []string{"/healthz", "/healthz/*", "/api*", "/metrics", "*", "/logs/*", "/version", "/a**"}
	askPaths    = []string{"/healthz", "/healthz/etcd", "/healthz/", "/api", "/apis/apps", "/metrics", "/logs/kube.log", "/version", "/x", "/ab", "/"}
	namespaces  = []string{diffNS, "other", ""}
	scopeKinds  = []string{"ClusterRoleBinding", "RoleBinding to a ClusterRole", "RoleBinding to a Role"}
	resourceSet = map[bool]int{}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func some[T any](r *rand.Rand, xs []T, upTo int) []T {
	n := 1 + r.IntN(upTo)
	out := make([]T, 0, n)
	for range n {
		out = append(out, pick(r, xs))
	}
	return out
}

func randomRules(r *rand.Rand, nonResource bool) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for range 1 + r.IntN(3) {
		if nonResource && r.IntN(3) == 0 {
			out = append(out, rbacv1.PolicyRule{Verbs: some(r, verbs, 3), NonResourceURLs: some(r, ruleURLs, 2)})
			continue
		}
		rule := rbacv1.PolicyRule{Verbs: some(r, verbs, 3), APIGroups: some(r, groups, 2), Resources: some(r, ruleRes, 3)}
		if r.IntN(4) == 0 {
			rule.ResourceNames = some(r, names[1:], 2)
		}
		out = append(out, rule)
	}
	return out
}

// randomAsk draws request attributes; drawn from one of the rules half
// the time (then one field is changed now and then).
func randomAsk(r *rand.Rand, rs []rbacv1.PolicyRule, bindingNS string) rules.Attributes {
	if r.IntN(2) == 0 {
		rule := pick(r, rs)
		if len(rule.NonResourceURLs) > 0 {
			a := rules.Attributes{Verb: pick(r, rule.Verbs), Path: pick(r, askPaths)}
			if a.Verb == "*" {
				a.Verb = pick(r, verbs)
			}
			return a
		}
		a := rules.Attributes{ResourceRequest: true, Verb: pick(r, rule.Verbs), APIGroup: pick(r, rule.APIGroups), Namespace: bindingNS}
		if a.Namespace == "" {
			a.Namespace = pick(r, namespaces)
		}
		if a.Verb == "*" && r.IntN(2) == 0 {
			a.Verb = pick(r, verbs)
		}
		if a.APIGroup == "*" {
			a.APIGroup = pick(r, groups)
		}
		switch res := pick(r, rule.Resources); res {
		case "*", "*/scale", "*/status":
			ask := pick(r, askRes)
			a.Resource, a.Subresource = ask[0], ask[1]
			if res != "*" {
				a.Subresource = res[2:]
			}
		default:
			a.Resource, a.Subresource, _ = cut(res)
		}
		if len(rule.ResourceNames) > 0 {
			a.Name = pick(r, rule.ResourceNames)
		} else {
			a.Name = pick(r, names)
		}
		if r.IntN(3) == 0 {
			switch r.IntN(5) {
			case 0:
				a.Verb = pick(r, verbs)
			case 1:
				a.APIGroup = pick(r, groups)
			case 2:
				ask := pick(r, askRes)
				a.Resource, a.Subresource = ask[0], ask[1]
			case 3:
				a.Name = pick(r, names)
			case 4:
				a.Namespace = pick(r, namespaces)
			}
		}
		return a
	}
	if r.IntN(4) == 0 {
		return rules.Attributes{Verb: pick(r, verbs), Path: pick(r, askPaths)}
	}
	ask := pick(r, askRes)
	return rules.Attributes{ResourceRequest: true, Verb: pick(r, verbs), Namespace: pick(r, namespaces), APIGroup: pick(r, groups),
		Resource: ask[0], Subresource: ask[1], Name: pick(r, names)}
}

func cut(res string) (string, string, bool) {
	for i := range len(res) {
		if res[i] == '/' {
			return res[:i], res[i+1:], true
		}
	}
	return res, "", false
}

type diffCase struct {
	user      string
	scope     int
	bindingNS string
	rules     []rbacv1.PolicyRule
	// A reduced scope of those rules (issue #19), bound for real to
	// scopeUser as kubepim's generated role would be: the authorizer's
	// answer for it (policy.ScopeAllows: the scope and the role) must be
	// RBAC's answer for the generated role.
	scopeUser string
	perms     []pimv1.PermissionRule
}

// randomScope draws a reduced scope covered by rs (RBAC's Covers): some
// of its broken-down atoms, and some random rules that happen to be
// covered; nil when nothing is.
func randomScope(r *rand.Rand, rs []rbacv1.PolicyRule, nonResource bool) []pimv1.PermissionRule {
	var atoms []rbacv1.PolicyRule
	for _, rule := range rs {
		atoms = append(atoms, rbacvalidation.BreakdownRule(rule)...)
	}
	var out []pimv1.PermissionRule
	for range 1 + r.IntN(3) {
		var rule rbacv1.PolicyRule
		if r.IntN(2) == 0 && len(atoms) > 0 {
			rule = pick(r, atoms)
		} else {
			rule = randomRules(r, nonResource)[0]
		}
		if ok, _ := rbacvalidation.Covers(rs, []rbacv1.PolicyRule{rule}); !ok || (!nonResource && len(rule.NonResourceURLs) > 0) {
			// Not covered, or a URL a namespaced grant cannot carry
			// (kubepim's admission refuses both).
			continue
		}
		out = append(out, pimv1.PermissionRule{Verbs: rule.Verbs, APIGroups: rule.APIGroups, Resources: rule.Resources,
			ResourceNames: rule.ResourceNames, NonResourceURLs: rule.NonResourceURLs})
	}
	return out
}

func TestDifferentialAgainstTheAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd (KUBEBUILDER_ASSETS): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ns := range []string{diffNS, "other"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	r := rand.New(rand.NewPCG(diffSeed, 0))
	cases := make([]diffCase, diffCases)
	for i := range cases {
		dc := diffCase{user: fmt.Sprintf("diff-user-%d", i), scope: r.IntN(3)}
		if dc.scope > 0 {
			dc.bindingNS = diffNS
		}
		dc.rules = createGrant(t, c, i, dc.scope, dc.user, randomRules(r, dc.scope != 2), r.IntN(10) == 0)
		if i%2 == 0 {
			if dc.perms = randomScope(r, dc.rules, dc.scope == 0); len(dc.perms) > 0 {
				dc.scopeUser = fmt.Sprintf("diff-scope-user-%d", i)
				// The generated role is a Role for a namespaced grant, a
				// ClusterRole for a cluster-wide one.
				generatedScope := 2
				if dc.scope == 0 {
					generatedScope = 0
				}
				createGrant(t, c, 10000+i, generatedScope, dc.scopeUser, policy.PermissionRules(dc.perms), false)
			}
		}
		cases[i] = dc
	}
	// RBAC reads roles and bindings from informers, one per kind, each in
	// the order of writes: once a grant made after all the others is seen
	// through every kind, so are they.
	createGrant(t, c, -1, 0, "diff-sentinel", []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"sentinels"}}}, false)
	createGrant(t, c, -2, 2, "diff-sentinel", []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"sentinels"}}}, false)
	createGrant(t, c, -3, 1, "diff-sentinel", []rbacv1.PolicyRule{{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"sentinels"}}}, false)
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, a := range []rules.Attributes{
			{ResourceRequest: true, Verb: "get", Resource: "sentinels"},
			{ResourceRequest: true, Verb: "get", Resource: "sentinels", Namespace: diffNS},
			{ResourceRequest: true, Verb: "list", Resource: "sentinels", Namespace: diffNS},
		} {
			if ok, err := ask(ctx, c, "diff-sentinel", a); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("RBAC did not see the grants: %v", err)
	}

	allowed, denied, scoped, scopeAllowed := 0, 0, 0, 0
	for i, dc := range cases {
		for range diffAsks {
			a := randomAsk(r, dc.rules, dc.bindingNS)
			if dc.scopeUser != "" {
				sa := a
				if r.IntN(2) == 0 {
					sa = randomAsk(r, policy.PermissionRules(dc.perms), dc.bindingNS)
				}
				server, err := ask(ctx, c, dc.scopeUser, sa)
				if err != nil {
					t.Fatal(err)
				}
				ar := &pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Namespace: dc.bindingNS, Permissions: dc.perms}}
				if ours := policy.ScopeAllows(ar, dc.rules, sa); ours != server {
					t.Errorf("case %d (%s in %q) rules %+v, reduced to %+v, request %+v: kubepim says %v, the API server (generated role) %v",
						i, scopeKinds[dc.scope], dc.bindingNS, dc.rules, dc.perms, sa, ours, server)
				}
				scoped++
				if server {
					scopeAllowed++
				}
			}
			server, err := ask(ctx, c, dc.user, a)
			if err != nil {
				t.Fatal(err)
			}
			if ours := rules.GrantAllows(dc.rules, dc.bindingNS, a); ours != server {
				t.Errorf("case %d (%s in %q) rules %+v, request %+v: kubepim says %v, the API server %v",
					i, scopeKinds[dc.scope], dc.bindingNS, dc.rules, a, ours, server)
			}
			if server {
				allowed++
			} else {
				denied++
			}
			resourceSet[a.ResourceRequest]++
		}
	}
	t.Logf("%d requests: %d allowed, %d denied (%d resource, %d non-resource); %d through a reduced scope, %d allowed",
		allowed+denied, allowed, denied, resourceSet[true], resourceSet[false], scoped, scopeAllowed)
	if scopeAllowed < scoped/5 || scoped-scopeAllowed < scoped/5 {
		t.Errorf("lopsided reduced scopes: %d of %d allowed", scopeAllowed, scoped)
	}
	// Both answers must be common, or the test proves little.
	if allowed < (allowed+denied)/5 || denied < (allowed+denied)/5 {
		t.Errorf("lopsided: %d allowed, %d denied", allowed, denied)
	}
}

// createGrant binds rules to user as scope says, and returns the rules as
// the API server stored them. aggregated gives a ClusterRole an
// aggregation rule: RBAC (and kubepim) use the rules stored in it.
func createGrant(t *testing.T, c client.Client, i, scope int, user string, rs []rbacv1.PolicyRule, aggregated bool) []rbacv1.PolicyRule {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("diff-%d", i)
	if i < 0 {
		name = fmt.Sprintf("diff-sentinel%d", i)
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	if scope == 2 {
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: diffNS}, Rules: rs}
		must(t, c.Create(ctx, role))
		must(t, c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: diffNS}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}}))
		return role.Rules
	}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rs}
	if aggregated && scope < 2 {
		role.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"aggregate-to-" + name: "true"}}}}
	}
	must(t, c.Create(ctx, role))
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
	if scope == 0 {
		must(t, c.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subjects, RoleRef: ref}))
	} else {
		must(t, c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: diffNS}, Subjects: subjects, RoleRef: ref}))
	}
	return role.Rules
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ask asks the API server whether user (in no group) may do a.
func ask(ctx context.Context, c client.Client, user string, a rules.Attributes) (bool, error) {
	spec := authorizationv1.SubjectAccessReviewSpec{User: user}
	if a.ResourceRequest {
		spec.ResourceAttributes = &authorizationv1.ResourceAttributes{Namespace: a.Namespace, Verb: a.Verb, Group: a.APIGroup,
			Resource: a.Resource, Subresource: a.Subresource, Name: a.Name}
	} else {
		spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: a.Path, Verb: a.Verb}
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: spec}
	if err := c.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}
