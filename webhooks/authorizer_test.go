package webhooks

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

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
