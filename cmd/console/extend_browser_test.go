package main

import (
	"context"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

var _ = Describe("Extend in a browser", Ordered, func() {
	It("lets bob extend his active request from My requests without a gap, and shows kubepim's refusal of too long an extension", func() {
		ctx := context.Background()
		objs := []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "queue-admin"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get"}}}},
			&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "queue-admin"}, Spec: pimv1.RoleSettingSpec{
				RoleRef:    pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "queue-admin"},
				Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireJustification: ptr.To(true)},
				Assignment: pimv1.AssignmentPolicy{Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)}},
			}},
			&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "bob-queue-admin"}, Spec: pimv1.RoleAssignmentSpec{
				Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "bob"}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "queue-admin"},
				Type: pimv1.AssignmentEligible}},
		}
		createAll(pimv1.AssignmentStateEligible, objs...)
		asBob, err := client.New(env.ConfigAs("bob", []string{"sre"}, nil), client.Options{Scheme: env.Client.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		old := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: policy.RequestGenerateName("bob", "queue-admin")},
			Spec: pimv1.ActivationRequestSpec{RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "queue-admin"},
				Duration: metav1.Duration{Duration: 10 * time.Minute}, Justification: "queue backlog", Ticket: &pimv1.Ticket{System: "jira", Number: "OPS-9"}}}
		Expect(asBob.Create(ctx, old)).To(Succeed())
		Eventually(func() pimv1.ActivationState { return getRequest(old.Name).Status.State }).Should(Equal(pimv1.ActivationStateActive))

		bob := newTab("bob")
		bob.signIn()
		bob.do(chromedp.Navigate(consoleURL+"/requests"), chromedp.WaitVisible(chromedp.ID("requests")))
		bob.clickAndLoad(`#requests tr[data-name="` + old.Name + `"] a.extend`)
		Expect(eval[string](bob, `location.pathname`)).To(Equal("/requests/" + old.Name))
		Expect(eval[string](bob, `document.getElementById("extend-ticket-number").value`)).To(Equal("OPS-9"), "the old request's ticket")

		// Longer than the policy allows: kubepim's webhook refuses.
		bob.do(chromedp.SetValue(chromedp.ID("extend-duration"), "5h"), chromedp.SendKeys(chromedp.ID("extend-justification"), "backlog still draining"))
		bob.clickAndLoad("#extend")
		Expect(bob.text("#flash")).To(ContainSubstring("1h"))
		Expect(eval[string](bob, `location.pathname`)).To(Equal("/requests/" + old.Name))

		bob.do(chromedp.SetValue(chromedp.ID("extend-duration"), "45m"), chromedp.SendKeys(chromedp.ID("extend-justification"), "backlog still draining"))
		bob.clickAndLoad("#extend")
		Expect(bob.text("#flash")).To(ContainSubstring("extends " + old.Name + " without a gap"))
		Expect(bob.text("#extends")).To(Equal(old.Name))
		name := bob.requestName()
		bob.waitText("#state", "Active")
		ext := getRequest(name)
		Expect(ext.Spec.Extends).To(Equal(old.Name))
		Expect(ext.Spec.Requester.Username).To(Equal("bob"))
		Expect(ext.Spec.Duration.Duration).To(Equal(45 * time.Minute))
		Expect(ext.Spec.Ticket.Number).To(Equal("OPS-9"))
		Eventually(func() pimv1.ActivationState { return getRequest(old.Name).Status.State }).Should(Equal(pimv1.ActivationStateExpired))
		Expect(allowed("bob", []string{"sre"}, "get", "services", "default")).To(BeTrue(), "no gap: the extension holds the role")
	})
})
