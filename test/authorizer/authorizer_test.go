// Package authorizer runs kubepim in --access-mode=authorizer against a
// kube-apiserver started with config/authorizer/authorization-config.yaml
// (Node, RBAC, then kubepim's authorization webhook, served for real by
// the manager): activations grant without a binding, end at expiresAt
// exactly, at once on deactivation, on the removal of the eligibility and
// on conflicting RoleSettings, and a denied user is told how to activate.
package authorizer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/test/kubepimtest"
)

var (
	env     *kubepimtest.Env
	k8s     client.Client
	stopMgr func()
	ctx     = context.Background()
	seq     atomic.Int64
)

func TestAuthorizer(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Authorizer Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(15 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	var err error
	env, err = kubepimtest.StartWith("../..", kubepimtest.Options{Authorizer: true})
	Expect(err).NotTo(HaveOccurred())
	k8s = env.Client
	env.AccessMode = grant.AccessModeAuthorizer
	stopMgr, err = env.StartManager(clock.RealClock{})
	Expect(err).NotTo(HaveOccurred())
	_, err = env.Bind(kubepimtest.RoleRequester, rbacv1.GroupKind, "system:authenticated")
	Expect(err).NotTo(HaveOccurred())
	for _, ns := range []string{"prod", "dev"} {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
})

var _ = AfterSuite(func() {
	if stopMgr != nil {
		stopMgr()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// review asks the API server, as an authorizer would be asked for a real
// request: the user with the groups an authenticated user has.
func review(user, verb, resource, namespace string) authorizationv1.SubjectAccessReviewStatus {
	GinkgoHelper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{"system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: namespace},
	}}
	Expect(k8s.Create(ctx, sar)).To(Succeed())
	return sar.Status
}

func allowed(user, verb, resource, namespace string) bool {
	GinkgoHelper()
	return review(user, verb, resource, namespace).Allowed
}

func as(user string) client.Client {
	GinkgoHelper()
	c, err := client.New(env.ConfigAs(user, []string{"system:authenticated"}, nil), client.Options{Scheme: env.Scheme})
	Expect(err).NotTo(HaveOccurred())
	return c
}

// eligible makes a ClusterRole that may get and list pods, and user
// eligible for it cluster-wide.
func eligible(user string) (string, *pimv1.RoleAssignment) {
	GinkgoHelper()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: uniq("pod-reader")},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}}
	Expect(k8s.Create(ctx, role)).To(Succeed())
	ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: uniq("eligible")}, Spec: pimv1.RoleAssignmentSpec{
		Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: user},
		RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role.Name},
		Type:    pimv1.AssignmentEligible,
	}}
	Expect(k8s.Create(ctx, ra)).To(Succeed())
	return role.Name, ra
}

func activate(user, role, namespace string, d time.Duration) *pimv1.ActivationRequest {
	GinkgoHelper()
	ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: uniq(user)}, Spec: pimv1.ActivationRequestSpec{
		RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role}, Namespace: namespace,
		Duration: metav1.Duration{Duration: d}, Justification: "authorizer test",
	}}
	// The eligibility reaches the webhook's cache a moment after it is created.
	Eventually(func() error { return as(user).Create(ctx, ar) }).Should(Succeed())
	return ar
}

func activeRequest(ar *pimv1.ActivationRequest) *pimv1.ActivationRequest {
	GinkgoHelper()
	got := &pimv1.ActivationRequest{}
	Eventually(func() pimv1.ActivationState {
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ar), got)).To(Succeed())
		return got.Status.State
	}).Should(Equal(pimv1.ActivationStateActive))
	return got
}

var _ = Describe("Access mode authorizer", func() {
	It("grants without a binding, tells a denied user how to activate, and ends at expiresAt exactly", func() {
		alice := uniq("alice")
		role, _ := eligible(alice)

		By("denying before the activation, with the command in the reason kubectl shows")
		var status authorizationv1.SubjectAccessReviewStatus
		Eventually(func() string {
			status = review(alice, "list", "pods", "prod")
			return status.Reason
		}).Should(ContainSubstring("kubectl pim activate " + role + " -n prod"))
		Expect(status.Allowed).To(BeFalse())
		Expect(status.Denied).To(BeFalse(), "kubepim never denies: later authorizers keep their say")
		cs, err := kubernetes.NewForConfig(env.ConfigAs(alice, []string{"system:authenticated"}, nil))
		Expect(err).NotTo(HaveOccurred())
		_, err = cs.CoreV1().Pods("prod").List(ctx, metav1.ListOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(HaveSuffix(`in the namespace "prod": kubepim: you are eligible for ClusterRole ` + role + ` in namespace prod, which allows this; activate it with: kubectl pim activate ` + role + ` -n prod --reason "..."`))
		GinkgoWriter.Printf("kubectl's error: %v\n", err)

		By("granting once the activation is in force, in its namespace only, with no binding")
		created := time.Now()
		ar := activate(alice, role, "prod", 3*time.Second)
		Eventually(func() bool { return allowed(alice, "list", "pods", "prod") }).WithPolling(5 * time.Millisecond).Should(BeTrue())
		grantLatency := time.Since(created)
		Expect(allowed(alice, "list", "pods", "dev")).To(BeFalse())
		Expect(allowed(alice, "delete", "pods", "prod")).To(BeFalse())
		Expect(review(alice, "list", "pods", "prod").Reason).To(ContainSubstring("allowed by ActivationRequest " + ar.Name))
		got := activeRequest(ar)
		Expect(got.Status.Binding).To(BeNil())
		var rbs rbacv1.RoleBindingList
		Expect(k8s.List(ctx, &rbs, client.InNamespace("prod"), client.MatchingLabels{pimv1.LabelManagedBy: pimv1.ManagedByValue})).To(Succeed())
		for _, rb := range rbs.Items {
			Expect(rb.Subjects).NotTo(ContainElement(HaveField("Name", alice)), "no binding for an activation in authorizer mode")
		}
		_, err = cs.CoreV1().Pods("prod").List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())

		By("ending at expiresAt: no request sent at or after it is allowed")
		expiresAt := got.Status.ExpiresAt.Time
		const poll = 20 * time.Millisecond
		type ask struct {
			sent, back time.Time
			allowed    bool
		}
		var asks []ask
		for time.Now().Before(expiresAt.Add(time.Second)) {
			sent := time.Now()
			ok := allowed(alice, "list", "pods", "prod")
			asks = append(asks, ask{sent: sent, back: time.Now(), allowed: ok})
			time.Sleep(poll)
		}
		var lastAllowed, firstDenied *ask
		for i := range asks {
			a := &asks[i]
			if a.allowed {
				Expect(a.sent.Before(expiresAt)).To(BeTrue(), "a request sent %v after expiresAt was allowed", a.sent.Sub(expiresAt))
				lastAllowed = a
			} else if firstDenied == nil && !a.sent.Before(expiresAt.Add(-time.Second)) {
				firstDenied = a
			}
		}
		Expect(lastAllowed).NotTo(BeNil())
		Expect(firstDenied).NotTo(BeNil())
		// Not early either: the grant lasts to its end.
		Expect(firstDenied.back.After(expiresAt) || firstDenied.back.Equal(expiresAt)).To(BeTrue(),
			"denied %v before expiresAt", expiresAt.Sub(firstDenied.back))
		slowest := time.Duration(0)
		for _, a := range asks {
			slowest = max(slowest, a.back.Sub(a.sent))
		}
		Expect(firstDenied.sent.Sub(expiresAt)).To(BeNumerically("<=", poll+slowest))
		AddReportEntry("authorizer grant latency (create → SubjectAccessReview allowed)", grantLatency.String())
		AddReportEntry("authorizer: last allowed request sent before expiresAt", expiresAt.Sub(lastAllowed.sent).String())
		AddReportEntry("authorizer: first denied request sent after expiresAt", firstDenied.sent.Sub(expiresAt).String())
		GinkgoWriter.Printf("grant latency %v; last allowed sent %v before expiresAt, first denied sent %v after (poll %v, slowest review %v)\n",
			grantLatency, expiresAt.Sub(lastAllowed.sent), firstDenied.sent.Sub(expiresAt), poll, slowest)
	})

	It("ends at once on deactivation", func() {
		alice := uniq("alice")
		role, _ := eligible(alice)
		ar := activate(alice, role, "prod", time.Hour)
		activeRequest(ar)
		Eventually(func() bool { return allowed(alice, "get", "pods", "prod") }).Should(BeTrue())
		patch := client.MergeFrom(ar.DeepCopy())
		ar.Annotations = map[string]string{pimv1.AnnotationDeactivate: "done"}
		Expect(as(alice).Patch(ctx, ar, patch)).To(Succeed())
		deactivated := time.Now()
		Eventually(func() bool { return allowed(alice, "get", "pods", "prod") }).WithPolling(5 * time.Millisecond).Should(BeFalse())
		lag := time.Since(deactivated)
		AddReportEntry("authorizer: deactivation → first denied", lag.String())
		GinkgoWriter.Printf("deactivation → denied: %v\n", lag)
		Expect(lag).To(BeNumerically("<", time.Second))
	})

	It("records when an activation and its eligibility were last used, and only kubepim may write it", func() {
		alice := uniq("alice")
		role, ra := eligible(alice)
		ar := activate(alice, role, "prod", time.Hour)
		active := activeRequest(ar)
		Expect(active.Status.LastUsedAt).To(BeNil())
		Eventually(func() bool { return allowed(alice, "get", "pods", "prod") }).Should(BeTrue())
		used := time.Now()
		gotAR, gotRA := &pimv1.ActivationRequest{}, &pimv1.RoleAssignment{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ar), gotAR)).To(Succeed())
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ra), gotRA)).To(Succeed())
			g.Expect(gotAR.Status.LastUsedAt).NotTo(BeNil())
			g.Expect(gotRA.Status.LastUsedAt).NotTo(BeNil())
		}).Should(Succeed())
		AddReportEntry("authorizer: first use → lastUsedAt written", time.Since(used).String())
		// The first use is written at once (seconds: what metav1.Time keeps).
		Expect(gotAR.Status.LastUsedAt.Time).To(BeTemporally("~", used, 2*time.Second))
		Expect(gotRA.Status.LastUsedAt.Time).To(Equal(gotAR.Status.LastUsedAt.Time))
		// A second use within the minute is held back: still the first.
		time.Sleep(1100 * time.Millisecond)
		Expect(allowed(alice, "get", "pods", "prod")).To(BeTrue())
		Consistently(func(g Gomega) *metav1.Time {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ar), gotAR)).To(Succeed())
			return gotAR.Status.LastUsedAt
		}).WithTimeout(time.Second).Should(Equal(gotRA.Status.LastUsedAt))
		// The requester cannot set it (the status subresource is kubepim's).
		later := metav1.NewTime(time.Now().Add(24 * time.Hour).Truncate(time.Second))
		patch := client.MergeFrom(gotAR.DeepCopy())
		gotAR.Status.LastUsedAt = &later
		Expect(apierrors.IsForbidden(as(alice).Status().Patch(ctx, gotAR, patch))).To(BeTrue())
	})

	It("ends at once when the eligibility is removed", func() {
		alice := uniq("alice")
		role, ra := eligible(alice)
		ar := activate(alice, role, "prod", time.Hour)
		activeRequest(ar)
		Eventually(func() bool { return allowed(alice, "get", "pods", "prod") }).Should(BeTrue())
		Expect(k8s.Delete(ctx, ra)).To(Succeed())
		removed := time.Now()
		Eventually(func() bool { return allowed(alice, "get", "pods", "prod") }).WithPolling(5 * time.Millisecond).Should(BeFalse())
		lag := time.Since(removed)
		AddReportEntry("authorizer: eligibility removed → first denied", lag.String())
		Expect(lag).To(BeNumerically("<", time.Second))
	})

	It("denies while the role's RoleSettings conflict, and says so", func() {
		alice := uniq("alice")
		role, _ := eligible(alice)
		ar := activate(alice, role, "", time.Hour)
		activeRequest(ar)
		Eventually(func() bool { return allowed(alice, "get", "pods", "dev") }).Should(BeTrue())
		for _, name := range []string{uniq("one"), uniq("two")} {
			rs := &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pimv1.RoleSettingSpec{
				RoleRef:    pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: role},
				Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}}}}
			Expect(k8s.Create(ctx, rs)).To(Succeed())
		}
		Eventually(func() string { return review(alice, "get", "pods", "dev").Reason }).Should(ContainSubstring("more than one RoleSetting"))
		Expect(allowed(alice, "get", "pods", "dev")).To(BeFalse())
	})

	It("keeps an Active RoleAssignment's binding: standing access does not depend on kubepim running", func() {
		bob := uniq("bob")
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: uniq("node-reader")},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list"}}}}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: uniq("active")}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: bob},
			RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role.Name},
			Type:    pimv1.AssignmentActive,
		}}
		Expect(k8s.Create(ctx, ra)).To(Succeed())
		Eventually(func() *pimv1.BindingReference {
			got := &pimv1.RoleAssignment{}
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ra), got)).To(Succeed())
			return got.Status.Binding
		}).ShouldNot(BeNil())
		Eventually(func() bool { return allowed(bob, "list", "nodes", "") }).Should(BeTrue())
		// RBAC answered, through kubepim's binding: the webhook was not asked.
		Expect(review(bob, "list", "nodes", "").Reason).To(HavePrefix("RBAC: allowed by ClusterRoleBinding"))
	})
})
