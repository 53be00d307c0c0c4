package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/controllers"
	"github.com/kubepim/kubepim/internal/grant"
)

// The idle timeout is an authorizer-mode feature; the controller is what
// ends the activation, so the manager runs here in that mode (the API
// server of this suite does not call its authorizer: the uses are written
// as kubepim's authorizer writes them, to status.lastUsedAt).
var _ = Describe("activation.idleTimeout", Ordered, func() {
	BeforeAll(func() {
		stopMgr()
		env.AccessMode = grant.AccessModeAuthorizer
		stopMgr = startManager(fakeClock)
		DeferCleanup(func() {
			stopMgr()
			env.AccessMode = ""
			stopMgr = startManager(fakeClock)
		})
	})

	It("ends an activation unused for the role's idle timeout, counting from its last use, and audits it", func() {
		ctx := context.Background()
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		rs := roleSetting(uniq("idle"), role)
		rs.Spec.Activation.IdleTimeout = &metav1.Duration{Duration: 10 * time.Minute}
		Expect(k8s.Create(ctx, rs)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, rs) })
		Eventually(settingObserved(rs)).Should(BeTrue())
		ar := activation(uniq("idle"), role, time.Hour, "x")
		Eventually(func() error { return as(alice, nil, nil).Create(ctx, ar) }).Should(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		got := getActivation(ar)
		Expect(got.Status.Binding).To(BeNil(), "authorizer mode: no binding")

		// Used 5 minutes in: the deadline moves to 15 minutes in.
		fakeClock.Step(5 * time.Minute)
		used := metav1.NewTime(got.Status.ActivatedAt.Add(5 * time.Minute))
		patch := client.MergeFrom(got.DeepCopy())
		got.Status.LastUsedAt = &used
		Expect(k8s.Status().Patch(ctx, got, patch)).To(Succeed())
		// In the cluster a use is written minutes before the old deadline;
		// here the clock jumps past it at once: let the manager's cache see
		// the use first.
		Eventually(func() *metav1.Time {
			var cached pimv1.ActivationRequest
			if err := env.ManagerCache.Get(ctx, client.ObjectKeyFromObject(ar), &cached); err != nil {
				return nil
			}
			return cached.Status.LastUsedAt
		}).Should(HaveField("Time", BeTemporally("==", used.Time)))
		fakeClock.Step(7 * time.Minute) // 12 minutes in: idle for 7
		Consistently(activationState(ar), "500ms").Should(Equal(pimv1.ActivationStateActive))

		fakeClock.Step(4 * time.Minute) // 16 minutes in: idle for 11
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateDeactivated))
		got = getActivation(ar)
		ready := meta.FindStatusCondition(got.Status.Conditions, pimv1.ConditionReady)
		Expect(ready).NotTo(BeNil())
		Expect(ready.Reason).To(Equal(controllers.ReasonIdleTimeout))
		Expect(got.Status.Message).To(ContainSubstring("unused for the role's idle timeout of 10m0s (last used " + used.UTC().Format(time.RFC3339) + ")"))
		Eventually(func() []string {
			var actions []string
			for _, ev := range eventsAbout(string(got.UID)) {
				actions = append(actions, ev.Spec.Action+": "+ev.Spec.Reason)
			}
			return actions
		}).Should(ContainElement(ContainSubstring(pimv1.AuditDeactivated + ": deactivated by kubepim: unused")))
	})
})
