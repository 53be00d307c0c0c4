package controllers_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

// enrollTOTP creates user's TOTP enrollment the way docs tell an admin to
// (no label: the webhook adds it) and returns the key.
func enrollTOTP(user string) *otp.Key {
	GinkgoHelper()
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "kubepim", AccountName: user})
	Expect(err).NotTo(HaveOccurred())
	create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: kubepimNamespace, Name: mfa.TOTPSecretName(user),
			Annotations: map[string]string{mfa.AnnotationTOTPUser: user}},
		Data: map[string][]byte{mfa.SecretKeyTOTP: []byte(key.Secret())},
	})
	return key
}

// wrongCodeFor is a six-digit code that none of the three steps the
// webhook accepts at now produces.
func wrongCodeFor(key *otp.Key, now time.Time) string {
	GinkgoHelper()
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		c, err := totp.GenerateCode(key.Secret(), now.Add(d))
		Expect(err).NotTo(HaveOccurred())
		valid[c] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", i*111111%1000000); !valid[c] {
			return c
		}
	}
}

func totpFailures(result string) float64 {
	GinkgoHelper()
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "kubepim_totp_failures_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// mfaFailures are the MFAFailed audit events whose actor is user.
func mfaFailures(user string) func() []pimv1.AuditEvent {
	return func() []pimv1.AuditEvent {
		var list pimv1.AuditEventList
		Expect(k8s.List(context.Background(), &list)).To(Succeed())
		var out []pimv1.AuditEvent
		for _, ev := range list.Items {
			if ev.Spec.Action == pimv1.AuditMFAFailed && ev.Spec.Actor != nil && ev.Spec.Actor.Username == user {
				out = append(out, ev)
			}
		}
		return out
	}
}

func reasons(evs []pimv1.AuditEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Spec.Reason)
	}
	return out
}

var _ = Describe("TOTP failure limit", func() {
	ctx := context.Background()

	It("locks a user out after 5 wrong codes in 5 minutes, dry-runs included, until the stated time, and audits each refusal once", func() {
		alice := uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		rs := roleSetting(uniq("mfa-limit"), role)
		rs.Spec.Activation.RequireMFA = true
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())
		key := enrollTOTP(alice)
		secretKey := client.ObjectKey{Namespace: kubepimNamespace, Name: mfa.TOTPSecretName(alice)}
		alicec := as(alice, nil, nil)
		wrongBefore, lockedBefore := totpFailures("wrong"), totpFailures("locked")

		attempt := func(code string, dryRun bool) error {
			ar := activation(uniq("totp-try"), role, time.Hour, "INC-42")
			ar.Annotations = map[string]string{pimv1.AnnotationTOTP: code}
			var opts []client.CreateOption
			if dryRun {
				opts = append(opts, client.DryRunAll)
			}
			err := alicec.Create(ctx, ar, opts...)
			if err == nil && !dryRun {
				DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			}
			return err
		}

		By("refusing 5 wrong codes, 2 of them in server-side dry-runs")
		first := fakeClock.Now()
		for i := range 5 {
			err := attempt(wrongCodeFor(key, fakeClock.Now()), i%2 == 1)
			Expect(err).To(MatchError(ContainSubstring("one-time code is not valid")), "attempt %d", i+1)
			if i < 4 {
				Expect(err.Error()).NotTo(ContainSubstring("locked"))
				fakeClock.Step(10 * time.Second)
			}
		}
		until := first.Add(5 * time.Minute).UTC().Format(time.RFC3339)

		By("refusing the 6th attempt, with the right code, saying when to retry")
		code, err := totp.GenerateCode(key.Secret(), fakeClock.Now())
		Expect(err).NotTo(HaveOccurred())
		Expect(attempt(code, false)).To(MatchError(And(ContainSubstring("too many wrong one-time codes (5 within 5m0s)"), ContainSubstring("locked for you until "+until))))
		Expect(attempt(code, true)).To(MatchError(ContainSubstring("until "+until)), "a dry-run is no oracle either")
		Expect(totpFailures("wrong") - wrongBefore).To(Equal(5.0))
		Expect(totpFailures("locked") - lockedBefore).To(Equal(2.0))

		By("keeping the count in the enrollment Secret, where alice cannot reach it")
		secret := &corev1.Secret{}
		Expect(k8s.Get(ctx, secretKey, secret)).To(Succeed())
		Expect(secret.Labels).To(HaveKeyWithValue(mfa.LabelTOTPEnrollment, "true"))
		failures, err := policy.ParseTOTPFailures(secret.Annotations[mfa.AnnotationTOTPFailures])
		Expect(err).NotTo(HaveOccurred())
		Expect(failures).To(HaveLen(6), "5 wrong codes and one entry for the lockout, not one per locked attempt")
		Expect(alicec.Get(ctx, secretKey, &corev1.Secret{})).To(Satisfy(apierrors.IsForbidden))
		reset := secret.DeepCopy()
		delete(reset.Annotations, mfa.AnnotationTOTPFailures)
		Expect(alicec.Update(ctx, reset)).To(Satisfy(apierrors.IsForbidden))

		By("still refusing one second before the stated time")
		fakeClock.SetTime(first.Add(5*time.Minute - time.Second))
		code, err = totp.GenerateCode(key.Secret(), fakeClock.Now())
		Expect(err).NotTo(HaveOccurred())
		Expect(attempt(code, false)).To(MatchError(ContainSubstring("until " + until)))

		By("accepting the right code at the stated time")
		fakeClock.SetTime(first.Add(5 * time.Minute))
		code, err = totp.GenerateCode(key.Secret(), fakeClock.Now())
		Expect(err).NotTo(HaveOccurred())
		Expect(attempt(code, true)).To(Succeed(), "a dry-run checks the code without using it up")
		Expect(attempt(code, false)).To(Succeed())

		By("recording each refusal once in the audit trail, by the leader")
		Eventually(func() []string { return reasons(mfaFailures(alice)()) }).Should(ConsistOf(
			"wrong one-time code", "wrong one-time code (server-side dry-run)", "wrong one-time code",
			"wrong one-time code (server-side dry-run)", "wrong one-time code",
			"locked out until "+until+" after too many wrong one-time codes",
		))
		// The accepted code rewrote the Secret: the reconciler ran again
		// and found every refusal recorded already.
		Consistently(func() int { return len(mfaFailures(alice)()) }, "500ms").Should(Equal(6))
		for _, ev := range mfaFailures(alice)() {
			Expect(ev.Spec.Outcome).To(Equal(pimv1.AuditOutcomeFailure))
			Expect(ev.Spec.Details).To(HaveKeyWithValue("method", pimv1.MFAMethodTOTP))
		}
		Expect(verify().OK()).To(BeTrue())
	})
})
