//go:build e2e

package e2e

import (
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var _ = Describe("The documented flows, with kubectl as real users", Ordered, func() {
	It("activates pod-debugger without approval, grants it in prod only, and revokes it at expiry", func() {
		wProd := watchBindings("prod")
		By("alice is eligible, not active")
		Expect(alice.can("get", "pods", "prod")).To(BeFalse())
		out, err := alice.kubectl("get", "roleassignment", "alice-pod-debugger", "-o", "jsonpath={.status.state}")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal(string(pimv1.AssignmentStateEligible)))

		By("mallory, not eligible, is refused and nothing is stored")
		_, err = mallory.kubectlIn(sampleActivation("mallory-pod-debugger", "prod", time.Hour), "create", "-f", "-")
		Expect(err).To(MatchError(ContainSubstring("not eligible")))
		_, err = getActivation("mallory-pod-debugger")
		Expect(notFound(err)).To(BeTrue(), "%v", err)

		By("alice activates the sample for 6s")
		_, err = alice.kubectlIn(sampleActivation("alice-e2e-flow", "prod", 6*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		expires := activeUntil("alice-e2e-flow")
		bE2eFlow := bindingOf("alice-e2e-flow")
		ar, err := getActivation("alice-e2e-flow")
		Expect(err).NotTo(HaveOccurred())
		Expect(ar.Spec.Requester).NotTo(BeNil())
		Expect(ar.Spec.Requester.Username).To(Equal("alice"))
		Expect(ar.Spec.Requester.Groups).To(ContainElement("developers"))
		Expect(alice.can("get", "pods", "prod")).To(BeTrue())
		Expect(alice.can("get", "pods", "default")).To(BeFalse())

		By("asking twice is refused")
		_, err = alice.kubectlIn(sampleActivation("alice-e2e-flow-twice", "prod", 6*time.Second), "create", "-f", "-")
		Expect(err).To(HaveOccurred())

		By("at expiresAt the access ends")
		at := wProd.revoked(bE2eFlow, alice, "get", "pods", "prod", 20*time.Second)
		figure("activation: revocation after expiresAt (no fault)", at.Sub(expires), "< 1 s")
		Expect(at.Sub(expires)).To(BeNumerically("<", time.Second))
		Eventually(stateOf("alice-e2e-flow")).Should(Equal(string(pimv1.ActivationStateExpired)))
	})

	It("activates secret-reader only after two approvals, refusing the requester and non-approvers", func() {
		wProd := watchBindings("prod")
		_, err := bob.kubectlIn(secretReaderActivation("bob-e2e-secrets", 8*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(stateOf("bob-e2e-secrets")).Should(Equal(string(pimv1.ActivationStatePendingApproval)))
		out, err := carol.kubectl("get", "activationrequests", "--field-selector", "status.state=PendingApproval", "-o", "name")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("bob-e2e-secrets"))
		Expect(bob.can("get", "secrets", "prod")).To(BeFalse())

		By("bob cannot approve his own request; mallory is no approver")
		_, err = bob.kubectl("annotate", "activationrequest", "bob-e2e-secrets", "kubepim.io/approve=me")
		Expect(err).To(HaveOccurred())
		_, err = mallory.kubectl("annotate", "activationrequest", "bob-e2e-secrets", "kubepim.io/approve=sure")
		Expect(err).To(HaveOccurred())

		By("carol and dave (sre-leads) approve")
		_, err = carol.kubectl("annotate", "activationrequest", "bob-e2e-secrets", "kubepim.io/approve=ticket checked")
		Expect(err).NotTo(HaveOccurred())
		Consistently(stateOf("bob-e2e-secrets")).WithTimeout(time.Second).Should(Equal(string(pimv1.ActivationStatePendingApproval)))
		_, err = dave.kubectl("annotate", "activationrequest", "bob-e2e-secrets", "kubepim.io/approve=ok")
		Expect(err).NotTo(HaveOccurred())
		expires := activeUntil("bob-e2e-secrets")
		bE2eSecrets := bindingOf("bob-e2e-secrets")
		out, err = admin.kubectl("get", "activationrequest", "bob-e2e-secrets", "-o", "jsonpath={.status.approvals[*].approver.username}")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Fields(out)).To(ConsistOf("carol", "dave"))
		Expect(bob.can("get", "secrets", "prod")).To(BeTrue())

		at := wProd.revoked(bE2eSecrets, bob, "get", "secrets", "prod", 20*time.Second)
		figure("approval: revocation after expiresAt (no fault)", at.Sub(expires), "< 1 s")
		Expect(at.Sub(expires)).To(BeNumerically("<", time.Second))
	})

	It("exports the audit trail to an auditor, with kubectl and kubectl pim, and it verifies", func() {
		Eventually(func() []string { return actionsFor("alice-e2e-flow") }).Should(Equal([]string{
			pimv1.AuditActivationRequested, pimv1.AuditActivated, pimv1.AuditExpired}))
		Eventually(func() []string { return actionsFor("bob-e2e-secrets") }).Should(Equal([]string{
			pimv1.AuditActivationRequested, string(pimv1.ActivationStatePendingApproval), pimv1.AuditApproved, pimv1.AuditApproved,
			pimv1.AuditActivated, pimv1.AuditExpired}))

		By("kubectl pim audit -o json, filtered by user")
		out, err := audra.kubectl("pim", "audit", "--user", "bob", "-o", "json")
		Expect(err).NotTo(HaveOccurred())
		var approvers []string
		for _, line := range strings.Split(out, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			var e struct {
				Action string `json:"action"`
				Actor  *struct {
					Username string `json:"username"`
				} `json:"actor"`
			}
			Expect(json.Unmarshal([]byte(line), &e)).To(Succeed(), line)
			if e.Action == pimv1.AuditApproved && e.Actor != nil {
				approvers = append(approvers, e.Actor.Username)
			}
		}
		Expect(approvers).To(ContainElements("carol", "dave"))

		By("kubectl pim audit -o csv")
		out, err = audra.kubectl("pim", "audit", "--since", "1h", "-o", "csv")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("alice-e2e-flow"))

		By("only auditors may read it; nobody may change it")
		_, err = alice.kubectl("get", "auditevents")
		Expect(err).To(MatchError(ContainSubstring("forbidden")))
		name, err := audra.kubectl("get", "auditevents", "-o", "jsonpath={.items[0].metadata.name}")
		Expect(err).NotTo(HaveOccurred())
		_, err = admin.kubectl("delete", "auditevent", name)
		Expect(err).To(MatchError(ContainSubstring("immutable")))
		verifyAudit()
	})
})
