package policy

import (
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestIsPowerful(t *testing.T) {
	cases := []struct {
		name  string
		rules []rbacv1.PolicyRule
		want  bool
	}{
		{"read pods", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}, false},
		{"any verb", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"*"}}}, true},
		{"any resource", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"*"}, Verbs: []string{"get"}}}, true},
		{"bind", []rbacv1.PolicyRule{{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"}}}, true},
		{"escalate", []rbacv1.PolicyRule{{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles"}, Verbs: []string{"escalate"}}}, true},
		{"impersonate", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"users"}, Verbs: []string{"impersonate"}}}, true},
		{"no rules (role missing)", nil, false},
	}
	for _, tc := range cases {
		if got := IsPowerful(tc.rules); got != tc.want {
			t.Errorf("%s: IsPowerful = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEvaluateAlerts(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	eligible := func(name, user string, since time.Duration) pimv1.RoleAssignment {
		ra := pimv1.RoleAssignment{Spec: pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentEligible, Subject: pimv1.Subject{Kind: "User", Name: user}}}
		ra.Name, ra.Status.State = name, pimv1.AssignmentStateEligible
		ra.CreationTimestamp = metav1.NewTime(now.Add(-since))
		return ra
	}
	permanent := func(user string) pimv1.RoleAssignment {
		return pimv1.RoleAssignment{Spec: pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentActive, Subject: pimv1.Subject{Kind: "User", Name: user}}}
	}
	activation := func(user string, ago time.Duration) pimv1.ActivationRequest {
		return pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Requester: &pimv1.UserInfo{Username: user}},
			Status: pimv1.ActivationRequestStatus{ActivatedAt: &metav1.Time{Time: now.Add(-ago)}}}
	}
	day := 24 * time.Hour
	cases := []struct {
		name    string
		in      AlertInput
		want    []string
		message string
	}{
		{name: "quiet", in: AlertInput{}, want: nil},
		{name: "outside binding", in: AlertInput{OutsideBindings: []string{"ClusterRoleBinding ops"}},
			want: []string{pimv1.AlertAssignedOutsidePIM}, message: "ClusterRoleBinding ops"},
		{name: "powerful role without MFA", in: AlertInput{Rules: []rbacv1.PolicyRule{{Resources: []string{"*"}, Verbs: []string{"*"}}}},
			want: []string{pimv1.AlertRoleNotRequiringMFA}},
		{name: "powerful role with MFA", in: AlertInput{Rules: []rbacv1.PolicyRule{{Resources: []string{"*"}, Verbs: []string{"*"}}},
			Setting: pimv1.RoleSettingSpec{Activation: pimv1.ActivationPolicy{RequireMFA: true}}}, want: nil},
		{name: "two permanent is the default limit", in: AlertInput{Assignments: []pimv1.RoleAssignment{permanent("a"), permanent("b")}}, want: nil},
		{name: "three permanent", in: AlertInput{Assignments: []pimv1.RoleAssignment{permanent("a"), permanent("b"), permanent("c")}},
			want: []string{pimv1.AlertTooManyPermanentActive}, message: "3 permanent active assignments"},
		{name: "eligible for 100 days, never used", in: AlertInput{Assignments: []pimv1.RoleAssignment{eligible("idle", "alice", 100*day)}},
			want: []string{pimv1.AlertUnusedEligibility}, message: "idle"},
		{name: "eligible for 100 days, used last week", in: AlertInput{Assignments: []pimv1.RoleAssignment{eligible("used", "alice", 100*day)},
			Activations: []pimv1.ActivationRequest{activation("alice", 7*day)}}, want: nil},
		{name: "eligible for 10 days", in: AlertInput{Assignments: []pimv1.RoleAssignment{eligible("new", "alice", 10*day)}}, want: nil},
		{name: "six activations in a day", in: AlertInput{Activations: []pimv1.ActivationRequest{
			activation("bob", time.Hour), activation("bob", 2*time.Hour), activation("bob", 3*time.Hour),
			activation("bob", 4*time.Hour), activation("bob", 5*time.Hour), activation("bob", 6*time.Hour)}},
			want: []string{pimv1.AlertFrequentActivation}, message: "bob (6)"},
		{name: "five activations in a day is the limit", in: AlertInput{Activations: []pimv1.ActivationRequest{
			activation("bob", time.Hour), activation("bob", 2*time.Hour), activation("bob", 3*time.Hour),
			activation("bob", 4*time.Hour), activation("bob", 5*time.Hour), activation("bob", 2*day)}}, want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now = now
			got := EvaluateAlerts(tc.in)
			var types []string
			for _, a := range got {
				types = append(types, a.Type)
			}
			if strings.Join(types, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("alerts = %v, want %v", types, tc.want)
			}
			if tc.message != "" && !strings.Contains(got[0].Message, tc.message) {
				t.Fatalf("message %q does not mention %q", got[0].Message, tc.message)
			}
		})
	}
}
