package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// alertsOf returns the alert summary of a RoleSetting.
func alertsOf(rs *pimv1.RoleSetting) func() string {
	return func() string {
		got := &pimv1.RoleSetting{}
		if err := k8s.Get(context.Background(), keyOf(rs), got); err != nil {
			return err.Error()
		}
		return got.Status.AlertSummary
	}
}

// outsideBinding binds user to role the plain RBAC way, past kubepim.
func outsideBinding(role, user string) *rbacv1.ClusterRoleBinding {
	GinkgoHelper()
	b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: uniq("outside")},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	create(b)
	return b
}

var _ = Describe("Security alerts", func() {
	ctx := context.Background()

	It("raises AssignedOutsidePIM for a binding made past kubepim, and clears it when it goes", func() {
		role := uniq("governed")
		clusterRoleFor(role, "pods", "get")
		rs := roleSetting(uniq("watched"), role)
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())
		Expect(alertsOf(rs)()).To(BeEmpty())

		b := outsideBinding(role, "sneaky")
		fakeClock.Step(5 * time.Minute) // the periodic pass
		Eventually(alertsOf(rs)).Should(Equal(pimv1.AlertAssignedOutsidePIM))
		Eventually(func() []string { return warningReasons(rs) }).Should(ContainElement(pimv1.AlertAssignedOutsidePIM))
		got := &pimv1.RoleSetting{}
		Expect(k8s.Get(ctx, keyOf(rs), got)).To(Succeed())
		Expect(got.Status.Alerts[0].Message).To(ContainSubstring("ClusterRoleBinding " + b.Name))
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(rs.UID))) }).
			Should(ContainElement("AlertRaised by kubepim:controller"))

		Expect(k8s.Delete(ctx, b)).To(Succeed())
		fakeClock.Step(5 * time.Minute)
		Eventually(alertsOf(rs)).Should(BeEmpty())
	})

	It("removes outside bindings in enforce mode, recording each", func() {
		role := uniq("enforced")
		clusterRoleFor(role, "pods", "get")
		b := outsideBinding(role, "sneaky")
		Eventually(func() bool { return canI("sneaky", nil, "get", "pods", "default") }).Should(BeTrue())
		rs := roleSetting(uniq("enforcing"), role)
		rs.Spec.Alerts.RemoveOutsideBindings = ptr.To(true)
		create(rs)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(b), &rbacv1.ClusterRoleBinding{}))
		}).Should(BeTrue())
		Expect(canI("sneaky", nil, "get", "pods", "default")).To(BeFalse())
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(getSetting(rs).UID))) }).
			Should(ContainElement("OutsideBindingRemoved by kubepim:controller"))
		Expect(alertsOf(rs)()).NotTo(ContainSubstring(pimv1.AlertAssignedOutsidePIM))
	})

	It("raises RoleNotRequiringMFA for a wildcard role, until MFA is required", func() {
		role := uniq("wildcard")
		clusterRoleFor(role, "secrets", "*")
		rs := roleSetting(uniq("no-mfa"), role)
		create(rs)
		Eventually(alertsOf(rs)).Should(Equal(pimv1.AlertRoleNotRequiringMFA))
		got := getSetting(rs)
		patch := client.MergeFrom(got.DeepCopy())
		got.Spec.Activation.RequireMFA = true
		Expect(k8s.Patch(ctx, got, patch)).To(Succeed())
		Eventually(alertsOf(rs)).Should(BeEmpty())
	})

	It("raises TooManyPermanentActive past the threshold", func() {
		role := uniq("standing")
		clusterRoleFor(role, "configmaps", "get")
		rs := roleSetting(uniq("threshold"), role)
		rs.Spec.Alerts.MaxPermanentActive = ptr.To[int32](1)
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())
		for _, u := range []string{"one", "two"} {
			ra := assignment(uniq("permanent"), u, role, pimv1.AssignmentActive, nil, nil)
			create(ra)
		}
		fakeClock.Step(5 * time.Minute)
		Eventually(alertsOf(rs)).Should(Equal(pimv1.AlertTooManyPermanentActive))
	})
})

func getSetting(rs *pimv1.RoleSetting) *pimv1.RoleSetting {
	GinkgoHelper()
	got := &pimv1.RoleSetting{}
	Expect(k8s.Get(context.Background(), keyOf(rs), got)).To(Succeed())
	return got
}

// activatedBinder makes user eligible for a fresh ClusterRole that may
// create ClusterRoleBindings of the role crown (the verb bind on it, so
// that RBAC's escalation check lets the binding through), has user
// activate it through kubepim for an hour, and waits until RBAC allows it.
// It returns user's active ActivationRequest.
func activatedBinder(u, crown string) *pimv1.ActivationRequest {
	GinkgoHelper()
	ctx := context.Background()
	binder := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: uniq("binder")}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterrolebindings"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"}, ResourceNames: []string{crown}},
	}}
	create(binder)
	create(assignment(uniq("binder-eligible"), u, binder.Name, pimv1.AssignmentEligible, nil, nil))
	ar := activation(uniq("binder-jit"), binder.Name, time.Hour, "INC-9: rotate the break-glass bindings")
	Eventually(func() error { return as(u, nil, nil).Create(ctx, ar) }).Should(Succeed())
	DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
	Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
	Eventually(func() bool { return canIIn(u, rbacv1.GroupName, "create", "clusterrolebindings") }).Should(BeTrue())
	return getActivation(ar)
}

// selfBinding is the permanent ClusterRoleBinding a user makes of role for
// themselves.
func selfBinding(u, role string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: uniq(u + "-forever")},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: u}}}
}

// The periodic pass runs every 5 minutes of the fake clock; these specs
// never move it, so whatever happens comes from the bindings watch.
var _ = Describe("Outside bindings, noticed from the watch", func() {
	ctx := context.Background()
	var (
		crown   string
		mallory string
		binder  *pimv1.ActivationRequest
		frozen  time.Time
	)
	gone := func(b client.Object) func() bool {
		return func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(b), b.DeepCopyObject().(client.Object)))
		}
	}
	governed := func(enforce bool) *pimv1.RoleSetting {
		GinkgoHelper()
		rs := roleSetting(uniq("crown-policy"), crown)
		rs.Spec.Alerts.RemoveOutsideBindings = &enforce
		rs.Spec.Activation.RequireMFA = true // no RoleNotRequiringMFA noise in the summary
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())
		Expect(alertsOf(rs)()).To(BeEmpty())
		return getSetting(rs)
	}
	BeforeEach(func() {
		crown = uniq("crown")
		clusterRoleFor(crown, "secrets", "get")
		mallory = uniq("mallory")
		binder = activatedBinder(mallory, crown)
		frozen = fakeClock.Now()
	})
	AfterEach(func() {
		Expect(fakeClock.Now()).To(Equal(frozen), "the fake clock moved: the periodic pass may have done it")
	})

	It("removes, in enforce mode, a permanent binding a user made of a governed role with their activated role, after recording it", func() {
		rs := governed(true)
		b := selfBinding(mallory, crown)
		Expect(as(mallory, nil, nil).Create(ctx, b)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, b) })

		Eventually(gone(b), "10s").Should(BeTrue())
		Expect(canI(mallory, nil, "get", "secrets", "default")).To(BeFalse())
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(rs.UID))) }).
			Should(ContainElement("OutsideBindingRemoved by kubepim:controller"))
		var removed pimv1.AuditEvent
		for _, ev := range eventsAbout(string(rs.UID)) {
			if ev.Spec.Action == pimv1.AuditOutsideBindingRemoved {
				removed = ev
			}
		}
		Expect(removed.Spec.Details).To(HaveKeyWithValue("binding", "ClusterRoleBinding "+b.Name))
		Expect(removed.Spec.Details).To(HaveKeyWithValue("subjects", "User "+mallory))
	})

	It("removes, in enforce mode, a binding a finalizer would hold (RBAC honours a binding until it is gone)", func() {
		governed(true)
		b := selfBinding(mallory, crown)
		b.Finalizers = []string{"example.com/hold"}
		Expect(as(mallory, nil, nil).Create(ctx, b)).To(Succeed())
		DeferCleanup(func() {
			if got := (&rbacv1.ClusterRoleBinding{}); k8s.Get(ctx, client.ObjectKeyFromObject(b), got) == nil {
				got.Finalizers = nil
				_ = k8s.Update(ctx, got)
			}
		})
		Eventually(gone(b), "10s").Should(BeTrue(), "deleted and its finalizer cleared, not only marked for deletion")
		Expect(canI(mallory, nil, "get", "secrets", "default")).To(BeFalse())
	})

	It("takes a copy of the grant of a request still waiting for approval for an outside binding at once, however it is dressed", func() {
		rs := roleSetting(uniq("crown-policy"), crown)
		enforce := true
		rs.Spec.Alerts.RemoveOutsideBindings = &enforce
		rs.Spec.Activation.RequireMFA = false
		rs.Spec.Activation.Approval = pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour},
			Approvers: []pimv1.Principal{{Kind: "User", Name: "bob"}}}
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())
		create(assignment(uniq("crown-eligible"), mallory, crown, pimv1.AssignmentEligible, nil, nil))
		ar := activation(uniq("crown-jit"), crown, time.Hour, "INC-10")
		Eventually(func() error { return as(mallory, nil, nil).Create(ctx, ar) }).Should(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStatePendingApproval))

		// Exactly the binding kubepim would grant once approved — name,
		// labels, owner, subject, role — made by mallory before anyone
		// approved. It used to count as "about to be granted" for a grace
		// period that a recreate renewed.
		copyOf := selfBinding(mallory, crown)
		copyOf.Name = "kubepim-ar-" + ar.Name
		copyOf.Labels = map[string]string{pimv1.LabelManagedBy: pimv1.ManagedByValue, pimv1.LabelOwnerKind: "ActivationRequest",
			pimv1.LabelOwnerUID: string(getActivation(ar).UID)}
		copyOf.Annotations = map[string]string{pimv1.AnnotationOwnerName: ar.Name}
		Expect(as(mallory, nil, nil).Create(ctx, copyOf)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, copyOf) })
		Eventually(gone(copyOf), "10s").Should(BeTrue())
		Expect(canI(mallory, nil, "get", "secrets", "default")).To(BeFalse())
		Expect(activationState(ar)()).To(Equal(pimv1.ActivationStatePendingApproval))
	})

	It("raises AssignedOutsidePIM for it without enforce mode", func() {
		rs := governed(false)
		b := selfBinding(mallory, crown)
		Expect(as(mallory, nil, nil).Create(ctx, b)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, b) })

		Eventually(alertsOf(rs), "10s").Should(Equal(pimv1.AlertAssignedOutsidePIM))
		Expect(getSetting(rs).Status.Alerts[0].Message).To(ContainSubstring("ClusterRoleBinding " + b.Name))
		Expect(gone(b)()).To(BeFalse())

		// A second one made while the alert is up leaves its own trace too:
		// one audit record per binding, whatever the alert's message names.
		second := selfBinding(mallory, crown)
		Expect(as(mallory, nil, nil).Create(ctx, second)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, second) })
		recorded := func() []string {
			var out []string
			for _, ev := range eventsAbout(string(rs.UID)) {
				if ev.Spec.Action == pimv1.AuditAlertRaised && ev.Spec.Details["binding"] != "" {
					out = append(out, ev.Spec.Details["binding"])
				}
			}
			return out
		}
		Eventually(recorded, "10s").Should(ConsistOf("ClusterRoleBinding "+b.Name, "ClusterRoleBinding "+second.Name))
		Expect(k8s.Delete(ctx, second)).To(Succeed())

		// And clears it when the binding goes, as promptly.
		Expect(k8s.Delete(ctx, b)).To(Succeed())
		Eventually(alertsOf(rs), "10s").Should(BeEmpty())
	})

	It("is not fooled by a binding that forges kubepim's labels", func() {
		rs := governed(true)
		b := selfBinding(mallory, crown)
		// What kubepim puts on its own bindings, with the UID of a live
		// kubepim owner: mallory's own activation.
		b.Labels = map[string]string{
			pimv1.LabelManagedBy: pimv1.ManagedByValue,
			pimv1.LabelOwnerKind: "ActivationRequest",
			pimv1.LabelOwnerUID:  string(binder.UID),
		}
		Expect(as(mallory, nil, nil).Create(ctx, b)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, b) })

		Eventually(gone(b), "10s").Should(BeTrue())
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(rs.UID))) }).
			Should(ContainElement("OutsideBindingRemoved by kubepim:controller"))
		// Her activation of the binder role is untouched.
		Expect(activationState(binder)()).To(Equal(pimv1.ActivationStateActive))
	})

	It("leaves kubepim's own bindings of the governed role alone in enforce mode", func() {
		rs := governed(true)
		create(assignment(uniq("crown-eligible"), mallory, crown, pimv1.AssignmentEligible, nil, nil))
		standing := assignment(uniq("crown-active"), uniq("operator"), crown, pimv1.AssignmentActive, nil, nil)
		standing.Spec.Justification = "on-call rota"
		create(standing)
		ar := activation(uniq("crown-jit"), crown, time.Hour, "INC-10")
		mfa := map[string][]string{"amr": {"pwd", "mfa"}}
		Eventually(func() error { return as(mallory, nil, mfa).Create(ctx, ar) }).Should(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Eventually(stateOf(standing)).Should(Equal(pimv1.AssignmentStateActive))

		Consistently(func() []string { return actionsAndActors(eventsAbout(string(rs.UID))) }, "2s").
			ShouldNot(ContainElement("OutsideBindingRemoved by kubepim:controller"))
		Expect(canI(mallory, nil, "get", "secrets", "default")).To(BeTrue())
		Expect(canI(standing.Spec.Subject.Name, nil, "get", "secrets", "default")).To(BeTrue())
		Expect(alertsOf(rs)()).NotTo(ContainSubstring(pimv1.AlertAssignedOutsidePIM))
	})
})
