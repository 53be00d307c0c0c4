package webhooks

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/authz"
	"github.com/kubepim/kubepim/internal/lookup"
)

// The handlers are tested on decoded objects, without an API server: a
// fake client is only the data source of the few lookups they make (the
// cache's indexes, roles, the signing key), and access reviews are
// answered by a table. The behaviour end to end is tested by the envtest
// suites in controllers/.

var testNow = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

const testNamespace = "kubepim-system"

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{pimv1.AddToScheme, corev1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// builderIndexer registers lookup's indexes with a fake client builder.
type builderIndexer struct{ b *fake.ClientBuilder }

func (i builderIndexer) IndexField(_ context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	i.b.WithIndex(obj, field, extract)
	return nil
}

// fakeClient holds objs, indexed as the manager's cache is.
func fakeClient(objs ...client.Object) client.Client {
	b := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(objs...)
	if err := lookup.Setup(context.Background(), builderIndexer{b}); err != nil {
		panic(err)
	}
	return b.Build()
}

// access answers access reviews: "user verb resource" (resource is the
// plural, or the path of a non-resource URL) is allowed when listed.
type access struct {
	allow map[string]bool
	err   error
	asked []string
}

func allowing(rules ...string) *access {
	a := &access{allow: map[string]bool{}}
	for _, r := range rules {
		a.allow[r] = true
	}
	return a
}

func (a *access) allowed(_ context.Context, user *pimv1.UserInfo, attrs authz.Attributes) (bool, error) {
	var q string
	if r := attrs.Resource; r != nil {
		q = user.Username + " " + r.Verb + " " + r.Resource
	} else {
		q = user.Username + " " + attrs.NonResource.Verb + " " + attrs.NonResource.Path
	}
	a.asked = append(a.asked, q)
	if a.err != nil {
		return false, a.err
	}
	return a.allow[q], nil
}

var errAPI = errors.New("the API server is gone")

// testBase is a handlerBase over c with the access table a.
func testBase(c client.Client, a *access) handlerBase {
	return handlerBase{cache: c, direct: c, allowed: a.allowed, cfg: Config{
		Clock: clocktesting.NewFakePassiveClock(testNow), MFAClaim: "amr", MFAClaimValues: DefaultMFAClaimValues, Namespace: testNamespace,
	}}
}

func testKeys(c client.Client) *approval.Keys {
	return &approval.Keys{Client: c, Namespace: testNamespace}
}

func user(name string, groups ...string) *pimv1.UserInfo {
	return &pimv1.UserInfo{Username: name, UID: name + "-uid", Groups: groups}
}

// mfaUser signed in with a second factor (the amr claim).
func mfaUser(name string) *pimv1.UserInfo {
	u := user(name)
	u.Extra = map[string][]string{"amr": {"pwd", "mfa"}}
	return u
}

func create[T client.Object](u *pimv1.UserInfo, obj T) Request[T] {
	return Request[T]{Operation: admissionv1.Create, Name: obj.GetName(), User: u, New: obj}
}

func update[T client.Object](u *pimv1.UserInfo, old, obj T) Request[T] {
	return Request[T]{Operation: admissionv1.Update, Name: obj.GetName(), User: u, Old: old, New: obj}
}

func remove[T client.Object](u *pimv1.UserInfo, old T) Request[T] {
	return Request[T]{Operation: admissionv1.Delete, Name: old.GetName(), User: u, Old: old}
}

// want is the expected decision: allowed (no errors), or one error of a
// type on a field path whose detail contains a text.
type want struct {
	typ    field.ErrorType
	field  string
	detail string
}

var allowed = want{}

func refused(path, detail string) want { return want{field.ErrorTypeForbidden, path, detail} }
func failed(path string) want          { return want{field.ErrorTypeInternal, path, errAPI.Error()} }

func (w want) check(t *testing.T, errs field.ErrorList) {
	t.Helper()
	if w == allowed {
		if len(errs) > 0 {
			t.Fatalf("refused: %v", errs.ToAggregate())
		}
		return
	}
	if len(errs) == 0 {
		t.Fatalf("allowed; want %s on %s (%q)", w.typ, w.field, w.detail)
	}
	for _, e := range errs {
		if e.Type == w.typ && e.Field == w.field && strings.Contains(e.Detail, w.detail) {
			return
		}
	}
	t.Fatalf("got %v; want %s on %s containing %q", errs.ToAggregate(), w.typ, w.field, w.detail)
}

func annotated[T client.Object](obj T, kv ...string) T {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	for i := 0; i < len(kv); i += 2 {
		a[kv[i]] = kv[i+1]
	}
	obj.SetAnnotations(a)
	return obj
}

func clusterRole(name string) pimv1.RoleRef {
	return pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: name}
}

func eligible(name, subject string, role pimv1.RoleRef) *pimv1.RoleAssignment {
	return &pimv1.RoleAssignment{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(testNow.Add(-time.Hour))},
		Spec:       pimv1.RoleAssignmentSpec{Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: subject}, RoleRef: role, Type: pimv1.AssignmentEligible},
	}
}
