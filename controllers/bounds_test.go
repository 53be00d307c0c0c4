package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/notify"
	"github.com/kubepim/kubepim/internal/policy"
)

// createAll creates objs with a few writers at once.
func createAll(objs []client.Object) {
	GinkgoHelper()
	var wg sync.WaitGroup
	errs := make(chan error, len(objs))
	work := make(chan client.Object)
	for range 8 {
		wg.Go(func() {
			for o := range work {
				if err := k8s.Create(context.Background(), o); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
}

// Every list kubepim keeps in one object holds at its bound and says what
// it cut past it (docs/architecture.md, "Bounded lists").
var _ = Describe("Bounded lists", func() {
	ctx := context.Background()

	It("keeps an AssignedOutsidePIM alert over 500 outside bindings to five names and a count", func() {
		// 500 bindings prove the bound (five names, then "and N more")
		// on a real API server; each is recorded in the trail once, about
		// 11-15 ms apiece on 2 cores (2,000 took 26 s), so more would
		// only slow the suite. The pure test TestAlertsStayBounded takes
		// it to 50,000.
		const n = 500
		role := uniq("crowded")
		clusterRoleFor(role, "pods", "get")
		rs := roleSetting(uniq("crowded-policy"), role)
		rs.Spec.Activation.RequireMFA = true
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())

		label := map[string]string{"test.kubepim.io/crowd": role}
		var bindings []client.Object
		for i := range n {
			bindings = append(bindings, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%04d", role, i), Labels: label},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("outsider-%d", i)}}})
		}
		start := time.Now()
		createAll(bindings)
		DeferCleanup(func() {
			_ = k8s.DeleteAllOf(ctx, &rbacv1.ClusterRoleBinding{}, client.MatchingLabels(label))
			_ = k8s.Delete(ctx, rs)
		})
		created := time.Since(start)
		Eventually(func() string {
			got := getSetting(rs)
			for _, a := range got.Status.Alerts {
				if a.Type == pimv1.AlertAssignedOutsidePIM {
					return a.Message
				}
			}
			return ""
		}, "2m").Should(SatisfyAll(
			HavePrefix(fmt.Sprintf("%d binding(s) grant this role outside kubepim: ClusterRoleBinding %s-0000, ", n, role)),
			ContainSubstring(fmt.Sprintf("ClusterRoleBinding %s-0004, and %d more; ", role, n-policy.MaxNamesShown)),
			WithTransform(func(s string) int { return len(s) }, BeNumerically("<=", policy.MaxAlertMessageLength)),
		))
		AddReportEntry("outside bindings", fmt.Sprintf("%d created in %s; alert counting them all after %s", n, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond)))
	})

	It("records an outside binding with 5,000 subjects, made by its holder, and removes it: the trail names 20 and counts the rest", func() {
		crown := uniq("crown")
		clusterRoleFor(crown, "secrets", "get")
		mallory := uniq("mallory")
		activatedBinder(mallory, crown)
		rs := roleSetting(uniq("crown-policy"), crown)
		enforce := true
		rs.Spec.Alerts.RemoveOutsideBindings = &enforce
		rs.Spec.Activation.RequireMFA = true
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())

		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: uniq("everyone")},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: crown}}
		for i := range 5000 {
			b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("%s-friend-%04d", mallory, i)})
		}
		Expect(as(mallory, nil, nil).Create(ctx, b)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, b) })
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(b), &rbacv1.ClusterRoleBinding{}))
		}, "30s").Should(BeTrue())
		var removed *pimv1.AuditEvent
		Eventually(func() *pimv1.AuditEvent {
			for _, ev := range eventsAbout(string(getSetting(rs).UID)) {
				if ev.Spec.Action == pimv1.AuditOutsideBindingRemoved {
					removed = &ev
				}
			}
			return removed
		}).ShouldNot(BeNil())
		subjects := removed.Spec.Details["subjects"]
		Expect(subjects).To(HavePrefix("User " + mallory + "-friend-0000, "))
		Expect(subjects).To(HaveSuffix(fmt.Sprintf("User %s-friend-0019, and 4980 more", mallory)))
	})

	It("refuses a request created padded past 32 KiB of annotations, and a cancel or deactivation reason past 1 KiB", func() {
		requester := uniq("padder")
		role, _ := eligibleFor(user(requester), nil)
		padded := activation(uniq("padded"), role, time.Hour, "on call")
		padded.Annotations = map[string]string{"example.com/pad": strings.Repeat("p", 40<<10)}
		Expect(as(requester, nil, nil).Create(ctx, padded)).To(MatchError(ContainSubstring("keep them under 32768")))

		ar := activation(uniq("reasoned"), role, time.Hour, "on call")
		Expect(as(requester, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(annotate(as(requester, nil, nil), ar, pimv1.AnnotationDeactivate, strings.Repeat("r", policy.MaxReasonLength+1))).
			To(MatchError(ContainSubstring(fmt.Sprintf("keep it to %d", policy.MaxReasonLength))))
		Expect(annotate(as(requester, nil, nil), ar, pimv1.AnnotationDeactivate, strings.Repeat("r", policy.MaxReasonLength))).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateDeactivated))
	})

	It("splits a mail to an approver group of 2,001 over Notifications of at most 1,000, everyone once", func() {
		group := uniq("approvers-all")
		var members []string
		for i := range 2*notify.MaxRecipients + 1 {
			members = append(members, fmt.Sprintf("approver-%04d@example.com", i))
		}
		setDirectory(map[string]string{}, map[string][]string{group: members})
		f := newNotifyFixture(true, group)
		requester := uniq("asker")
		create(assignment(uniq("eligible"), requester, f.role, pimv1.AssignmentEligible, nil, nil))
		ar := activation(uniq("ask"), f.role, time.Hour, "INC-1")
		Eventually(func() error { return as(requester, nil, nil).Create(ctx, ar) }).Should(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		// Before the mail server closes: no delivery left retrying.
		DeferCleanup(func() {
			_ = k8s.DeleteAllOf(ctx, &pimv1.Notification{}, client.InNamespace(kubepimNamespace), client.MatchingLabels{pimv1.LabelChannel: f.email})
		})
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStatePendingApproval))
		ar = getActivation(ar)

		var mails []pimv1.Notification
		Eventually(func() []pimv1.Notification {
			var list pimv1.NotificationList
			Expect(k8s.List(ctx, &list, client.InNamespace(kubepimNamespace))).To(Succeed())
			mails = nil
			for _, n := range list.Items {
				if n.Spec.Source.UID == string(ar.UID) && n.Spec.Audience == pimv1.AudienceApprovers && n.Spec.Channel == f.email {
					mails = append(mails, n)
				}
			}
			return mails
		}, "30s").Should(HaveLen(3))
		var all []string
		for _, n := range mails {
			Expect(len(n.Spec.To)).To(BeNumerically("<=", notify.MaxRecipients))
			all = append(all, n.Spec.To...)
		}
		Expect(all).To(ConsistOf(members))
		// The third, of one address, is delivered like any other.
		Eventually(f.mailsWith(members[len(members)-1], "Approval needed"), "30s").Should(HaveLen(1))
	})
})
