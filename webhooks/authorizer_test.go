package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestAccessAuthorizer(t *testing.T) {
	debugger := pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pod-debugger"}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-debugger"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
	eligibleAlice := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "alice", UID: "ra-alice", CreationTimestamp: metav1.NewTime(testNow.Add(-time.Hour))},
		Spec: pimv1.RoleAssignmentSpec{Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"}, RoleRef: debugger, Type: pimv1.AssignmentEligible}}
	eligibleDevs := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "devs", UID: "ra-devs", CreationTimestamp: metav1.NewTime(testNow.Add(-time.Hour))},
		Spec: pimv1.RoleAssignmentSpec{Subject: pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "devs"}, RoleRef: debugger, Namespace: "dev", Type: pimv1.AssignmentEligible}}
	from, to := metav1.NewTime(testNow.Add(-time.Minute)), metav1.NewTime(testNow.Add(time.Minute))
	active := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "alice-prod"},
		Spec:   pimv1.ActivationRequestSpec{RoleRef: debugger, Namespace: "prod", Requester: &pimv1.UserInfo{Username: "alice"}},
		Status: pimv1.ActivationRequestStatus{State: pimv1.ActivationStateActive, ActivatedAt: &from, ExpiresAt: &to}}
	a := &accessAuthorizer{cache: fakeClient(role, eligibleAlice, eligibleDevs, active), clock: clocktesting.NewFakePassiveClock(testNow), log: logr.Discard()}

	post := func(body string) (*httptest.ResponseRecorder, authorizationv1.SubjectAccessReview) {
		t.Helper()
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(http.MethodPost, AuthorizerPath, strings.NewReader(body)))
		var got authorizationv1.SubjectAccessReview
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %q: %v", w.Body.String(), err)
			}
		}
		return w, got
	}
	ask := func(user string, groups []string, verb, ns string) authorizationv1.SubjectAccessReview {
		t.Helper()
		raw, _ := json.Marshal(authorizationv1.SubjectAccessReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: "pods", Namespace: ns}}})
		w, got := post(string(raw))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		if got.APIVersion != "authorization.k8s.io/v1" || got.Kind != "SubjectAccessReview" {
			t.Errorf("answered as %s %s", got.APIVersion, got.Kind)
		}
		if got.Status.Denied {
			t.Error("kubepim never denies")
		}
		return got
	}

	if got := ask("alice", nil, "get", "prod"); !got.Status.Allowed || !strings.Contains(got.Status.Reason, "allowed by ActivationRequest alice-prod") {
		t.Errorf("alice in prod: %+v", got.Status)
	}
	if got := ask("alice", nil, "get", "staging"); got.Status.Allowed || !strings.Contains(got.Status.Reason, "kubectl pim activate pod-debugger -n staging") {
		t.Errorf("alice in staging: %+v", got.Status)
	}
	if got := ask("bob", []string{"devs"}, "get", "dev"); got.Status.Allowed || !strings.Contains(got.Status.Reason, "kubectl pim activate pod-debugger -n dev") {
		t.Errorf("bob (devs) in dev: %+v", got.Status)
	}
	if got := ask("bob", []string{"devs"}, "get", "prod"); got.Status.Allowed || got.Status.Reason != "" {
		t.Errorf("bob (devs) in prod: %+v", got.Status)
	}
	if got := ask("alice", nil, "delete", "prod"); got.Status.Allowed || got.Status.Reason != "" {
		t.Errorf("alice deleting: %+v", got.Status)
	}
	if got := ask("", nil, "get", "prod"); got.Status.Allowed {
		t.Errorf("no user: %+v", got.Status)
	}

	for _, bad := range []string{"not json", `{"apiVersion":"authorization.k8s.io/v1beta1","kind":"SubjectAccessReview"}`, `{"apiVersion":"v1","kind":"Pod"}`} {
		if w, _ := post(bad); w.Code != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", bad, w.Code)
		}
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest(http.MethodGet, AuthorizerPath, nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", w.Code)
	}
}

// The eligibility an activation relies on is read by the requester's
// subjects (name, the groups stamped on the request, ServiceAccount), not
// by role: each of those must still count, and only those.
func TestAccessAuthorizerEligibilityBySubject(t *testing.T) {
	debugger := pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pod-debugger"}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-debugger"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
	created := metav1.NewTime(testNow.Add(-time.Hour))
	eligible := func(name string, s pimv1.Subject) *pimv1.RoleAssignment {
		return &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name), CreationTimestamp: created},
			Spec: pimv1.RoleAssignmentSpec{Subject: s, RoleRef: debugger, Type: pimv1.AssignmentEligible}}
	}
	from, to := metav1.NewTime(testNow.Add(-time.Minute)), metav1.NewTime(testNow.Add(time.Minute))
	active := func(name string, requester pimv1.UserInfo) *pimv1.ActivationRequest {
		return &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:   pimv1.ActivationRequestSpec{RoleRef: debugger, Namespace: "prod", Requester: &requester},
			Status: pimv1.ActivationRequestStatus{State: pimv1.ActivationStateActive, ActivatedAt: &from, ExpiresAt: &to}}
	}
	sa := "system:serviceaccount:ci:deployer"
	objs := []client.Object{role,
		eligible("devs", pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "devs"}),
		eligible("deployer", pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Namespace: "ci", Name: "deployer"}),
		eligible("carol", pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "carol"}),
		// bob's request was stamped with the group devs; dave's was not
		// (he joined it later); erin's eligibility is another user's.
		active("bob-prod", pimv1.UserInfo{Username: "bob", Groups: []string{"devs"}}),
		active("dave-prod", pimv1.UserInfo{Username: "dave"}),
		active("deployer-prod", pimv1.UserInfo{Username: sa}),
		active("erin-prod", pimv1.UserInfo{Username: "erin"}),
	}
	for i := range 50 { // others eligible for the same role do not matter
		objs = append(objs, eligible(fmt.Sprintf("other-%d", i), pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: fmt.Sprintf("other-%d", i)}))
	}
	a := &accessAuthorizer{cache: fakeClient(objs...), clock: clocktesting.NewFakePassiveClock(testNow), log: logr.Discard()}
	for _, c := range []struct {
		user   string
		groups []string
		want   bool
	}{
		{"bob", []string{"devs"}, true},
		{"bob", nil, true}, // the stamped groups count, as the controller judges
		{"dave", []string{"devs"}, false},
		{sa, nil, true},
		{"erin", nil, false},
	} {
		d, err := a.decide(context.Background(), authorizationv1.SubjectAccessReviewSpec{User: c.user, Groups: c.groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: "prod"}})
		if err != nil || d.Allowed != c.want {
			t.Errorf("%s %v: allowed %v (%s), %v; want %v", c.user, c.groups, d.Allowed, d.Reason, err, c.want)
		}
	}
}
