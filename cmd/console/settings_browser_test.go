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
)

var _ = Describe("Settings and Alerts in a browser", Ordered, func() {
	It("shows each RoleSetting in words and as YAML, marks one Argo CD applies as managed in Git, and lists the raised alerts with their cause", func() {
		ctx := context.Background()
		objs := []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ops-everything"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}},
			&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "ops-everything",
				Labels:      map[string]string{"app.kubernetes.io/instance": "platform-pim"},
				Annotations: map[string]string{"argocd.argoproj.io/tracking-id": "platform-pim:kubepim.io/RoleSetting:/ops-everything"}},
				Spec: pimv1.RoleSettingSpec{
					RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "ops-everything"},
					Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: 2 * time.Hour}, RequireJustification: ptr.To(true), RequireTicket: true,
						Approval: pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 2, Timeout: metav1.Duration{Duration: 30 * time.Minute},
							Approvers: []pimv1.Principal{{Kind: pimv1.SubjectKindGroup, Name: "ops-leads"}}}},
					Assignment: pimv1.AssignmentPolicy{Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(false), MaxDuration: &metav1.Duration{Duration: 90 * 24 * time.Hour}},
						Active: pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(false), RequireJustification: true}},
					Notifications: pimv1.NotificationPolicy{Admins: pimv1.NotificationAudience{Emails: []string{"platform@example.com"}, Channels: []string{"ops-slack"}}},
				}},
		}
		for _, obj := range objs {
			Expect(env.Client.Create(ctx, obj)).To(Succeed())
		}
		Eventually(func() []pimv1.Alert {
			rs := &pimv1.RoleSetting{}
			_ = env.Client.Get(ctx, client.ObjectKey{Name: "ops-everything"}, rs)
			return rs.Status.Alerts
		}).ShouldNot(BeEmpty())

		bob := newTab("bob")
		bob.signIn()
		bob.do(chromedp.Navigate(consoleURL+"/settings"), chromedp.WaitVisible(chromedp.ID("rs-ops-everything")))
		Expect(bob.text("#git-ops-everything")).To(And(ContainSubstring("Managed in Git"), ContainSubstring("Argo CD application platform-pim")))
		Expect(eval[bool](bob, `document.getElementById("git-pod-debugger") === null`)).To(BeTrue(), "pod-debugger carries no GitOps mark")
		Expect(bob.text("#rs-ops-everything .activation")).To(And(ContainSubstring("at most 2h"), ContainSubstring("ticket required"),
			ContainSubstring("MFA not required"), ContainSubstring("2 approvals from group ops-leads"), ContainSubstring("within 30m")))
		Expect(bob.text("#rs-ops-everything .eligible")).To(Equal("must end, at most 90d"))
		Expect(bob.text("#rs-ops-everything .active")).To(Equal("must end, justification required"))
		Expect(bob.text("#rs-ops-everything .notifications")).To(And(ContainSubstring("admins: platform@example.com, channel ops-slack"),
			ContainSubstring("approvalNeeded")))
		Expect(bob.text("#rs-ops-everything .alerts")).To(ContainSubstring("1 raised"))
		yamlText := eval[string](bob, `document.getElementById("yaml-ops-everything").textContent`)
		Expect(yamlText).To(And(ContainSubstring("kind: RoleSetting"), ContainSubstring("argocd.argoproj.io/tracking-id"), ContainSubstring("requiredApprovals: 2")))
		Expect(yamlText).NotTo(ContainSubstring("managedFields"))

		bob.do(chromedp.Navigate(consoleURL+"/alerts"), chromedp.WaitVisible(chromedp.ID("alerts")))
		row := bob.text(`#alerts tr[data-setting="ops-everything"][data-type="RoleNotRequiringMFA"]`)
		Expect(row).To(And(ContainSubstring("ClusterRole ops-everything"), ContainSubstring("does not require MFA"), ContainSubstring("Git")))
		bob.clickAndLoad(`#alerts tr[data-setting="ops-everything"] a`)
		Expect(eval[string](bob, `location.hash`)).To(Equal("#rs-ops-everything"))
	})
})
