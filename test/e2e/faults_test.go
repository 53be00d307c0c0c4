//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// restartExited plays the kubelet: a replica that exited (leadership lost
// while the API server was away) is started again.
func restartExited() []string {
	GinkgoHelper()
	var restarted []string
	for _, r := range replicas {
		if !running(r) {
			dev("start", r)
			restarted = append(restarted, r)
		}
	}
	return restarted
}

var _ = Describe("Faults", Ordered, func() {
	AfterEach(func() {
		// Whatever a case did, the next starts with everything up.
		for _, c := range []string{"etcd", "kube-apiserver", "webhook-proxy"} {
			if !running(c) {
				dev("start", c)
			}
		}
		restartExited()
		Eventually(leaderIndex).WithTimeout(60 * time.Second).Should(BeNumerically(">=", 0))
	})

	It("kill -9 of every replica mid-activation and while a request waits for approval loses nothing, and late expiries are bounded by the downtime", func() {
		wProd := watchBindings("prod")
		wDefault := watchBindings("default")
		By("a request waiting for its second approval")
		_, err := bob.kubectlIn(secretReaderActivation("bob-e2e-kill", 6*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(stateOf("bob-e2e-kill")).Should(Equal(string(pimv1.ActivationStatePendingApproval)))
		_, err = carol.kubectl("annotate", "activationrequest", "bob-e2e-kill", "kubepim.io/approve=ticket checked")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() (int, error) {
			ar, err := getActivation("bob-e2e-kill")
			if err != nil {
				return 0, err
			}
			return len(ar.Status.Approvals), nil
		}).Should(Equal(1))

		By("an activation that will expire while the managers are down")
		_, err = alice.kubectlIn(sampleActivation("alice-e2e-kill", "prod", 10*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		expires := activeUntil("alice-e2e-kill")
		bE2eKill := bindingOf("alice-e2e-kill")

		By("an activation created the moment both replicas are killed")
		leader := leaderIndex()
		Expect(leader).To(BeNumerically(">=", 0))
		_, err = alice.kubectlIn(sampleActivation("alice-e2e-mid", "default", 25*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		kill9(replicas...)
		killed := time.Now() // both are dead by now: the downtime is not overstated
		Expect(killed).To(BeTemporally("<", expires), "the managers must die before alice-e2e-kill expires")
		mid, err := getActivation("alice-e2e-mid")
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprintf(GinkgoWriter, "alice-e2e-mid was %q when the managers died\n", mid.Status.State)

		By("while nobody runs, the expired activation still grants (nothing can revoke it)")
		sleepUntil(expires.Add(2 * time.Second)) // the downtime: expiry falls well inside it
		Expect(alice.can("get", "pods", "prod")).To(BeTrue())

		By("restart both replicas, the one that led first (as the kubelet restarts a crashed container)")
		// hack/dev.sh returns once both replicas are ready; the access is
		// watched meanwhile.
		restarted := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(restarted)
			dev("start", replicas[leader], replicas[1-leader])
		}()
		at := wProd.revoked(bE2eKill, alice, "get", "pods", "prod", 30*time.Second)
		Eventually(restarted).WithTimeout(2 * time.Minute).Should(BeClosed())
		// The downtime ends when the first replica's process is started
		// again: hack/dev.sh writes its pid file just before the exec.
		fi, err := os.Stat(filepath.Join(devDir, replicas[leader]+".pid"))
		Expect(err).NotTo(HaveOccurred())
		downtime := fi.ModTime().Sub(killed)
		figure("kill -9 of all replicas: downtime (kill → first replica's process restarted)", downtime, "—")
		figure("kill -9 of all replicas: expiry overshoot (revoked − expiresAt)", at.Sub(expires), fmt.Sprintf("≤ downtime + 1 s = %.2f s", (downtime+time.Second).Seconds()))
		figure("kill -9 of all replicas: restarted process → revoked", at.Sub(fi.ModTime()), "—")
		Expect(at.Sub(expires)).To(BeNumerically("<=", downtime+time.Second))
		Eventually(stateOf("alice-e2e-kill")).Should(Equal(string(pimv1.ActivationStateExpired)))

		By("the request created at the kill is activated and expires on time")
		midExpires := activeUntil("alice-e2e-mid")
		bE2eMid := bindingOf("alice-e2e-mid")
		Expect(alice.can("get", "pods", "default")).To(BeTrue())
		at = wDefault.revoked(bE2eMid, alice, "get", "pods", "default", 30*time.Second)
		figure("kill -9 mid-activation: revocation after expiresAt", at.Sub(midExpires), "< 1 s (expiry after the restart)")
		Expect(at.Sub(midExpires)).To(BeNumerically("<", time.Second))

		By("the pending request kept carol's approval; dave's completes it")
		ar, err := getActivation("bob-e2e-kill")
		Expect(err).NotTo(HaveOccurred())
		Expect(ar.Status.State).To(Equal(pimv1.ActivationStatePendingApproval))
		Expect(ar.Status.Approvals).To(HaveLen(1))
		Expect(ar.Status.Approvals[0].Approver.Username).To(Equal("carol"))
		_, err = dave.kubectl("annotate", "activationrequest", "bob-e2e-kill", "kubepim.io/approve=ok")
		Expect(err).NotTo(HaveOccurred())
		bobExpires := activeUntil("bob-e2e-kill")
		bBob := bindingOf("bob-e2e-kill")
		Expect(bob.can("get", "secrets", "prod")).To(BeTrue())
		at = wProd.revoked(bBob, bob, "get", "secrets", "prod", 30*time.Second)
		Expect(at.Sub(bobExpires)).To(BeNumerically("<", time.Second))

		By("every step is in the audit trail exactly once, and it verifies")
		Eventually(func() []string { return actionsFor("alice-e2e-kill") }).Should(Equal([]string{
			pimv1.AuditActivationRequested, pimv1.AuditActivated, pimv1.AuditExpired}))
		Eventually(func() []string { return actionsFor("alice-e2e-mid") }).Should(Equal([]string{
			pimv1.AuditActivationRequested, pimv1.AuditActivated, pimv1.AuditExpired}))
		Eventually(func() []string { return actionsFor("bob-e2e-kill") }).Should(Equal([]string{
			pimv1.AuditActivationRequested, string(pimv1.ActivationStatePendingApproval), pimv1.AuditApproved, pimv1.AuditApproved,
			pimv1.AuditActivated, pimv1.AuditExpired}))
		verifyAudit()
	})

	It("a standby takes over when the leader is killed and revokes a pending expiry within the lease duration + 1 s", func() {
		wProd := watchBindings("prod")
		leader := leaderIndex()
		Expect(leader).To(BeNumerically(">=", 0))
		standby := 1 - leader

		_, err := alice.kubectlIn(sampleActivation("alice-e2e-ha", "prod", 8*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		expires := activeUntil("alice-e2e-ha")
		bE2eHa := bindingOf("alice-e2e-ha")

		By(fmt.Sprintf("kill -9 the leader %s two seconds before the expiry", replicas[leader]))
		sleepUntil(expires.Add(-2 * time.Second))
		kill9(replicas[leader])
		killed := time.Now()
		Expect(killed).To(BeTemporally("<", expires), "the leader must die before the expiry")
		// Watch the standby's leader gauge from now on.
		tookOver := make(chan time.Time, 1)
		go func() {
			defer GinkgoRecover()
			// Polled every 50 ms: the gauge is only served, not pushed.
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for time.Since(killed) < time.Minute {
				if isLeader(standby) {
					tookOver <- time.Now()
					return
				}
				<-tick.C
			}
		}()

		By("the standby's webhooks answer meanwhile: a refusal, not a failure to call")
		_, err = mallory.kubectlIn(sampleActivation("mallory-e2e-ha", "prod", time.Hour), "create", "-f", "-")
		Expect(err).To(MatchError(ContainSubstring("not eligible")))

		at := wProd.revoked(bE2eHa, alice, "get", "pods", "prod", 30*time.Second)
		var took time.Time
		Eventually(tookOver).Should(Receive(&took))
		figure("leader kill -9: takeover (kill → standby's leader gauge is 1)", took.Sub(killed), "—")
		figure("leader kill -9: expiry overshoot (revoked − expiresAt)", at.Sub(expires), fmt.Sprintf("≤ lease duration + 1 s = %s", leaseDuration+time.Second))
		Expect(at.Sub(expires)).To(BeNumerically("<=", leaseDuration+time.Second))
		Eventually(stateOf("alice-e2e-ha")).Should(Equal(string(pimv1.ActivationStateExpired)))
		Eventually(func() []string { return actionsFor("alice-e2e-ha") }).Should(Equal([]string{
			pimv1.AuditActivationRequested, pimv1.AuditActivated, pimv1.AuditExpired}))

		By("the killed replica comes back as the standby")
		dev("start", replicas[leader])
		Consistently(func() int { return leaderIndex() }).WithTimeout(2 * time.Second).Should(Equal(standby))
	})

	It("survives a kill -9 and restart of etcd and kube-apiserver: expiries due meanwhile are revoked once it is back", func() {
		_, err := alice.kubectlIn(sampleActivation("alice-e2e-apiserver", "prod", 3*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		expires := activeUntil("alice-e2e-apiserver")

		By("kill -9 kube-apiserver and etcd; the expiry falls in the outage")
		killed := time.Now()
		kill9("kube-apiserver", "etcd")
		sleepUntil(expires.Add(time.Second))
		_, err = alice.can("get", "pods", "prod")
		Expect(err).To(HaveOccurred())

		By("start them again")
		dev("start", "etcd", "kube-apiserver")
		back := time.Now()
		at := revokedAt(alice, "get", "pods", "prod", 60*time.Second)
		figure("etcd + apiserver kill -9: outage (kill → apiserver ready)", back.Sub(killed), "—")
		figure("etcd + apiserver kill -9: revoked after the apiserver is ready", at.Sub(back), fmt.Sprintf("≤ lease duration + 1 s = %s", leaseDuration+time.Second))
		Expect(at.Sub(back)).To(BeNumerically("<=", leaseDuration+time.Second))
		Eventually(stateOf("alice-e2e-apiserver")).Should(Equal(string(pimv1.ActivationStateExpired)))
		restarted := restartExited()
		fmt.Fprintf(GinkgoWriter, "replicas that exited during the outage (leadership lost) and were restarted: %v\n", restarted)
		AddReportEntry("replicas restarted after the API server outage", strings.Join(restarted, ","))

		By("objects survived and the audit trail is whole")
		out, err := admin.kubectl("get", "roleassignments", "-o", "name")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Fields(out)).To(ContainElement("roleassignment.kubepim.io/alice-pod-debugger"))
		Eventually(func() []string { return actionsFor("alice-e2e-apiserver") }).Should(Equal([]string{
			pimv1.AuditActivationRequested, pimv1.AuditActivated, pimv1.AuditExpired}))
		verifyAudit()

		By("activation works again")
		wProd := watchBindings("prod")
		// A replica that lived through the outage may answer from a cache
		// whose watch is still backing off: it sees alice's old request as
		// Active and refuses (fails closed) until the cache catches up.
		Eventually(func() error {
			_, err := alice.kubectlIn(sampleActivation("alice-e2e-apiserver-after", "prod", 2*time.Second), "create", "-f", "-")
			return err
		}).WithTimeout(90 * time.Second).WithPolling(time.Second).Should(Succeed())
		figure("etcd + apiserver kill -9: apiserver ready → a new activation is admitted", time.Since(back), "—")
		after := activeUntil("alice-e2e-apiserver-after")
		bE2eApiserverAfter := bindingOf("alice-e2e-apiserver-after")
		at = wProd.revoked(bE2eApiserverAfter, alice, "get", "pods", "prod", 20*time.Second)
		Expect(at.Sub(after)).To(BeNumerically("<", time.Second))
	})

	It("with the webhooks unreachable refuses writes and stores nothing, and still revokes on time", func() {
		wProd := watchBindings("prod")
		_, err := bob.kubectlIn(secretReaderActivation("bob-e2e-webhook", 6*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(stateOf("bob-e2e-webhook")).Should(Equal(string(pimv1.ActivationStatePendingApproval)))
		_, err = alice.kubectlIn(sampleActivation("alice-e2e-webhook", "prod", 3*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		expires := activeUntil("alice-e2e-webhook")
		bE2eWebhook := bindingOf("alice-e2e-webhook")

		By("stop the webhook front; both replicas keep running")
		dev("stop", "webhook-proxy")

		By("a new activation is refused and not stored")
		_, err = alice.kubectlIn(sampleActivation("alice-e2e-webhook-down", "default", time.Hour), "create", "-f", "-")
		Expect(err).To(MatchError(ContainSubstring("failed calling webhook")))
		_, err = getActivation("alice-e2e-webhook-down")
		Expect(notFound(err)).To(BeTrue(), "%v", err)

		By("an approval is refused and not recorded")
		_, err = carol.kubectl("annotate", "activationrequest", "bob-e2e-webhook", "kubepim.io/approve=ticket checked")
		Expect(err).To(MatchError(ContainSubstring("failed calling webhook")))
		ar, err := getActivation("bob-e2e-webhook")
		Expect(err).NotTo(HaveOccurred())
		Expect(ar.Annotations).NotTo(HaveKey(pimv1.AnnotationApprove))
		Expect(ar.Status.Approvals).To(BeEmpty())
		Expect(ar.Status.State).To(Equal(pimv1.ActivationStatePendingApproval))

		By("an assignment is refused, so nobody gets a binding")
		_, err = admin.kubectlIn(`apiVersion: kubepim.io/v1alpha1
kind: RoleAssignment
metadata: {name: mallory-e2e-webhook}
spec:
  subject: {kind: User, name: mallory}
  roleRef: {kind: ClusterRole, name: pod-debugger}
  type: Active
  justification: should never exist
`, "create", "-f", "-")
		Expect(err).To(MatchError(ContainSubstring("failed calling webhook")))
		Expect(mallory.can("get", "pods", "prod")).To(BeFalse())

		By("the expiry in the outage still ends the access on time")
		at := wProd.revoked(bE2eWebhook, alice, "get", "pods", "prod", 20*time.Second)
		figure("webhooks unreachable: revocation after expiresAt", at.Sub(expires), "< 1 s")
		Expect(at.Sub(expires)).To(BeNumerically("<", time.Second))
		out, err := admin.kubectl("get", "activationrequest", "alice-e2e-webhook", "-o", "jsonpath={.status.state}")
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprintf(GinkgoWriter, "alice-e2e-webhook is %q while the webhooks are down\n", out)

		By("webhooks back: the record catches up, exactly once")
		dev("start", "webhook-proxy")
		Eventually(stateOf("alice-e2e-webhook")).WithTimeout(60 * time.Second).Should(Equal(string(pimv1.ActivationStateExpired)))
		Eventually(func() []string { return actionsFor("alice-e2e-webhook") }).WithTimeout(60 * time.Second).Should(Equal([]string{
			pimv1.AuditActivationRequested, pimv1.AuditActivated, pimv1.AuditExpired}))
		_, err = getActivation("alice-e2e-webhook-down")
		Expect(notFound(err)).To(BeTrue(), "%v", err)
		Expect(actionsFor("bob-e2e-webhook")).To(Equal([]string{pimv1.AuditActivationRequested, string(pimv1.ActivationStatePendingApproval)}))
		verifyAudit()
		// bob withdraws it, so that no other case finds him waiting already.
		_, err = bob.kubectl("annotate", "activationrequest", "bob-e2e-webhook", pimv1.AnnotationCancel+"=done")
		Expect(err).NotTo(HaveOccurred())
		Eventually(stateOf("bob-e2e-webhook")).Should(Equal(string(pimv1.ActivationStateCancelled)))
	})
})
