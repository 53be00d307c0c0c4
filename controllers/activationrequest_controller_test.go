package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/pquerna/otp/totp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

func activation(name, role string, d time.Duration, justification string) *pimv1.ActivationRequest {
	return &pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: pimv1.ActivationRequestSpec{
			RoleRef:       pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role},
			Duration:      metav1.Duration{Duration: d},
			Justification: justification,
		},
	}
}

// heldFor checks an activation's recorded window: activatedAt is rounded
// down to the second and expiresAt up, so it is the duration asked, or a
// second more when the activation began mid-second; never less.
func heldFor(ar *pimv1.ActivationRequest, d time.Duration) {
	GinkgoHelper()
	Expect(ar.Status.ActivatedAt).NotTo(BeNil())
	Expect(ar.Status.ExpiresAt).NotTo(BeNil())
	Expect(ar.Status.ExpiresAt.Sub(ar.Status.ActivatedAt.Time)).To(SatisfyAll(BeNumerically(">=", d), BeNumerically("<=", d+time.Second)))
}

func activationState(ar *pimv1.ActivationRequest) func() pimv1.ActivationState {
	return func() pimv1.ActivationState {
		got := &pimv1.ActivationRequest{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ar), got); err != nil {
			return pimv1.ActivationState(err.Error())
		}
		return got.Status.State
	}
}

func getActivation(ar *pimv1.ActivationRequest) *pimv1.ActivationRequest {
	GinkgoHelper()
	got := &pimv1.ActivationRequest{}
	Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(ar), got)).To(Succeed())
	return got
}

// annotate adds an annotation as user c, the way kubectl annotate does.
func annotate(c client.Client, ar *pimv1.ActivationRequest, key, value string) error {
	got := &pimv1.ActivationRequest{}
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ar), got); err != nil {
		return err
	}
	patch := client.MergeFrom(got.DeepCopy())
	if got.Annotations == nil {
		got.Annotations = map[string]string{}
	}
	got.Annotations[key] = value
	return c.Patch(context.Background(), got, patch)
}

// eligibleFor makes user (or a group) eligible for a fresh ClusterRole that
// grants get and list on pods, and returns the role's name.
func eligibleFor(subject pimv1.Subject, end *time.Time) (string, *pimv1.RoleAssignment) {
	GinkgoHelper()
	role := uniq("jit-pods")
	clusterRoleFor(role, "pods", "get", "list")
	ra := assignment(uniq("eligible"), "", role, pimv1.AssignmentEligible, nil, end)
	ra.Spec.Subject = subject
	create(ra)
	Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))
	return role, ra
}

func user(name string) pimv1.Subject { return pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: name} }

var _ = Describe("ActivationRequest", func() {
	ctx := context.Background()

	It("activates an eligible role for its duration, then revokes it exactly at expiry", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		ar := activation(uniq("jit"), role, 2*time.Hour, "debugging INC-1")
		ar.Spec.Requester = &pimv1.UserInfo{Username: "mallory"} // forged: replaced by the webhook
		Expect(as(alice, []string{"dev"}, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })

		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		got := getActivation(ar)
		Expect(got.Spec.Requester.Username).To(Equal(alice))
		Expect(got.Spec.Requester.Groups).To(ContainElement("dev"))
		heldFor(got, 2*time.Hour)
		Expect(got.Status.Binding).NotTo(BeNil())
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeTrue())
		Expect(canI("mallory", nil, "list", "pods", "default")).To(BeFalse())

		fakeClock.SetTime(got.Status.ExpiresAt.Add(-time.Second))
		Consistently(func() bool { return canI(alice, nil, "list", "pods", "default") }, "300ms").Should(BeTrue())
		fakeClock.SetTime(got.Status.ExpiresAt.Time)
		Eventually(func() bool { return canI(alice, nil, "list", "pods", "default") }).Should(BeFalse())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))
	})

	It("never ends an activation before its duration has passed, when asked mid-second", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		// A sub-second now: activatedAt is rounded down to the second, so
		// an expiresAt of activatedAt+duration would end access early.
		fakeClock.Step(750 * time.Millisecond)
		DeferCleanup(func() { fakeClock.SetTime(policy.CeilSecond(fakeClock.Now())) })
		asked := fakeClock.Now()
		Expect(asked.Nanosecond()).NotTo(BeZero())
		ar := activation(uniq("one-second"), role, time.Second, "INC-9")
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		got := getActivation(ar)
		Expect(got.Status.ActivatedAt.Time).To(BeTemporally("==", asked.Truncate(time.Second)))
		Expect(got.Status.ExpiresAt.Time).To(BeTemporally(">=", asked.Add(time.Second)))
		Expect(got.Status.ExpiresAt.Time).To(BeTemporally("<", asked.Add(2*time.Second)))
		b := &rbacv1.ClusterRoleBinding{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: got.Status.Binding.Name}, b)).To(Succeed())
		Expect(b.Annotations).To(HaveKeyWithValue(pimv1.AnnotationExpiresAt, got.Status.ExpiresAt.UTC().Format(time.RFC3339)))

		// Once the second asked for has passed, and until expiresAt, she
		// still holds the role; at expiresAt it goes.
		fakeClock.SetTime(asked.Add(time.Second))
		Consistently(func() bool { return canI(alice, nil, "list", "pods", "default") }, "300ms").Should(BeTrue())
		fakeClock.SetTime(got.Status.ExpiresAt.Time)
		Eventually(func() bool { return canI(alice, nil, "list", "pods", "default") }).Should(BeFalse())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))
	})

	It("stamps the deadline on the binding, and keeps it when the status lost it", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		ar := activation(uniq("stamped"), role, time.Hour, "INC-7")
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		got := getActivation(ar)
		b := &rbacv1.ClusterRoleBinding{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: got.Status.Binding.Name}, b)).To(Succeed())
		Expect(b.Annotations).To(HaveKeyWithValue(pimv1.AnnotationActivatedAt, got.Status.ActivatedAt.UTC().Format(time.RFC3339)))
		Expect(b.Annotations).To(HaveKeyWithValue(pimv1.AnnotationExpiresAt, got.Status.ExpiresAt.UTC().Format(time.RFC3339)))

		// As if the manager had died after creating the binding and before
		// storing the status: the next pass, later, must not start the hour
		// again.
		activatedAt, expiresAt := got.Status.ActivatedAt.DeepCopy(), got.Status.ExpiresAt.DeepCopy()
		Expect(k8s.Status().Patch(ctx, got.DeepCopy(), client.RawPatch(types.MergePatchType,
			[]byte(`{"status":{"activatedAt":null,"expiresAt":null}}`)))).To(Succeed())
		fakeClock.Step(10 * time.Minute)
		Expect(annotate(k8s, ar, "example.com/touched", "yes")).To(Succeed())
		Eventually(func() string {
			if e := getActivation(ar).Status.ExpiresAt; e != nil {
				return e.UTC().Format(time.RFC3339)
			}
			return "not set"
		}).Should(Equal(expiresAt.UTC().Format(time.RFC3339)))
		Expect(getActivation(ar).Status.ActivatedAt.UTC()).To(Equal(activatedAt.UTC()))
		Expect(activationState(ar)()).To(Equal(pimv1.ActivationStateActive))
	})

	It("binds the requester alone when eligibility comes through a group", func() {
		group, alice := uniq("sre"), uniq("alice")
		role, _ := eligibleFor(pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: group}, nil)
		ar := activation(uniq("via-group"), role, time.Hour, "on call")
		Expect(as(alice, []string{group}, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeTrue(), "alice, even outside the group")
		Expect(canI("bob", []string{group}, "list", "pods", "default")).To(BeFalse(), "other group members gain nothing")

		b := &rbacv1.ClusterRoleBinding{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: getActivation(ar).Status.Binding.Name}, b)).To(Succeed())
		Expect(b.Subjects).To(Equal([]rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: alice}}))
	})

	It("activates in one namespace when asked to, with a RoleBinding", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniq("prod")}}
		create(ns)
		ar := activation(uniq("in-ns"), role, time.Hour, "deploy")
		ar.Spec.Namespace = ns.Name
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(canI(alice, nil, "list", "pods", ns.Name)).To(BeTrue())
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeFalse())
	})

	Describe("refusals", func() {
		var alice, role string
		BeforeEach(func() {
			alice = uniq("alice")
			role, _ = eligibleFor(user(alice), nil)
		})

		refused := func(c client.Client, ar *pimv1.ActivationRequest, message string) {
			GinkgoHelper()
			grantedBefore := canI(alice, nil, "list", "pods", "default")
			err := c.Create(ctx, ar)
			Expect(err).To(HaveOccurred())
			Expect(apierrors.IsForbidden(err) || apierrors.IsInvalid(err)).To(BeTrue(), err.Error())
			Expect(err.Error()).To(ContainSubstring(message))
			Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(ar), &pimv1.ActivationRequest{}))).To(BeTrue(), "nothing is stored")
			Expect(canI(alice, nil, "list", "pods", "default")).To(Equal(grantedBefore), "nothing is granted")
		}

		It("refuses someone who is not eligible", func() {
			refused(as(uniq("mallory"), nil, nil), activation(uniq("x"), role, time.Hour, "please"), "is not eligible for ClusterRole "+role+" cluster-wide")
		})
		It("refuses a namespace the eligibility does not cover", func() {
			other, _ := eligibleFor(pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: alice}, nil)
			ra := assignment(uniq("ns-only"), alice, other, pimv1.AssignmentEligible, nil, nil)
			ra.Spec.Namespace = "team-a"
			create(ra)
			ar := activation(uniq("x"), role, time.Hour, "why")
			ar.Spec.Namespace = "team-b"
			refused(as(uniq("nobody"), nil, nil), ar, "is not eligible")
		})
		It("refuses a duration over the role's maximum", func() {
			refused(as(alice, nil, nil), activation(uniq("x"), role, 9*time.Hour, "long"), "exceeds the maximum activation of 8h0m0s")
		})
		It("refuses a duration that is not positive", func() {
			refused(as(alice, nil, nil), activation(uniq("x"), role, 0, "zero"), "spec.duration must be positive")
		})
		It("refuses a missing justification", func() {
			refused(as(alice, nil, nil), activation(uniq("x"), role, time.Hour, " "), "requires a justification")
		})
		It("refuses a missing ticket when the RoleSetting requires one", func() {
			rs := roleSetting(uniq("tickets"), role)
			rs.Spec.Activation.RequireTicket = true
			create(rs)
			Eventually(func() error {
				_, err := policyCheck(alice, role)
				return err
			}).Should(MatchError(ContainSubstring("requires a ticket")))
			ok := activation(uniq("x"), role, time.Hour, "with ticket")
			ok.Spec.Ticket = &pimv1.Ticket{System: "jira", Number: "OPS-1"}
			Expect(as(alice, nil, nil).Create(ctx, ok)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ok) })
		})
		It("refuses when eligibility ends before the activation would", func() {
			bob := uniq("bob")
			short, _ := eligibleFor(user(bob), in(30*time.Minute))
			refused(as(bob, nil, nil), activation(uniq("x"), short, time.Hour, "x"), "request a duration of at most")
		})
		It("refuses a second open request for the same role", func() {
			first := activation(uniq("first"), role, time.Hour, "one")
			Expect(as(alice, nil, nil).Create(ctx, first)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, first) })
			Eventually(activationState(first)).Should(Equal(pimv1.ActivationStateActive))
			refused(as(alice, nil, nil), activation(uniq("second"), role, time.Hour, "two"), "you already have an open request")
		})
		It("refuses a role governed by two RoleSettings", func() {
			create(roleSetting(uniq("a"), role))
			create(roleSetting(uniq("b"), role))
			Eventually(func() error {
				_, err := policyCheck(alice, role)
				return err
			}).Should(MatchError(ContainSubstring("more than one RoleSetting")))
		})
		It("refuses changing the spec after creation", func() {
			ar := activation(uniq("x"), role, time.Hour, "fine")
			Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			got := getActivation(ar)
			patch := client.MergeFrom(got.DeepCopy())
			got.Spec.Duration = metav1.Duration{Duration: 8 * time.Hour}
			err := as(alice, nil, nil).Patch(ctx, got, patch)
			Expect(err).To(MatchError(ContainSubstring("spec is immutable")))
		})
	})

	Describe("MFA", func() {
		var alice, role string
		BeforeEach(func() {
			alice = uniq("alice")
			role, _ = eligibleFor(user(alice), nil)
			rs := roleSetting(uniq("mfa"), role)
			rs.Spec.Activation.RequireMFA = true
			create(rs)
			Eventually(func() error {
				_, err := policyCheck(alice, role)
				return err
			}).Should(MatchError(ContainSubstring("requires multi-factor authentication")))
		})

		It("accepts the identity provider's amr claim", func() {
			ar := activation(uniq("claim"), role, time.Hour, "mfa")
			Expect(as(alice, nil, map[string][]string{"amr": {"pwd", "mfa"}}).Create(ctx, ar)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			Expect(getActivation(ar).Spec.MFA.Method).To(Equal(pimv1.MFAMethodClaim))
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		})

		It("refuses a password-only sign-in", func() {
			err := as(alice, nil, map[string][]string{"amr": {"pwd"}}).Create(ctx, activation(uniq("pwd"), role, time.Hour, "x"))
			Expect(err).To(MatchError(ContainSubstring("requires multi-factor authentication")))
		})

		It("accepts a TOTP code once, strips it, and refuses its replay", func() {
			key, err := totp.Generate(totp.GenerateOpts{Issuer: "kubepim", AccountName: alice})
			Expect(err).NotTo(HaveOccurred())
			secret := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: kubepimNamespace, Name: mfa.TOTPSecretName(alice),
					Annotations: map[string]string{mfa.AnnotationTOTPUser: alice}},
				Data: map[string][]byte{mfa.SecretKeyTOTP: []byte(key.Secret())},
			}
			create(secret)
			code, err := totp.GenerateCode(key.Secret(), fakeClock.Now())
			Expect(err).NotTo(HaveOccurred())

			wrong := activation(uniq("wrong"), role, time.Hour, "x")
			wrong.Annotations = map[string]string{pimv1.AnnotationTOTP: "000000"}
			if code == "000000" {
				wrong.Annotations[pimv1.AnnotationTOTP] = "111111"
			}
			Expect(as(alice, nil, nil).Create(ctx, wrong)).To(MatchError(ContainSubstring("one-time code is not valid")))

			ar := activation(uniq("totp"), role, time.Hour, "x")
			ar.Annotations = map[string]string{pimv1.AnnotationTOTP: code}
			Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			got := getActivation(ar)
			Expect(got.Annotations).NotTo(HaveKey(pimv1.AnnotationTOTP))
			Expect(got.Spec.MFA.Method).To(Equal(pimv1.MFAMethodTOTP))
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))

			Expect(annotate(as(alice, nil, nil), ar, pimv1.AnnotationDeactivate, "done")).To(Succeed())
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateDeactivated))
			replay := activation(uniq("replay"), role, time.Hour, "x")
			replay.Annotations = map[string]string{pimv1.AnnotationTOTP: code}
			Expect(as(alice, nil, nil).Create(ctx, replay)).To(MatchError(ContainSubstring("already used")))
		})
	})

	It("waits for a chosen start time", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		ar := activation(uniq("later"), role, time.Hour, "maintenance window")
		ar.Spec.StartTime = &metav1.Time{Time: fakeClock.Now().Add(2 * time.Hour)}
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateScheduled))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeFalse())
		fakeClock.Step(2 * time.Hour)
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeTrue())
		Expect(getActivation(ar).Status.ActivatedAt.Time).To(Equal(ar.Spec.StartTime.Time))
	})

	It("lets the requester, and only the requester, cancel before activation", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		ar := activation(uniq("cancel"), role, time.Hour, "x")
		ar.Spec.StartTime = &metav1.Time{Time: fakeClock.Now().Add(time.Hour)}
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateScheduled))

		Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationCancel, "")).To(MatchError(ContainSubstring("only the requester")))
		Expect(annotate(as(alice, nil, nil), ar, pimv1.AnnotationCancel, "")).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateCancelled))
		Expect(getActivation(ar).Annotations[pimv1.AnnotationCancelledBy]).To(Equal(alice))
		fakeClock.Step(time.Hour)
		Consistently(func() bool { return canI(alice, nil, "list", "pods", "default") }, "300ms").Should(BeFalse())
	})

	It("ends access at once on deactivation by the requester or an admin", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		ar := activation(uniq("deact"), role, time.Hour, "x")
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))

		Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationDeactivate, "mine now")).To(MatchError(ContainSubstring("only the requester")))
		// An admin (system:masters may do anything, "deactivate" included).
		Expect(annotate(as("root", []string{"system:masters"}, nil), ar, pimv1.AnnotationDeactivate, "incident over")).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateDeactivated))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeFalse())
		got := getActivation(ar)
		Expect(got.Annotations[pimv1.AnnotationDeactivatedBy]).To(Equal("root"))
		Expect(got.Status.Message).To(ContainSubstring("incident over"))
	})

	It("extends an active request without a gap", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		first := activation(uniq("first"), role, time.Hour, "x")
		Expect(as(alice, nil, nil).Create(ctx, first)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, first) })
		Eventually(activationState(first)).Should(Equal(pimv1.ActivationStateActive))
		fakeClock.Step(50 * time.Minute)

		second := activation(uniq("second"), role, time.Hour, "need more time")
		second.Spec.Extends = first.Name
		Expect(as(alice, nil, nil).Create(ctx, second)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, second) })
		Eventually(activationState(second)).Should(Equal(pimv1.ActivationStateActive))
		Eventually(activationState(first)).Should(Equal(pimv1.ActivationStateExpired))
		Expect(getActivation(first).Status.Message).To(ContainSubstring("extended by"))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeTrue())

		fakeClock.Step(30 * time.Minute) // past the first request's end
		Consistently(func() bool { return canI(alice, nil, "list", "pods", "default") }, "300ms").Should(BeTrue())
		fakeClock.Step(30 * time.Minute)
		Eventually(func() bool { return canI(alice, nil, "list", "pods", "default") }).Should(BeFalse())
	})

	It("fails, and revokes, when the eligible assignment is removed", func() {
		alice := uniq("alice")
		role, ra := eligibleFor(user(alice), nil)
		ar := activation(uniq("orphaned"), role, time.Hour, "x")
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(k8s.Delete(ctx, ra)).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateFailed))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeFalse())
		Expect(getActivation(ar).Status.Message).To(ContainSubstring("eligibility"))
	})

	It("revokes what became overdue while the manager was down, and prunes history after the retention", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		ar := activation(uniq("restart"), role, time.Hour, "x")
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))

		stopMgr()
		fakeClock.Step(2 * time.Hour)
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeTrue())
		stopMgr = startManager(fakeClock)
		Eventually(func() bool { return canI(alice, nil, "list", "pods", "default") }).Should(BeFalse())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))

		fakeClock.Step(90*24*time.Hour - time.Minute)
		Consistently(activationState(ar), "300ms").Should(Equal(pimv1.ActivationStateExpired))
		fakeClock.Step(2 * time.Hour)
		// Jumping 90 days makes every deadline of every object the suite
		// has made so far fall due at once (expiries, retention, reviews,
		// notification give-ups), while other suites' control planes share
		// the CPU: allow for the backlog (the audit records of that
		// backlog are written one at a time, through the hash chain; run
		// late in a full suite it took over a minute once).
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(ar), &pimv1.ActivationRequest{}))
		}, "3m").Should(BeTrue())
	})

	Describe("on the real clock", Ordered, func() {
		BeforeAll(func() {
			stopMgr()
			stopMgr = startManager(clock.RealClock{})
			DeferCleanup(func() {
				stopMgr()
				stopMgr = startManager(fakeClock)
			})
		})

		It("revokes within a second of expiresAt", func() {
			alice := uniq("alice")
			role, _ := eligibleFor(user(alice), nil)
			ar := activation(uniq("lag"), role, 3*time.Second, "x")
			Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			Eventually(func() bool { return canI(alice, nil, "list", "pods", "default") }).Should(BeTrue())
			Eventually(func() bool { return canI(alice, nil, "list", "pods", "default") }).
				WithTimeout(10 * time.Second).WithPolling(10 * time.Millisecond).Should(BeFalse())
			lag := time.Since(getActivation(ar).Status.ExpiresAt.Time)
			AddReportEntry("activation revoke lag", lag.String())
			GinkgoWriter.Printf("activation revoke lag after expiresAt: %v\n", lag)
			Expect(lag).To(BeNumerically(">=", 0))
			Expect(lag).To(BeNumerically("<", time.Second))
		})
	})
})

// policyCheck asks the webhook (with a dry run) whether alice may activate
// role now; RoleSettings reach the webhook's cache a moment after they are
// created, so specs wait on this rather than on time.
func policyCheck(alice, role string) (*pimv1.ActivationRequest, error) {
	ar := activation(uniq("probe"), role, time.Hour, "probe")
	return ar, as(alice, nil, nil).Create(context.Background(), ar, client.DryRunAll)
}
