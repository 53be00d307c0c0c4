package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/test/kubepimtest"
)

var _ = Describe("Assignments in a browser", Ordered, func() {
	It("lets carol, a platform admin, add and remove an assignment; the escalation guard and RBAC refuse what they must", func() {
		ctx := context.Background()
		permanent := pimv1.AssignmentPolicy{Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)},
			Active: pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(true)}}
		objs := []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cache-reader"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}},
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "vault-admin"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"*"}}}},
			// platform-leads hold what cache-reader allows (so they may grant
			// it), not what vault-admin allows.
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "cache-user"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}}}},
		}
		for _, name := range []string{"cache-reader", "vault-admin"} {
			objs = append(objs, &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pimv1.RoleSettingSpec{
				RoleRef:    pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: name},
				Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}},
				Assignment: permanent}})
		}
		for _, obj := range objs {
			Expect(env.Client.Create(ctx, obj)).To(Succeed())
		}
		for _, role := range []string{kubepimtest.RoleAdmin, "cache-user"} {
			unbind, err := env.Bind(role, rbacv1.GroupKind, "platform-leads")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(unbind)
		}

		carol := newTab("carol")
		carol.signIn()
		carol.do(chromedp.Navigate(consoleURL+"/assignments?role=cache-reader"), chromedp.WaitVisible(chromedp.ID("add-assignment")))
		Expect(carol.text("#total")).To(Equal("0 assignments."))
		Expect(eval[bool](carol, `document.getElementById("may-not-write") === null`)).To(BeTrue(), "carol may create assignments")
		end := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Second)
		fill(carol, map[string]string{"type": "Active", "subject": "grace", "namespace": "prod", "end": inputTime(end),
			"justification": "cache warm-up for the migration"})
		carol.clickAndLoad("#add")
		Expect(carol.text("#flash")).To(And(ContainSubstring("created"), ContainSubstring("User grace is active for")))
		var ra pimv1.RoleAssignment
		Eventually(func(g Gomega) {
			var list pimv1.RoleAssignmentList
			g.Expect(env.Client.List(ctx, &list)).To(Succeed())
			found := false
			for _, item := range list.Items {
				if item.Spec.RoleRef.Name == "cache-reader" && item.Spec.Subject.Name == "grace" {
					ra, found = item, true
				}
			}
			g.Expect(found).To(BeTrue())
			g.Expect(ra.Status.State).To(Equal(pimv1.AssignmentStateActive))
		}).Should(Succeed())
		Expect(ra.Spec.AssignedBy.Username).To(Equal("carol"), "stamped by kubepim's webhook from the user's own token")
		Expect(ra.Spec.Namespace).To(Equal("prod"))
		Expect(ra.Spec.EndTime.Time).To(BeTemporally("==", end))
		Expect(ra.Spec.Justification).To(Equal("cache warm-up for the migration"))
		Eventually(func() bool { return allowed("grace", nil, "get", "configmaps", "prod") }).Should(BeTrue())
		carol.do(chromedp.Navigate(consoleURL+"/assignments?role=cache-reader"), chromedp.WaitVisible(chromedp.ID("add-assignment")))
		Expect(carol.text(`tr[data-name="` + ra.Name + `"]`)).To(And(ContainSubstring("User grace"), ContainSubstring("Active"), ContainSubstring("carol")))

		// The escalation guard: carol may not bind vault-admin, nor does she
		// hold what it allows. kubepim's webhook says so; nothing is created.
		fill(carol, map[string]string{"subject": "grace", "role": "vault-admin"})
		carol.clickAndLoad("#add")
		Expect(carol.text("#error")).To(And(ContainSubstring("carol may not grant"), ContainSubstring("vault-admin"), ContainSubstring(`verb "bind"`)))
		Expect(eval[string](carol, `document.getElementById("role").value`)).To(Equal("vault-admin"), "the form keeps what was typed")

		// Remove: kubepim revokes the binding.
		carol.do(chromedp.Navigate(consoleURL+"/assignments?role=cache-reader"), chromedp.WaitVisible(chromedp.ID("add-assignment")))
		carol.clickAndLoad("#remove-" + ra.Name)
		Expect(carol.text("#flash")).To(ContainSubstring("Assignment " + ra.Name + " removed"))
		Eventually(func() bool {
			return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKey{Name: ra.Name}, &pimv1.RoleAssignment{}))
		}).Should(BeTrue())
		Eventually(func() bool { return allowed("grace", nil, "get", "configmaps", "prod") }).Should(BeFalse())

		// mallory is no admin: as a requester she may read assignments, but
		// RBAC refuses her creating or removing one, and the page says so.
		mallory := newTab("mallory")
		mallory.signIn()
		mallory.do(chromedp.Navigate(consoleURL+"/assignments"), chromedp.WaitVisible(chromedp.ID("add-assignment")))
		Expect(mallory.text("#may-not-write")).To(ContainSubstring("does not let you create RoleAssignments"))
		fill(mallory, map[string]string{"subject": "mallory", "role": "cache-reader"})
		mallory.clickAndLoad("#add")
		Expect(mallory.text("#error")).To(And(ContainSubstring("The assignment was refused"), ContainSubstring(`User "mallory" cannot create resource "roleassignments"`)))
		mallory.do(chromedp.Navigate(consoleURL+"/assignments?role=pod-debugger"), chromedp.WaitVisible(chromedp.ID("add-assignment")))
		mallory.clickAndLoad("#remove-alice-pod-debugger")
		Expect(mallory.text("#flash")).To(ContainSubstring(`User "mallory" cannot delete resource "roleassignments"`))
		Expect(env.Client.Get(ctx, client.ObjectKey{Name: "alice-pod-debugger"}, &pimv1.RoleAssignment{})).To(Succeed())
	})

	It("pages through a role's assignments with next and previous links, without JavaScript", func() {
		ctx := context.Background()
		// Nine assignments of one role (named so that the API's order is
		// theirs), and one of another role that the filter leaves out.
		Expect(env.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pager-role"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}}})).To(Succeed())
		var names []string
		for i := 1; i <= 9; i++ {
			ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pager-%02d", i)}, Spec: pimv1.RoleAssignmentSpec{
				Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: fmt.Sprintf("pager-user-%02d", i)},
				RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pager-role"}, Type: pimv1.AssignmentEligible,
				Justification: "paging"}}
			Expect(env.Client.Create(ctx, ra)).To(Succeed())
			names = append(names, ra.Name)
			DeferCleanup(func() { _ = env.Client.Delete(context.Background(), ra) })
		}
		unbind, err := env.Bind(kubepimtest.RoleAdmin, rbacv1.GroupKind, "platform-leads")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(unbind)

		carol := newTab("carol")
		carol.signIn()
		// No script from here on: the links alone page.
		_, err = chromedp.Call(carol.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			_, _ = chromedp.Call(carol.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
		})
		rows := func() []string {
			return strings.Fields(eval[string](carol, `Array.from(document.querySelectorAll("tr[data-name]")).map(e => e.dataset.name).join(" ")`))
		}
		carol.do(chromedp.Navigate(consoleURL+"/assignments?role=pager-role"), chromedp.WaitVisible(chromedp.ID("next-page")))
		Expect(rows()).To(Equal(names[0:4]))
		Expect(carol.text("#total")).To(Equal("4 assignments on this page."))
		Expect(eval[bool](carol, `document.getElementById("previous-page") === null`)).To(BeTrue(), "no previous page on the first")
		carol.followLink("#next-page")
		Expect(rows()).To(Equal(names[4:8]))
		Expect(carol.attr("#previous-page", "href")).To(Equal("/assignments?role=pager-role"))
		carol.followLink("#next-page")
		Expect(rows()).To(Equal(names[8:9]))
		Expect(carol.text("#last-page")).To(Equal("Last page."))
		Expect(carol.text("#total")).To(Equal("1 assignment on this page."))
		carol.followLink("#previous-page")
		Expect(rows()).To(Equal(names[4:8]), "previous goes back one page")
		carol.followLink("#previous-page")
		Expect(rows()).To(Equal(names[0:4]))
		Expect(eval[bool](carol, `document.getElementById("first-page") === null`)).To(BeTrue(), "back on the first page")
	})
})

// followLink clicks a link and waits until the browser shows the page it
// leads to (its href, absolute): no script of the page is needed.
func (t *tab) followLink(sel string) {
	GinkgoHelper()
	href := eval[string](t, `document.querySelector(`+jsString(sel)+`).href`)
	t.do(chromedp.Click(chromedp.CSS(sel)))
	Eventually(func() bool {
		ctx, cancel := context.WithTimeout(t.ctx, 3*time.Second)
		defer cancel()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil || loc != href {
			return false
		}
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete"`))
		return err == nil && done
	}).WithTimeout(30 * time.Second).Should(BeTrue())
}
