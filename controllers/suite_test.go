package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/test/kubepimtest"
)

// The suite runs kubepim's manager against a real kube-apiserver and etcd.
// Most specs drive it with a fake clock (fakeClock); a few swap in the real
// clock to measure revocation lag.
var (
	env       *kubepimtest.Env
	testEnv   *envtest.Environment
	cfg       *rest.Config
	scheme    *runtime.Scheme
	k8s       client.Client // the cluster admin, uncached
	fakeClock *clocktesting.FakeClock
	stopMgr   func()
)

// consoleURL is the manager's --console-url: notifications link there.
const consoleURL = "https://pim.example.com"

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	// Eventually waits on real state changes made by the manager; a loaded
	// 2-core CI machine can take a few seconds for the first of them.
	SetDefaultEventuallyTimeout(15 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)

	var err error
	env, err = kubepimtest.Start("..")
	Expect(err).NotTo(HaveOccurred())
	testEnv, cfg, scheme, k8s = env.Env, env.Config, env.Scheme, env.Client

	// The fake clock starts a minute ahead of the API server's clock, so
	// that objects the server stamps with creationTimestamp "now" have
	// started by fake time. Whole seconds: metav1.Time keeps no more.
	fakeClock = clocktesting.NewFakeClock(time.Now().Add(time.Minute).Truncate(time.Second))
	stopMgr = startManager(fakeClock)
	grantRequesterRole()
})

var _ = AfterSuite(func() {
	if stopMgr != nil {
		stopMgr()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// startManager runs kubepim's manager on clk and returns a function that
// stops it and waits until it has stopped.
func startManager(clk clock.WithTicker) func() {
	GinkgoHelper()
	env.ConsoleURL = consoleURL
	stop, err := env.StartManager(clk)
	Expect(err).NotTo(HaveOccurred())
	return stop
}

// canI asks the API server, with a SubjectAccessReview, whether user (in
// groups) may verb resource in namespace ("" for cluster-wide).
func canI(user string, groups []string, verb, resource, namespace string) bool {
	GinkgoHelper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Resource: resource, Namespace: namespace,
		},
	}}
	Expect(k8s.Create(context.Background(), sar)).To(Succeed())
	return sar.Status.Allowed
}

// canIIn asks whether user may verb resource of an API group cluster-wide.
func canIIn(user, group, verb, resource string) bool {
	GinkgoHelper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: group, Verb: verb, Resource: resource},
	}}
	Expect(k8s.Create(context.Background(), sar)).To(Succeed())
	return sar.Status.Allowed
}

// clusterRoleFor makes a concrete ClusterRole (envtest runs no controller
// that fills aggregated roles) that grants verbs on one resource.
func clusterRoleFor(name, resource string, verbs ...string) *rbacv1.ClusterRole {
	GinkgoHelper()
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{resource}, Verbs: verbs}},
	}
	Expect(k8s.Create(context.Background(), role)).To(Succeed())
	DeferCleanup(func() { _ = k8s.Delete(context.Background(), role) })
	return role
}

func unstructuredFrom(obj map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: obj}
}

// kubepimNamespace is where the manager keeps its Secrets in the tests.
const kubepimNamespace = kubepimtest.Namespace

// grantRequesterRole lets every authenticated user work with
// ActivationRequests (and decide on AccessReviews) exactly as the shipped
// kubepim-requester role does, bound as docs/install.md suggests.
func grantRequesterRole() {
	_, err := env.Bind(kubepimtest.RoleRequester, rbacv1.GroupKind, "system:authenticated")
	Expect(err).NotTo(HaveOccurred())
}

// as returns a client that acts as user, with groups and extra claims, by
// impersonation: the API server authenticates the admin and then treats
// every request as that user's, webhooks and authorization included.
func as(user string, groups []string, extra map[string][]string) client.Client {
	GinkgoHelper()
	cl, err := client.New(env.ConfigAs(user, groups, extra), client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	return cl
}

func keyOf(obj client.Object) client.ObjectKey { return client.ObjectKeyFromObject(obj) }

func getAssignment(ra *pimv1.RoleAssignment) *pimv1.RoleAssignment {
	GinkgoHelper()
	got := &pimv1.RoleAssignment{}
	Expect(k8s.Get(context.Background(), keyOf(ra), got)).To(Succeed())
	return got
}
