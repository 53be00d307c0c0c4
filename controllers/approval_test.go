package controllers_test

import (
	"context"
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
)

var _ = Describe("Approval", func() {
	ctx := context.Background()
	var alice, role, approversGroup string
	var ar *pimv1.ActivationRequest

	// requireApproval makes role need n approvals from bob, carol, dave or
	// any member of approversGroup.
	requireApproval := func(n int32, timeout time.Duration) {
		rs := roleSetting(uniq("approval"), role)
		rs.Spec.Activation.Approval = pimv1.ApprovalPolicy{
			Required:          true,
			RequiredApprovals: n,
			Timeout:           metav1.Duration{Duration: timeout},
			Approvers: []pimv1.Principal{
				{Kind: "User", Name: "bob"}, {Kind: "User", Name: "carol"}, {Kind: "User", Name: "dave"},
				{Kind: "Group", Name: approversGroup},
			},
		}
		create(rs)
		// Requests are judged by the manager's view of the policy: wait
		// until it has seen this RoleSetting.
		Eventually(settingObserved(rs)).Should(BeTrue())
	}

	request := func() {
		ar = activation(uniq("needs-ok"), role, time.Hour, "prod incident INC-7")
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStatePendingApproval))
		Consistently(func() bool { return canI(alice, nil, "list", "pods", "default") }, "200ms").Should(BeFalse())
	}

	BeforeEach(func() {
		alice, approversGroup = uniq("alice"), uniq("platform-leads")
		role, _ = eligibleFor(user(alice), nil)
	})

	It("waits, then activates once an approver approves", func() {
		requireApproval(1, 24*time.Hour)
		request()
		pending := &pimv1.ActivationRequestList{}
		Expect(k8s.List(ctx, pending, client.MatchingFields{pimv1.FieldState: string(pimv1.ActivationStatePendingApproval)})).To(Succeed())
		Expect(names(pending)).To(ContainElement(ar.Name), "approvers find it by label")

		fakeClock.Step(3 * time.Hour) // a late approval does not shorten the activation
		Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationApprove, "looks right")).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeTrue())
		got := getActivation(ar)
		Expect(got.Status.Approvals).To(HaveLen(1))
		Expect(got.Status.Approvals[0].Approver.Username).To(Equal("bob"))
		Expect(got.Status.Approvals[0].Reason).To(Equal("looks right"))
		Expect(got.Annotations).NotTo(HaveKey(pimv1.AnnotationApprove))
		heldFor(got, time.Hour)
		Expect(got.Status.ActivatedAt.Time).To(BeTemporally(">=", fakeClock.Now().Add(-time.Second)))
	})

	It("denies on one denial, and refuses decisions after it", func() {
		requireApproval(2, 24*time.Hour)
		request()
		Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationApprove, "ok")).To(Succeed())
		Expect(annotate(as("carol", nil, nil), ar, pimv1.AnnotationDeny, "not during the freeze")).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateDenied))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeFalse())
		Expect(annotate(as("dave", nil, nil), ar, pimv1.AnnotationApprove, "late")).To(MatchError(ContainSubstring("not PendingApproval")))
	})

	It("refuses the requester, non-approvers, a missing reason and a second decision by the same approver", func() {
		requireApproval(2, 24*time.Hour)
		request()
		Expect(annotate(as(alice, []string{approversGroup}, nil), ar, pimv1.AnnotationApprove, "me")).To(MatchError(ContainSubstring("cannot decide on your own request")))
		Expect(annotate(as("mallory", nil, nil), ar, pimv1.AnnotationApprove, "sure")).To(MatchError(ContainSubstring("mallory is not an approver")))
		Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationApprove, "")).To(MatchError(ContainSubstring("give a reason")))
		Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationApprove, "one")).To(Succeed())
		Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationApprove, "two")).To(MatchError(ContainSubstring("bob already decided")))
		Consistently(activationState(ar), "300ms").Should(Equal(pimv1.ActivationStatePendingApproval))
		// The quorum: a second, distinct approver, through the group.
		Expect(annotate(as("erin", []string{approversGroup}, nil), ar, pimv1.AnnotationApprove, "two of three")).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(getActivation(ar).Status.Approvals).To(HaveLen(2))
	})

	It("refuses a hand-written record, and ignores one written around the webhook", func() {
		requireApproval(1, 24*time.Hour)
		request()
		forged, _ := json.Marshal([]approval.SignedRecord{{
			Record:    pimv1.ApprovalRecord{Approver: pimv1.UserInfo{Username: "bob"}, Decision: pimv1.DecisionApprove, Reason: "trust me", Time: metav1.Now()},
			Signature: "AAAA",
		}})
		Expect(annotate(as(alice, nil, nil), ar, pimv1.AnnotationDecisions, string(forged))).To(MatchError(ContainSubstring("written by kubepim alone")))
		Expect(annotate(as("root", []string{"system:masters"}, nil), ar, pimv1.AnnotationDecisions, string(forged))).To(MatchError(ContainSubstring("written by kubepim alone")))

		// Someone with storage access writes it while the webhooks are off.
		withWebhooksOff(func() {
			Eventually(func() error { return annotate(k8s, ar, pimv1.AnnotationDecisions, string(forged)) }).Should(Succeed())
		})
		Eventually(func() []string { return warningReasons(ar) }).Should(ContainElement("ForgedApproval"))
		Consistently(activationState(ar), "300ms").Should(Equal(pimv1.ActivationStatePendingApproval))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeFalse())
	})

	It("times out when nobody decides", func() {
		requireApproval(1, 2*time.Hour)
		request()
		fakeClock.Step(2 * time.Hour)
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateTimedOut))
		Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationApprove, "too late")).To(MatchError(ContainSubstring("not PendingApproval")))
	})
})

func names(list *pimv1.ActivationRequestList) []string {
	var out []string
	for _, ar := range list.Items {
		out = append(out, ar.Name)
	}
	return out
}

// warningReasons lists the reasons of Warning Events about obj.
func warningReasons(obj client.Object) []string {
	var list eventsv1.EventList
	Expect(k8s.List(context.Background(), &list)).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() && e.Type == "Warning" {
			out = append(out, e.Reason)
		}
	}
	return out
}

// settingObserved reports whether the manager has reconciled rs.
func settingObserved(rs *pimv1.RoleSetting) func() bool {
	return func() bool {
		got := &pimv1.RoleSetting{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rs), got); err != nil {
			return false
		}
		return got.Status.ObservedGeneration == got.Generation
	}
}

// withWebhooksOff runs fn while kubepim's webhook configurations are
// removed, as someone with direct access to storage could act, and puts
// them back.
func withWebhooksOff(fn func()) {
	GinkgoHelper()
	ctx := context.Background()
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	Expect(k8s.Get(ctx, client.ObjectKey{Name: "mutating-webhook-configuration"}, mutating)).To(Succeed())
	Expect(k8s.Get(ctx, client.ObjectKey{Name: "validating-webhook-configuration"}, validating)).To(Succeed())
	Expect(k8s.Delete(ctx, mutating)).To(Succeed())
	Expect(k8s.Delete(ctx, validating)).To(Succeed())
	defer func() {
		for _, obj := range []client.Object{mutating, validating} {
			obj.SetResourceVersion("")
			obj.SetUID("")
			Expect(k8s.Create(ctx, obj)).To(Succeed())
		}
		// Back in force once an anonymous forgery is refused again.
		Eventually(func() error {
			probe := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: uniq("probe"),
				Annotations: map[string]string{pimv1.AnnotationDecisions: "[]"}},
				Spec: pimv1.ActivationRequestSpec{RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: "x"}, Duration: metav1.Duration{Duration: time.Hour}}}
			return k8s.Create(ctx, probe, client.DryRunAll)
		}).Should(MatchError(ContainSubstring("cannot be set on a new request")))
	}()
	fn()
}
