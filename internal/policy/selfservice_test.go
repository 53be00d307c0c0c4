package policy

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestAwaitsDecisionBy(t *testing.T) {
	p := pimv1.ApprovalPolicy{Required: true, Approvers: []pimv1.Principal{{Kind: pimv1.SubjectKindGroup, Name: "leads"}, {Kind: pimv1.SubjectKindUser, Name: "carol"}}}
	pending := &pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Requester: &pimv1.UserInfo{Username: "bob"}},
		Status: pimv1.ActivationRequestStatus{State: pimv1.ActivationStatePendingApproval}}
	decided := pending.DeepCopy()
	decided.Status.Approvals = []pimv1.ApprovalRecord{{Approver: pimv1.UserInfo{Username: "carol"}, Decision: pimv1.DecisionApprove}}
	active := pending.DeepCopy()
	active.Status.State = pimv1.ActivationStateActive
	for _, tc := range []struct {
		name string
		ar   *pimv1.ActivationRequest
		user pimv1.UserInfo
		want bool
	}{
		{"named approver", pending, pimv1.UserInfo{Username: "carol"}, true},
		{"through a group", pending, pimv1.UserInfo{Username: "dave", Groups: []string{"leads"}}, true},
		{"not an approver", pending, pimv1.UserInfo{Username: "mallory"}, false},
		{"the requester, even in the group", pending, pimv1.UserInfo{Username: "bob", Groups: []string{"leads"}}, false},
		{"decided already", decided, pimv1.UserInfo{Username: "carol"}, false},
		{"another approver after one decided", decided, pimv1.UserInfo{Username: "dave", Groups: []string{"leads"}}, true},
		{"not waiting", active, pimv1.UserInfo{Username: "carol"}, false},
	} {
		if got := AwaitsDecisionBy(tc.ar, p, tc.user); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestSettingForAndDefaults(t *testing.T) {
	role := pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: "secret-reader"}
	settings := []pimv1.RoleSetting{
		{ObjectMeta: metav1.ObjectMeta{Name: "prod"}, Spec: pimv1.RoleSettingSpec{RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindRole, Name: "secret-reader", Namespace: "prod"},
			Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: 30 * time.Minute}}}},
	}
	spec, err := SettingFor(settings, role, "prod")
	if err != nil || spec.Activation.MaxDuration.Duration != 30*time.Minute {
		t.Fatalf("prod: %v %v", spec.Activation.MaxDuration, err)
	}
	if d := DefaultActivationDuration(spec.Activation); d != 30*time.Minute {
		t.Errorf("default duration under a 30m maximum: %v", d)
	}
	spec, err = SettingFor(settings, role, "dev")
	if err != nil || spec.Activation.MaxDuration != DefaultRoleSettingSpec().Activation.MaxDuration {
		t.Fatalf("dev has the defaults: %v %v", spec.Activation.MaxDuration, err)
	}
	if d := DefaultActivationDuration(spec.Activation); d != time.Hour {
		t.Errorf("default duration: %v", d)
	}
	settings = append(settings, *settings[0].DeepCopy())
	settings[1].Name = "prod-2"
	if _, err := SettingFor(settings, role, "prod"); err == nil {
		t.Fatal("two settings of one role must conflict")
	}
	if g := RequestGenerateName("Alice@Example.com", "pod-debugger"); g != "alice-example-com-pod-debugger-" {
		t.Errorf("generateName %q", g)
	}
	if !MFAClaimed(map[string][]string{"kubepim.io/amr": {"pwd", "otp"}}, "kubepim.io/amr", []string{"mfa", "otp"}) ||
		MFAClaimed(map[string][]string{"kubepim.io/amr": {"pwd"}}, "kubepim.io/amr", []string{"mfa", "otp"}) {
		t.Error("MFAClaimed")
	}
}
