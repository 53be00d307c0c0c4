//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// The authorizer-mode suite: `make e2e-authorizer` (hack/e2e.sh with
// E2E_ACCESS_MODE=authorizer) starts kube-apiserver with
// config/authorizer's authorization configuration pointing at the
// replicas' webhook front and the managers with --access-mode=authorizer,
// and runs only the specs labelled "authorizer"; `make e2e` (bindings
// mode) runs everything else.

// authorizerMode is the suite's access mode (hack/dev.sh's DEV_ACCESS_MODE).
func authorizerMode() bool { return os.Getenv("DEV_ACCESS_MODE") == "authorizer" }

// timedCan asks, as u, whether u may do verb on resource in ns, and returns
// the answer with when the question was sent and how long it took.
func timedCan(u user, verb, resource, ns string) (bool, time.Time, time.Duration) {
	GinkgoHelper()
	sent := time.Now()
	ok, err := u.can(verb, resource, ns)
	Expect(err).NotTo(HaveOccurred())
	return ok, sent, time.Since(sent)
}

// systemCan asks as the admin whether a system user may do something (a
// SubjectAccessReview through impersonation): Node and RBAC answer those,
// and the matchConditions keep them away from kubepim.
func systemCan(as, verb, resource, ns string) (bool, time.Duration) {
	GinkgoHelper()
	start := time.Now()
	out, err := admin.kubectl("auth", "can-i", verb, resource, "-n", ns, "--as", as)
	d := time.Since(start)
	if out == "no" {
		return false, d
	}
	Expect(err).NotTo(HaveOccurred())
	return out == "yes", d
}

// signal sends sig to the named components' processes.
func signal(sig syscall.Signal, components ...string) {
	GinkgoHelper()
	for _, c := range components {
		b, err := os.ReadFile(filepath.Join(devDir, c+".pid"))
		Expect(err).NotTo(HaveOccurred(), "%s is not running", c)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		Expect(err).NotTo(HaveOccurred())
		Expect(syscall.Kill(pid, sig)).To(Succeed(), "kill -%d %s (pid %d)", sig, c, pid)
	}
}

// standingAccessWorks checks what must never depend on kubepim: a system
// component (RBAC's bootstrap policy), an Active RoleAssignment's binding
// (mallory-authz-standing, made in BeforeAll), the requester role everyone
// holds, and the admin (system:masters).
func standingAccessWorks() time.Duration {
	GinkgoHelper()
	ok, d := systemCan("system:kube-scheduler", "list", "pods", "prod")
	Expect(ok).To(BeTrue(), "the scheduler's RBAC")
	ok, _, d2 := timedCan(alice, "create", "activationrequests.kubepim.io", "default")
	Expect(ok).To(BeTrue(), "alice's standing requester role")
	Expect(mallory.can("get", "pods", "default")).To(BeTrue(), "mallory-authz-standing, an Active RoleAssignment's binding")
	_, err := admin.kubectl("get", "pods", "-n", "prod")
	Expect(err).NotTo(HaveOccurred())
	return max(d, d2)
}

var _ = Describe("Authorizer mode", Ordered, Label("authorizer"), func() {
	BeforeAll(func() {
		if !authorizerMode() {
			Skip("authorizer mode: run with `make e2e-authorizer`")
		}
		By("standing access: an Active RoleAssignment keeps its binding in authorizer mode")
		_, err := admin.kubectlIn(`apiVersion: kubepim.io/v1alpha1
kind: RoleAssignment
metadata: {name: mallory-authz-standing}
spec:
  subject: {kind: User, name: mallory}
  roleRef: {kind: ClusterRole, name: pod-debugger}
  namespace: default
  type: Active
  justification: standing access the authorizer never sees
`, "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() (bool, error) { return mallory.can("get", "pods", "default") }).Should(BeTrue())
	})
	AfterEach(func() {
		for _, r := range replicas {
			_ = signalIfRunning(syscall.SIGCONT, r)
		}
		for _, c := range []string{"etcd", "kube-apiserver", "webhook-proxy"} {
			if !running(c) {
				dev("start", c)
			}
		}
		restartExited()
		Eventually(leaderIndex).WithTimeout(60 * time.Second).Should(BeNumerically(">=", 0))
	})

	It("grants an activation without a binding, tells a denied user how to activate, and grants nothing at or after expiresAt", func() {
		By("alice, eligible and not active, is told how to activate")
		Expect(alice.can("get", "pods", "prod")).To(BeFalse())
		_, err := alice.kubectl("get", "pods", "-n", "prod")
		Expect(err).To(MatchError(ContainSubstring("kubepim: you are eligible for ClusterRole pod-debugger")))
		Expect(err).To(MatchError(ContainSubstring("kubectl pim activate pod-debugger -n prod")))

		By("alice activates for 8 s: allowed without any binding")
		created := time.Now()
		_, err = alice.kubectlIn(sampleActivation("alice-authz-flow", "prod", 8*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		var grantedAt time.Time
		Eventually(func() bool {
			ok, _, _ := timedCan(alice, "get", "pods", "prod")
			grantedAt = time.Now()
			return ok
		}).WithPolling(20 * time.Millisecond).Should(BeTrue())
		figure("authorizer: grant (create sent → first can-i allowed; kubectl round trips included)", grantedAt.Sub(created), "—")
		expires := activeUntil("alice-authz-flow")
		ar, err := getActivation("alice-authz-flow")
		Expect(err).NotTo(HaveOccurred())
		Expect(ar.Status.Binding).To(BeNil(), "no binding in authorizer mode")
		out, err := admin.kubectl("get", "rolebindings", "-n", "prod", "-l", "app.kubernetes.io/managed-by=kubepim", "-o", "name")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).NotTo(ContainSubstring("alice-authz-flow"))
		Expect(alice.can("get", "pods", "default")).To(BeFalse())

		By("polled until after expiresAt: nothing sent at or after it is allowed")
		var lastAllowed, firstDenied time.Time
		for time.Now().Before(expires.Add(time.Second)) {
			ok, sent, _ := timedCan(alice, "get", "pods", "prod")
			if ok {
				Expect(sent).To(BeTemporally("<", expires), "a request sent at %s, after expiresAt %s, was allowed", sent, expires)
				lastAllowed = sent
			} else if firstDenied.IsZero() && !sent.Before(expires) {
				firstDenied = sent
			}
		}
		Expect(lastAllowed).NotTo(BeZero())
		Expect(firstDenied).NotTo(BeZero())
		figure("authorizer: last allowed request sent before expiresAt (polling with kubectl)", expires.Sub(lastAllowed), "—")
		figure("authorizer: first denied request sent after expiresAt", firstDenied.Sub(expires), "the polling interval")
		Eventually(stateOf("alice-authz-flow")).Should(Equal(string(pimv1.ActivationStateExpired)))
	})

	It("kill -9 of every replica: the activation's access stops at once and stays off past its expiry, while system components and standing RBAC keep working", func() {
		By("an activation active for 15 s, standing access in place")
		_, err := alice.kubectlIn(sampleActivation("alice-authz-kill", "prod", 15*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		expires := activeUntil("alice-authz-kill")
		Eventually(func() (bool, error) { return alice.can("get", "pods", "prod") }).Should(BeTrue())
		standingAccessWorks()

		By("kill -9 both replicas")
		kill9(replicas...)
		killed := time.Now()
		Expect(killed).To(BeTemporally("<", expires.Add(-5*time.Second)), "the managers must die well before the expiry")
		ok, sent, took := timedCan(alice, "get", "pods", "prod")
		Expect(ok).To(BeFalse(), "the first request after the kill is not allowed: fail-closed")
		figure("authorizer, kill -9 of all replicas: kill → first request (denied)", sent.Sub(killed), "—")
		// Bounded by the webhook's timeout (2 s; the API server may retry a
		// failed call within it) plus kubectl's own start-up.
		figure("authorizer, kill -9 of all replicas: that denied request's round trip, kubectl included (no replica answers: NoOpinion)", took, "≤ the webhook timeout (2 s) + kubectl")
		Expect(took).To(BeNumerically("<", 5*time.Second))
		// The request fails: kube-apiserver answers 500 (InternalError,
		// naming the webhook's error) rather than 403 when no authorizer
		// allowed it and one of them failed; nothing is served.
		_, err = alice.kubectl("get", "pods", "-n", "prod")
		Expect(err).To(MatchError(Or(ContainSubstring("forbidden"), ContainSubstring("/authorize"))))
		fmt.Fprintf(GinkgoWriter, "alice's request while kubepim is down: %v\n", err)

		By("meanwhile the API server serves system components and standing RBAC, without waiting")
		d := standingAccessWorks()
		figure("authorizer, kill -9 of all replicas: slowest of the standing-access checks (scheduler, requester role)", d, "—")

		By("the activation never comes back while kubepim is away, up to past its expiry")
		Consistently(func() (bool, error) { return alice.can("get", "pods", "prod") }).
			WithTimeout(time.Until(expires.Add(2 * time.Second))).WithPolling(200 * time.Millisecond).Should(BeFalse())

		By("restart both replicas: the activation, expired meanwhile, grants nothing")
		dev(append([]string{"start"}, replicas...)...)
		fi, err := os.Stat(filepath.Join(devDir, replicas[0]+".pid"))
		Expect(err).NotTo(HaveOccurred())
		figure("authorizer, kill -9 of all replicas: downtime (kill → first replica's process restarted)", fi.ModTime().Sub(killed), "chosen by the test")
		Consistently(func() (bool, error) { return alice.can("get", "pods", "prod") }).
			WithTimeout(2 * time.Second).WithPolling(100 * time.Millisecond).Should(BeFalse())
		Eventually(stateOf("alice-authz-kill")).Should(Equal(string(pimv1.ActivationStateExpired)))
		Eventually(func() []string { return actionsFor("alice-authz-kill") }).Should(Equal([]string{
			pimv1.AuditActivationRequested, pimv1.AuditActivated, pimv1.AuditExpired}))
		verifyAudit()

		By("a new activation works again at once")
		back := time.Now()
		_, err = alice.kubectlIn(sampleActivation("alice-authz-kill-after", "prod", 3*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() (bool, error) { return alice.can("get", "pods", "prod") }).Should(BeTrue())
		figure("authorizer, kill -9 of all replicas: replicas ready → a new activation allowed", time.Since(back), "—")
		Eventually(stateOf("alice-authz-kill-after")).Should(Equal(string(pimv1.ActivationStateExpired)))
		Expect(alice.can("get", "pods", "prod")).To(BeFalse())
	})

	It("kubepim hanging (every replica stopped with SIGSTOP): a request for kubepim waits the webhook timeout and is not allowed; system users and standing RBAC do not wait", func() {
		_, err := alice.kubectlIn(sampleActivation("alice-authz-hang", "prod", 30*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		activeUntil("alice-authz-hang")
		Eventually(func() (bool, error) { return alice.can("get", "pods", "prod") }).Should(BeTrue())

		By("SIGSTOP both replicas: connections are accepted by the kernel, nothing answers")
		signal(syscall.SIGSTOP, replicas...)
		stopped := true
		DeferCleanup(func() {
			if stopped {
				signal(syscall.SIGCONT, replicas...)
			}
		})
		ok, _, took := timedCan(alice, "get", "pods", "prod")
		Expect(ok).To(BeFalse(), "a request kubepim cannot answer is not allowed")
		figure("authorizer, kubepim hanging: alice's request (needs kubepim) → not allowed after", took, "≈ the webhook timeout, 2 s")
		Expect(took).To(BeNumerically(">=", 2*time.Second))
		ok, d := systemCan("system:kube-scheduler", "list", "pods", "prod")
		Expect(ok).To(BeTrue())
		figure("authorizer, kubepim hanging: the scheduler's request (RBAC, never sent to kubepim)", d, "no wait")
		ok, d = systemCan("system:kube-scheduler", "create", "secrets", "prod")
		Expect(ok).To(BeFalse())
		figure("authorizer, kubepim hanging: a system user's request RBAC refuses (matchConditions: not sent to kubepim)", d, "no wait")
		Expect(d).To(BeNumerically("<", 2*time.Second))

		By("SIGCONT: kubepim answers again")
		signal(syscall.SIGCONT, replicas...)
		stopped = false
		cont := time.Now()
		Eventually(func() (bool, error) { return alice.can("get", "pods", "prod") }).Should(BeTrue())
		figure("authorizer, kubepim hanging: SIGCONT → allowed again", time.Since(cont), "—")
		_, err = alice.kubectl("annotate", "activationrequest", "alice-authz-hang", pimv1.AnnotationDeactivate+"=done")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() (bool, error) { return alice.can("get", "pods", "prod") }).Should(BeFalse())
	})

	It("kube-apiserver kill -9 and restart: the activation is decided again once both are back, and not past its expiry", func() {
		_, err := alice.kubectlIn(sampleActivation("alice-authz-apiserver", "prod", 25*time.Second), "create", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		expires := activeUntil("alice-authz-apiserver")
		Eventually(func() (bool, error) { return alice.can("get", "pods", "prod") }).Should(BeTrue())

		By("kill -9 kube-apiserver, then start it again")
		killed := time.Now()
		kill9("kube-apiserver")
		// Its port is free once the last of its threads has gone.
		Eventually(func() bool {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+os.Getenv("DEV_APISERVER_PORT"), 100*time.Millisecond)
			if err == nil {
				_ = c.Close()
			}
			return err != nil
		}).WithTimeout(10 * time.Second).Should(BeTrue())
		dev("start", "kube-apiserver")
		back := time.Now()
		// The leader exits once it cannot renew its Lease (as a leader
		// must; AfterEach plays the kubelet and restarts it); the standby
		// keeps serving the webhook, and the proxy skips the dead replica
		// as a Service would.
		Eventually(func() (bool, error) { return alice.can("get", "pods", "prod") }).WithTimeout(60 * time.Second).Should(BeTrue())
		figure("authorizer, kube-apiserver kill -9: outage (kill → apiserver ready)", back.Sub(killed), "—")
		figure("authorizer, kube-apiserver kill -9: apiserver ready → the activation allowed again", time.Since(back), "—")
		Expect(time.Now()).To(BeTemporally("<", expires))
		standingAccessWorks()

		By("and it still ends at its expiry")
		sleepUntil(expires)
		Expect(alice.can("get", "pods", "prod")).To(BeFalse())
		Eventually(stateOf("alice-authz-apiserver")).Should(Equal(string(pimv1.ActivationStateExpired)))
		fmt.Fprintln(GinkgoWriter, "alice-authz-apiserver expired")
	})
})

// signalIfRunning sends sig to a component when it runs.
func signalIfRunning(sig syscall.Signal, component string) error {
	b, err := os.ReadFile(filepath.Join(devDir, component+".pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	return syscall.Kill(pid, sig)
}
