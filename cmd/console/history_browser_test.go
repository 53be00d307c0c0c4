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

var _ = Describe("Access history in a browser", Ordered, func() {
	It("draws who held db-admin as a timeline from the trail, each bar linking to its request; mallory is refused", func() {
		ctx := context.Background()
		from := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
		// frank is eligible and activates (no approval); group oncall is
		// actively assigned, and the assignment is then removed.
		objs := []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "db-admin"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}},
			&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "db-admin"}, Spec: pimv1.RoleSettingSpec{
				RoleRef:    pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "db-admin"},
				Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireJustification: ptr.To(true)},
				Assignment: pimv1.AssignmentPolicy{Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)},
					Active: pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(true)}},
			}},
			&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "frank-db-admin"}, Spec: pimv1.RoleAssignmentSpec{
				Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "frank"}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "db-admin"},
				Type: pimv1.AssignmentEligible}},
			&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "oncall-db-admin"}, Spec: pimv1.RoleAssignmentSpec{
				Subject: pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "oncall"}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "db-admin"},
				Namespace: "prod", Type: pimv1.AssignmentActive, Justification: "on-call rota"}},
		}
		for _, obj := range objs {
			Expect(env.Client.Create(ctx, obj)).To(Succeed())
		}
		Eventually(func() pimv1.AssignmentState {
			ra := &pimv1.RoleAssignment{}
			_ = env.Client.Get(ctx, client.ObjectKey{Name: "frank-db-admin"}, ra)
			return ra.Status.State
		}).Should(Equal(pimv1.AssignmentStateEligible))
		Eventually(func() pimv1.AssignmentState {
			ra := &pimv1.RoleAssignment{}
			_ = env.Client.Get(ctx, client.ObjectKey{Name: "oncall-db-admin"}, ra)
			return ra.Status.State
		}).Should(Equal(pimv1.AssignmentStateActive))
		Expect(env.Client.Delete(ctx, &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "oncall-db-admin"}})).To(Succeed())

		frank, err := client.New(env.ConfigAs("frank", nil, nil), client.Options{Scheme: env.Client.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: policy.RequestGenerateName("frank", "db-admin")},
			Spec: pimv1.ActivationRequestSpec{RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "db-admin"},
				Duration: metav1.Duration{Duration: 30 * time.Minute}, Justification: "<script>alert(1)</script> db failover",
				Ticket: &pimv1.Ticket{System: "jira", Number: "OPS-7"}}}
		Expect(frank.Create(ctx, ar)).To(Succeed())
		Eventually(func() pimv1.ActivationState { return getRequest(ar.Name).Status.State }).Should(Equal(pimv1.ActivationStateActive))
		Eventually(func() error {
			return env.Client.Get(ctx, client.ObjectKey{Name: "oncall-db-admin"}, &pimv1.RoleAssignment{})
		}).ShouldNot(Succeed(), "the removal is recorded once the finalizer ran")

		auditor := newTab("auditor")
		auditor.signIn()
		auditor.do(chromedp.Navigate(consoleURL+"/history"), chromedp.WaitVisible(chromedp.ID("history-filter")),
			chromedp.SetValue(chromedp.ID("role"), "db-admin"),
			chromedp.SetValue(chromedp.ID("from"), inputTime(from)),
			chromedp.SetValue(chromedp.ID("until"), inputTime(time.Now().UTC().Add(time.Minute))))
		auditor.clickAndLoad("#ask")
		Expect(auditor.text("#summary")).To(And(ContainSubstring("2 grants to 2 subjects"), ContainSubstring("kubectl pim audit who --role db-admin --from ")))
		// The timeline: an SVG drawn by the server, one row per subject.
		Expect(eval[int](auditor, `document.querySelectorAll("#timeline g.row").length`)).To(Equal(2))
		Expect(eval[string](auditor, `document.querySelector("#timeline g.row[data-who='User frank'] rect").getAttribute("class")`)).To(Equal("bar activation open"))
		Expect(eval[string](auditor, `document.querySelector("#timeline g.row[data-who='Group oncall'] rect").getAttribute("class")`)).To(Equal("bar assignment"))
		Expect(eval[int](auditor, `document.scripts.length`)).To(Equal(0), "no script on the page, and the justification's <script> is text")
		row := auditor.text(`#held tr[data-who="User frank"]`)
		Expect(row).To(And(ContainSubstring("<script>alert(1)</script> db failover"), ContainSubstring("jira:OPS-7"), ContainSubstring("Activation")))
		Expect(auditor.text(`#held tr[data-who="Group oncall"]`)).To(And(ContainSubstring("prod"), ContainSubstring("AssignmentRemoved"), ContainSubstring("on-call rota")))

		// "Who could act in staging?": frank's cluster-wide grant, not the
		// prod assignment.
		auditor.do(chromedp.SetValue(chromedp.ID("namespace"), "staging"))
		auditor.clickAndLoad("#ask")
		Expect(auditor.text("#summary")).To(ContainSubstring("1 grant to 1 subject"))

		// The bar is a link to the request: justification, ticket.
		frankBar := `#timeline g.row[data-who='User frank'] a`
		Expect(auditor.attr(frankBar, "href")).To(Equal("/requests/" + ar.Name))
		auditor.clickAndLoad(frankBar)
		Expect(eval[string](auditor, `location.pathname`)).To(Equal("/requests/" + ar.Name))
		Expect(auditor.text("main")).To(And(ContainSubstring("db failover"), ContainSubstring("OPS-7")))

		mallory := newTab("mallory")
		mallory.signIn()
		mallory.do(chromedp.Navigate(consoleURL+"/history?role=db-admin"), chromedp.WaitVisible(chromedp.ID("error")))
		Expect(mallory.text("#error")).To(ContainSubstring("You may not read kubepim's audit trail"))
		Expect(eval[bool](mallory, `document.getElementById("timeline") === null`)).To(BeTrue())
	})
})
