package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz/rules"
)

var (
	podDebugger  = pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pod-debugger"}
	secretReader = pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: "secret-reader"}
	accessRules  = map[RoleID][]rbacv1.PolicyRule{
		{Kind: pimv1.RoleKindClusterRole, Name: "pod-debugger"}: {
			{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}},
			{Verbs: []string{"get"}, NonResourceURLs: []string{"/debug/*"}},
		},
		{Kind: pimv1.RoleKindRole, Namespace: "prod", Name: "secret-reader"}: {
			{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}},
		},
		{Kind: pimv1.RoleKindClusterRole, Name: "node-reader"}: {
			{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"nodes", "pods"}},
		},
	}
)

func getPods(ns string) rules.Attributes {
	return rules.Attributes{ResourceRequest: true, Verb: "get", Namespace: ns, Resource: "pods", Name: "web"}
}

// accessAR is alice's ActivationRequest for pod-debugger in prod, Active
// from an hour before actNow to an hour after, changed by mods.
func accessAR(name string, mods ...func(*pimv1.ActivationRequest)) pimv1.ActivationRequest {
	ar := pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       pimv1.ActivationRequestSpec{RoleRef: podDebugger, Namespace: "prod", Requester: &pimv1.UserInfo{Username: "alice", Groups: []string{"devs"}}},
		Status: pimv1.ActivationRequestStatus{State: pimv1.ActivationStateActive,
			ActivatedAt: actMeta(actTime(-time.Hour)), ExpiresAt: actMeta(actTime(time.Hour))},
	}
	for _, m := range mods {
		m(&ar)
	}
	return ar
}

func arState(s pimv1.ActivationState) func(*pimv1.ActivationRequest) {
	return func(ar *pimv1.ActivationRequest) { ar.Status.State = s }
}

func arWindow(from, to time.Duration) func(*pimv1.ActivationRequest) {
	return func(ar *pimv1.ActivationRequest) {
		ar.Status.ActivatedAt, ar.Status.ExpiresAt = actMeta(actTime(from)), actMeta(actTime(to))
	}
}

func arGrant(ref pimv1.RoleRef, ns string) func(*pimv1.ActivationRequest) {
	return func(ar *pimv1.ActivationRequest) { ar.Spec.RoleRef, ar.Spec.Namespace = ref, ns }
}

func arScope(ps ...pimv1.PermissionRule) func(*pimv1.ActivationRequest) {
	return func(ar *pimv1.ActivationRequest) { ar.Spec.Permissions = ps }
}

func arAnnotated(key string) func(*pimv1.ActivationRequest) {
	return func(ar *pimv1.ActivationRequest) { ar.Annotations = map[string]string{key: "done"} }
}

func raRole(ref pimv1.RoleRef) func(*pimv1.RoleAssignment) {
	return func(ra *pimv1.RoleAssignment) { ra.Spec.RoleRef = ref }
}

func TestDecideAccess(t *testing.T) {
	eligible := actRA("alice-pod-debugger", raRole(podDebugger))
	eligibleSecrets := actRA("sre-secret-reader", raRole(secretReader), raNamespace("prod"), raSubject(pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "sre"}))
	deleted := metav1.NewTime(actNow)
	alice := pimv1.UserInfo{Username: "alice", Groups: []string{"devs", "system:authenticated"}}
	tests := []struct {
		name        string
		user        *pimv1.UserInfo
		attrs       rules.Attributes
		activations []pimv1.ActivationRequest
		assignments []pimv1.RoleAssignment
		settings    []pimv1.RoleSetting
		allowed     bool
		reason      string // a part of the reason; "" for a denial means none at all
	}{
		{name: "an activation in force allows what its role allows in its namespace",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible},
			allowed: true, reason: "allowed by ActivationRequest a1 (ClusterRole pod-debugger in namespace prod) until 2026-03-10T10:00:00Z"},
		{name: "and a subresource it allows",
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "get", Namespace: "prod", Resource: "pods", Subresource: "log"},
			activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible}, allowed: true, reason: "a1"},
		{name: "not in another namespace",
			attrs: getPods("dev"), activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible},
			reason: "activate it with: kubectl pim activate pod-debugger -n dev"},
		{name: "not across namespaces",
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "list", Resource: "pods"},
			activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible},
			reason: "kubectl pim activate pod-debugger --reason"},
		{name: "not a verb the role does not have",
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "delete", Namespace: "prod", Resource: "pods"},
			activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible}},
		{name: "not a non-resource URL through a namespaced grant",
			attrs:       rules.Attributes{Verb: "get", Path: "/debug/pprof"},
			activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible},
			reason: "kubectl pim activate pod-debugger --reason"},
		{name: "a cluster-wide activation allows every namespace",
			attrs: getPods("dev"), activations: []pimv1.ActivationRequest{accessAR("a1", arGrant(podDebugger, ""))}, assignments: []pimv1.RoleAssignment{eligible},
			allowed: true, reason: "cluster-wide"},
		{name: "and its non-resource URLs",
			attrs: rules.Attributes{Verb: "get", Path: "/debug/pprof"}, activations: []pimv1.ActivationRequest{accessAR("a1", arGrant(podDebugger, ""))},
			assignments: []pimv1.RoleAssignment{eligible}, allowed: true},
		{name: "a Role's activation uses the Role of its namespace",
			user:        &pimv1.UserInfo{Username: "alice", Groups: []string{"sre"}},
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "get", Namespace: "prod", Resource: "secrets", Name: "db"},
			activations: []pimv1.ActivationRequest{accessAR("s1", arGrant(secretReader, "prod"), func(ar *pimv1.ActivationRequest) { ar.Spec.Requester.Groups = []string{"sre"} })},
			assignments: []pimv1.RoleAssignment{eligibleSecrets}, allowed: true},
		{name: "a reduced scope allows what its permissions allow",
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "get", Namespace: "prod", Resource: "pods", Subresource: "log", Name: "web"},
			activations: []pimv1.ActivationRequest{accessAR("r1", arScope(pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}))},
			assignments: []pimv1.RoleAssignment{eligible}, allowed: true, reason: "r1"},
		{name: "and nothing else the role allows",
			attrs:       getPods("prod"),
			activations: []pimv1.ActivationRequest{accessAR("r1", arScope(pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}))},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "activate it with"},
		{name: "nor another name than its resourceNames",
			attrs:       getPods("prod"),
			activations: []pimv1.ActivationRequest{accessAR("r1", arScope(pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{"db"}}))},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "activate it with"},
		{name: "nor what its permissions name but the role no longer allows",
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "delete", Namespace: "prod", Resource: "pods", Name: "web"},
			activations: []pimv1.ActivationRequest{accessAR("r1", arScope(pimv1.PermissionRule{Verbs: []string{"delete"}, APIGroups: []string{""}, Resources: []string{"pods"}}))},
			assignments: []pimv1.RoleAssignment{eligible}},
		{name: "nor in another namespace",
			attrs:       getPods("dev"),
			activations: []pimv1.ActivationRequest{accessAR("r1", arScope(pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}))},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "activate it with"},
		{name: "hint: a pending reduced scope that would not allow it is not named",
			attrs: getPods("prod"),
			activations: []pimv1.ActivationRequest{accessAR("r1", arState(pimv1.ActivationStatePendingApproval), arScope(pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}),
				func(ar *pimv1.ActivationRequest) { ar.Status.ActivatedAt, ar.Status.ExpiresAt = nil, nil })},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "you are eligible for ClusterRole pod-debugger in namespace prod"},
		{name: "a role that does not exist grants nothing",
			attrs:       getPods("prod"),
			activations: []pimv1.ActivationRequest{accessAR("a1", arGrant(pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "gone"}, "prod"))},
			assignments: []pimv1.RoleAssignment{actRA("gone", raRole(pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "gone"}))}},
		{name: "someone else's activation does not count",
			user: &pimv1.UserInfo{Username: "mallory"}, attrs: getPods("prod"),
			activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible}},
		{name: "a request without a stamped requester does not count",
			attrs:       getPods("prod"),
			activations: []pimv1.ActivationRequest{accessAR("a1", func(ar *pimv1.ActivationRequest) { ar.Spec.Requester = nil })},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "activate it with"},
		{name: "until the second before expiresAt",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", arWindow(-time.Hour, time.Nanosecond))},
			assignments: []pimv1.RoleAssignment{eligible}, allowed: true},
		{name: "not at expiresAt, whatever the state says",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", arWindow(-time.Hour, 0))},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "you are eligible for ClusterRole pod-debugger in namespace prod"},
		{name: "a scheduled activation from activatedAt on",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", arState(pimv1.ActivationStateScheduled), arWindow(0, time.Hour))},
			assignments: []pimv1.RoleAssignment{eligible}, allowed: true},
		{name: "not before",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", arState(pimv1.ActivationStateScheduled), arWindow(time.Second, time.Hour))},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "your ActivationRequest a1 for ClusterRole pod-debugger in namespace prod, which allows this, is Scheduled"},
		{name: "not waiting for approval",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", arState(pimv1.ActivationStatePendingApproval), func(ar *pimv1.ActivationRequest) { ar.Status.ActivatedAt, ar.Status.ExpiresAt = nil, nil })},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "is PendingApproval"},
		{name: "not when ended",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", arState(pimv1.ActivationStateExpired))},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "activate it with"},
		{name: "not once deactivated, before the controller acts",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", arAnnotated(pimv1.AnnotationDeactivate))},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "activate it with"},
		{name: "not once cancelled",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", arAnnotated(pimv1.AnnotationCancel))},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "activate it with"},
		{name: "not once being deleted",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1", func(ar *pimv1.ActivationRequest) { ar.DeletionTimestamp = &deleted })},
			assignments: []pimv1.RoleAssignment{eligible}, reason: "activate it with"},
		{name: "not when the eligibility was removed",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1")},
			reason: "ActivationRequest a1 would allow this but does not count now: the eligibility it relied on has ended or was removed"},
		{name: "not when the eligibility ended",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1")},
			assignments: []pimv1.RoleAssignment{actRA("ended", raRole(podDebugger), raEnds(actTime(-time.Second)))}, reason: "has ended or was removed"},
		{name: "not when the eligibility is being deleted",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1")},
			assignments: []pimv1.RoleAssignment{actRA("going", raRole(podDebugger), func(ra *pimv1.RoleAssignment) { ra.DeletionTimestamp = &deleted })},
			reason:      "has ended or was removed"},
		{name: "an eligibility through a group the requester was in when admitted",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1")},
			assignments: []pimv1.RoleAssignment{actRA("devs", raRole(podDebugger), raSubject(pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "devs"}))}, allowed: true},
		{name: "not when the role's RoleSettings conflict",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible},
			settings: []pimv1.RoleSetting{setting("one", podDebugger), setting("two", podDebugger)},
			reason:   "governed by more than one RoleSetting (one, two)"},
		{name: "one RoleSetting is fine",
			attrs: getPods("prod"), activations: []pimv1.ActivationRequest{accessAR("a1")}, assignments: []pimv1.RoleAssignment{eligible},
			settings: []pimv1.RoleSetting{setting("one", podDebugger), setting("other", secretReader)}, allowed: true},
		{name: "the second of two activations allows",
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "list", Resource: "nodes"},
			activations: []pimv1.ActivationRequest{accessAR("a1"), accessAR("n1", arGrant(pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "node-reader"}, ""))},
			assignments: []pimv1.RoleAssignment{eligible, actRA("nodes", raRole(pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "node-reader"}))},
			allowed:     true, reason: "n1"},
		{name: "hint: a Role in its namespace, eligible through a group the user is in now",
			user:        &pimv1.UserInfo{Username: "bob", Groups: []string{"sre"}},
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "get", Namespace: "prod", Resource: "secrets", Name: "db"},
			assignments: []pimv1.RoleAssignment{eligibleSecrets},
			reason:      `you are eligible for Role secret-reader in namespace prod, which allows this; activate it with: kubectl pim activate secret-reader --kind Role -n prod --reason "..."`},
		{name: "no hint for another namespace than the eligibility's",
			user:        &pimv1.UserInfo{Username: "bob", Groups: []string{"sre"}},
			attrs:       rules.Attributes{ResourceRequest: true, Verb: "get", Namespace: "dev", Resource: "secrets", Name: "db"},
			assignments: []pimv1.RoleAssignment{eligibleSecrets}},
		{name: "no hint for an eligibility that has not started",
			attrs: getPods("prod"), assignments: []pimv1.RoleAssignment{actRA("later", raRole(podDebugger), raStarts(actTime(time.Hour)))}},
		{name: "no hint for an Active assignment (it has its binding)",
			attrs: getPods("prod"), assignments: []pimv1.RoleAssignment{actRA("standing", raRole(podDebugger), func(ra *pimv1.RoleAssignment) { ra.Spec.Type = pimv1.AssignmentActive })}},
		{name: "no hint for a role that would not allow it",
			attrs: rules.Attributes{ResourceRequest: true, Verb: "delete", Namespace: "prod", Resource: "pods"}, assignments: []pimv1.RoleAssignment{eligible}},
		{name: "hints name at most three roles",
			attrs: rules.Attributes{ResourceRequest: true, Verb: "get", Namespace: "prod", Resource: "pods"},
			assignments: []pimv1.RoleAssignment{eligible, actRA("n", raRole(pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "node-reader"})),
				actRA("n2", raRole(pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "node-reader"})), // the same role: once
				actRA("x", raRole(pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "x"})), actRA("y", raRole(pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "y"}))},
			reason: "and 1 more roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := alice
			if tt.user != nil {
				user = *tt.user
			}
			rs := map[RoleID][]rbacv1.PolicyRule{}
			for k, v := range accessRules {
				rs[k] = v
			}
			all := []rbacv1.PolicyRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}
			rs[RoleID{Kind: pimv1.RoleKindClusterRole, Name: "x"}], rs[RoleID{Kind: pimv1.RoleKindClusterRole, Name: "y"}] = all, all
			got := DecideAccess(AccessInput{Now: actNow, User: user, Attributes: tt.attrs, Activations: tt.activations,
				Assignments: tt.assignments, Settings: tt.settings, Rules: rs})
			if got.Allowed != tt.allowed {
				t.Errorf("allowed = %v, want %v (reason %q)", got.Allowed, tt.allowed, got.Reason)
			}
			if !tt.allowed && tt.reason == "" && got.Reason != "" {
				t.Errorf("reason = %q, want none", got.Reason)
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", got.Reason, tt.reason)
			}
			if len(got.Reason) > MaxAccessReason {
				t.Errorf("reason of %d bytes", len(got.Reason))
			}
		})
	}
}

func setting(name string, ref pimv1.RoleRef) pimv1.RoleSetting {
	return pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pimv1.RoleSettingSpec{RoleRef: SettingRoleRef(ref, "prod")}}
}

func TestDecideAccessReasonStaysBounded(t *testing.T) {
	var ars []pimv1.ActivationRequest
	var ras []pimv1.RoleAssignment
	for i := range 200 {
		ars = append(ars, accessAR(fmt.Sprintf("request-with-a-long-name-%d-%s", i, strings.Repeat("x", 200))))
	}
	got := DecideAccess(AccessInput{Now: actNow, User: actAlice, Attributes: getPods("prod"), Activations: ars, Assignments: ras, Rules: accessRules})
	if got.Allowed || len(got.Reason) > MaxAccessReason || !strings.Contains(got.Reason, "bytes cut") {
		t.Errorf("got %v, reason of %d bytes: %.200q", got.Allowed, len(got.Reason), got.Reason)
	}
}

func TestActivateCommand(t *testing.T) {
	for _, tt := range []struct {
		ref  pimv1.RoleRef
		ns   string
		want string
	}{
		{podDebugger, "", `kubectl pim activate pod-debugger --reason "..."`},
		{podDebugger, "prod", `kubectl pim activate pod-debugger -n prod --reason "..."`},
		{secretReader, "prod", `kubectl pim activate secret-reader --kind Role -n prod --reason "..."`},
	} {
		if got := ActivateCommand(tt.ref, tt.ns); got != tt.want {
			t.Errorf("ActivateCommand(%v, %q) = %q, want %q", tt.ref, tt.ns, got, tt.want)
		}
	}
}

func TestDecideAccessNamesTheEligibility(t *testing.T) {
	in := AccessInput{Now: actNow, User: pimv1.UserInfo{Username: "alice"}, Attributes: getPods("prod"),
		Activations: []pimv1.ActivationRequest{accessAR("a1")}, Rules: accessRules,
		Assignments: []pimv1.RoleAssignment{actRA("other-role", raRole(secretReader)), actRA("alice-pod-debugger", raRole(podDebugger))}}
	if got := DecideAccess(in); !got.Allowed || got.Activation != "a1" || got.Eligibility != "alice-pod-debugger" {
		t.Fatalf("DecideAccess = %+v, want a1 through alice-pod-debugger", got)
	}
}
