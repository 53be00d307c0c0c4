package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// GitOps tools decide whether what they applied is healthy with kstatus
// (Flux's health checks and wait, kpt, cli-utils; Argo CD's own checks
// follow the same conditions, see config/argocd). These specs compute
// kstatus over each kubepim kind as the API server returns it, with the
// manager running: Current once settled; InProgress while the manager has
// not observed the latest generation; Failed while it is stalled on
// something only a person can fix.

// kstatusOf reads obj as the unstructured object a GitOps tool sees and
// computes its kstatus.
func kstatusOf(obj client.Object) func() *status.Result {
	return func() *status.Result {
		u, err := unstructuredOf(obj)
		if err != nil {
			return &status.Result{Status: status.UnknownStatus, Message: err.Error()}
		}
		res, err := status.Compute(u)
		if err != nil {
			return &status.Result{Status: status.UnknownStatus, Message: err.Error()}
		}
		return res
	}
}

func unstructuredOf(obj client.Object) (*unstructured.Unstructured, error) {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u, k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), u)
}

// kstatusWithNewGeneration is kstatus of obj right after a spec change the
// manager has not reconciled yet: metadata.generation one ahead of
// status.observedGeneration.
func kstatusWithNewGeneration(obj client.Object) *status.Result {
	GinkgoHelper()
	u, err := unstructuredOf(obj)
	Expect(err).NotTo(HaveOccurred())
	u.SetGeneration(u.GetGeneration() + 1)
	res, err := status.Compute(u)
	Expect(err).NotTo(HaveOccurred())
	return res
}

func haveKstatus(s status.Status) OmegaMatcher { return HaveField("Status", s) }

// settled waits until the manager has observed obj's latest generation.
// Until its first status write, kstatus calls a kubepim object Current
// (no observedGeneration, no conditions: nothing to go by), as it does any
// custom resource; docs/gitops.md says so.
func settled(obj client.Object) {
	GinkgoHelper()
	Eventually(func() bool {
		u, err := unstructuredOf(obj)
		if err != nil {
			return false
		}
		observed, found, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		return found && observed == u.GetGeneration()
	}).Should(BeTrue())
}

var _ = Describe("kstatus (GitOps health)", func() {
	ctx := context.Background()

	It("RoleSetting: Current when in force, Failed while another RoleSetting governs the same role, InProgress with a new generation", func() {
		role := uniq("ks-role")
		clusterRoleFor(role, "configmaps", "get")
		// A Go client sends every field it has: start from the defaults the
		// CRD fills in for a YAML author.
		spec := policy.DefaultRoleSettingSpec()
		spec.RoleRef = pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: role}
		rs := &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: uniq("ks-rs")}, Spec: spec}
		create(rs)
		settled(rs)
		Eventually(kstatusOf(rs)).Should(haveKstatus(status.CurrentStatus))
		Expect(kstatusWithNewGeneration(rs)).To(haveKstatus(status.InProgressStatus))

		// A real spec change: InProgress until observed, then Current.
		got := getSetting(rs)
		got.Spec.Activation.RequireMFA = true
		Expect(k8s.Update(ctx, got)).To(Succeed())
		Eventually(func() int64 { return getSetting(rs).Status.ObservedGeneration }).Should(Equal(got.Generation))
		Eventually(kstatusOf(rs)).Should(haveKstatus(status.CurrentStatus))

		twin := &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: uniq("ks-rs-twin")}, Spec: *spec.DeepCopy()}
		create(twin)
		Eventually(kstatusOf(twin)).Should(And(haveKstatus(status.FailedStatus), HaveField("Message", ContainSubstring(rs.Name))))
		Eventually(kstatusOf(rs)).Should(haveKstatus(status.FailedStatus))

		Expect(k8s.Delete(ctx, twin)).To(Succeed())
		Eventually(kstatusOf(rs)).Should(haveKstatus(status.CurrentStatus))
	})

	It("RoleAssignment: Current when Eligible or Active, Failed when its binding's name is taken", func() {
		role := uniq("ks-ep")
		clusterRoleFor(role, "endpoints", "get")
		ra := assignment(uniq("ks-eligible"), uniq("kate"), role, pimv1.AssignmentEligible, nil, nil)
		create(ra)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))
		settled(ra)
		Eventually(kstatusOf(ra)).Should(haveKstatus(status.CurrentStatus))
		Expect(kstatusWithNewGeneration(ra)).To(haveKstatus(status.InProgressStatus))

		name := uniq("ks-taken")
		create(&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "kubepim-ra-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "someone-else"}},
		})
		taken := assignment(name, uniq("kate"), role, pimv1.AssignmentActive, nil, in(time.Hour))
		create(taken)
		Eventually(kstatusOf(taken)).Should(And(haveKstatus(status.FailedStatus), HaveField("Message", ContainSubstring("kubepim-ra-"+name))))
	})

	It("ActivationRequest: Current when Active and when ended, InProgress with a new generation", func() {
		alice := uniq("ks-alice")
		role, _ := eligibleFor(user(alice), nil)
		ar := activation(uniq("ks-jit"), role, time.Hour, "kstatus")
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		settled(ar)
		Eventually(kstatusOf(ar)).Should(haveKstatus(status.CurrentStatus))
		Expect(kstatusWithNewGeneration(ar)).To(haveKstatus(status.InProgressStatus))

		Expect(annotate(as(alice, nil, nil), ar, pimv1.AnnotationDeactivate, "done")).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateDeactivated))
		Eventually(kstatusOf(ar)).Should(haveKstatus(status.CurrentStatus))
	})

	It("AccessReview: Current once its instance runs, InProgress with a new generation", func() {
		role := uniq("ks-reviewed")
		clusterRoleFor(role, "secrets", "get")
		rev := review(uniq("ks-review"), role, func(s *pimv1.AccessReviewSpec) {
			s.Reviewers = []pimv1.Principal{{Kind: pimv1.SubjectKindUser, Name: "ks-reviewer"}}
		})
		create(rev)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateInProgress))
		settled(rev)
		Eventually(kstatusOf(rev)).Should(haveKstatus(status.CurrentStatus))
		Expect(kstatusWithNewGeneration(rev)).To(haveKstatus(status.InProgressStatus))
	})

	It("NotificationChannel: Current with its Secret, Failed without it", func() {
		good := uniq("ks-hook")
		channelSecret(good, map[string]string{"url": "https://hooks.example.com/kubepim"})
		ch := createChannel(good, pimv1.NotificationChannelSpec{Type: pimv1.ChannelWebhook, SecretRef: &pimv1.ChannelSecretReference{Name: good}})
		settled(ch)
		Eventually(kstatusOf(ch)).Should(haveKstatus(status.CurrentStatus))
		Expect(kstatusWithNewGeneration(ch)).To(haveKstatus(status.InProgressStatus))

		orphan := uniq("ks-orphan")
		broken := createChannel(orphan, pimv1.NotificationChannelSpec{Type: pimv1.ChannelSlack, SecretRef: &pimv1.ChannelSecretReference{Name: orphan}})
		Eventually(kstatusOf(broken)).Should(And(haveKstatus(status.FailedStatus), HaveField("Message", ContainSubstring(orphan))))
	})

	It("AuditEvent: Current (an immutable record, no status)", func() {
		var events pimv1.AuditEventList
		Eventually(func() int {
			Expect(k8s.List(ctx, &events, client.Limit(1))).To(Succeed())
			return len(events.Items)
		}).Should(BeNumerically(">", 0))
		Expect(kstatusOf(&events.Items[0])()).To(haveKstatus(status.CurrentStatus))
	})
})
