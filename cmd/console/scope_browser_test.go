package main

import (
	"net/url"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var _ = Describe("Reduced scope in a browser", Ordered, func() {
	It("lets bob activate part of a role, shows it on the request, grants only that, and shows kubepim's refusal of more than the role", func() {
		objs := []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "crash-log-reader"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}, Verbs: []string{"get", "list"}}}},
			&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "crash-log-reader"}, Spec: pimv1.RoleSettingSpec{
				RoleRef:    pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "crash-log-reader"},
				Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireJustification: ptr.To(true)},
				Assignment: pimv1.AssignmentPolicy{Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)}},
			}},
			&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "bob-crash-log-reader"}, Spec: pimv1.RoleAssignmentSpec{
				Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "bob"}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "crash-log-reader"},
				Type: pimv1.AssignmentEligible}},
		}
		createAll(pimv1.AssignmentStateEligible, objs...)

		bob := newTab("bob")
		bob.signIn()
		form := consoleURL + "/activate?" + url.Values{"kind": {"ClusterRole"}, "role": {"crash-log-reader"}}.Encode()
		bob.do(chromedp.Navigate(form), chromedp.WaitVisible(chromedp.ID("activate")))

		By("asking for a verb the role does not have: kubepim's webhook refuses, naming it, and the form keeps what was typed")
		fill(bob, map[string]string{"namespace": "prod", "duration": "30m", "justification": "read the crash log",
			"verbs": "get,delete", "resources": "pods/log"})
		bob.clickAndLoad("#submit")
		Expect(bob.text("#error")).To(And(ContainSubstring("delete"), ContainSubstring("pods/log")))
		Expect(eval[string](bob, `document.getElementById("verbs").value`)).To(Equal("get,delete"))

		By("asking for get on pods/log only")
		fill(bob, map[string]string{"namespace": "prod", "duration": "30m", "justification": "read the crash log", "verbs": "get", "resources": "pods/log"})
		bob.clickAndLoad("#submit")
		name := bob.requestName()
		Expect(bob.text(".permissions")).To(ContainSubstring("reduced scope:"))
		Expect(bob.text(".permissions li")).To(Equal("get pods/log"))
		bob.waitText("#state", "Active")
		ar := getRequest(name)
		Expect(ar.Spec.Permissions).To(Equal([]pimv1.PermissionRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}}}))

		Expect(allowed("bob", []string{"sre"}, "get", "pods/log", "prod")).To(BeTrue(), "the subset asked for")
		Expect(allowed("bob", []string{"sre"}, "get", "pods", "prod")).To(BeFalse(), "the rest of the role is not granted")
		Expect(allowed("bob", []string{"sre"}, "list", "pods/log", "prod")).To(BeFalse())
		Expect(allowed("bob", []string{"sre"}, "get", "pods/log", "default")).To(BeFalse(), "only in the namespace asked for")
	})
})
