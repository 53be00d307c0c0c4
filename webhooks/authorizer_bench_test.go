package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/lookup"
)

// The authorizer's own decision time at scale (docs/performance.md): the
// handler's decide — every cache read and policy.DecideAccess, what
// kubepim_authorizer_decision_seconds measures — over a cache of 10,000
// RoleAssignments and 1,000 active activations, read as the manager's
// informer cache reads: by index, each object deep-copied out
// (controller-runtime's cache reader copies unless told not to). Each
// iteration is timed; p50 and p99 are reported beside ns/op.
//
//	go test ./webhooks -run '^$' -bench BenchmarkAuthorizerDecision -benchmem

// indexedReader is an in-memory client.Reader with field indexes, as the
// manager's cache answers Get and List(MatchingFields) (an exact index
// lookup, then a deep copy of each object).
type indexedReader struct {
	extractors map[reflect.Type]map[string]client.IndexerFunc
	objs       map[reflect.Type]map[types.NamespacedName]client.Object
	index      map[reflect.Type]map[string]map[string][]client.Object
}

func newIndexedReader() *indexedReader {
	return &indexedReader{
		extractors: map[reflect.Type]map[string]client.IndexerFunc{},
		objs:       map[reflect.Type]map[types.NamespacedName]client.Object{},
		index:      map[reflect.Type]map[string]map[string][]client.Object{},
	}
}

func (r *indexedReader) IndexField(_ context.Context, obj client.Object, field string, extract client.IndexerFunc) error {
	t := reflect.TypeOf(obj).Elem()
	if r.extractors[t] == nil {
		r.extractors[t] = map[string]client.IndexerFunc{}
	}
	r.extractors[t][field] = extract
	return nil
}

func (r *indexedReader) add(obj client.Object) {
	t := reflect.TypeOf(obj).Elem()
	if r.objs[t] == nil {
		r.objs[t] = map[types.NamespacedName]client.Object{}
		r.index[t] = map[string]map[string][]client.Object{}
	}
	r.objs[t][client.ObjectKeyFromObject(obj)] = obj
	for field, extract := range r.extractors[t] {
		if r.index[t][field] == nil {
			r.index[t][field] = map[string][]client.Object{}
		}
		for _, v := range extract(obj) {
			r.index[t][field][v] = append(r.index[t][field][v], obj)
		}
	}
}

func (r *indexedReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	t := reflect.TypeOf(obj).Elem()
	found, ok := r.objs[t][key]
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: t.Name()}, key.Name)
	}
	reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(found.DeepCopyObject()).Elem())
	return nil
}

func (r *indexedReader) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	items, err := apimeta.GetItemsPtr(list)
	if err != nil {
		return err
	}
	t := reflect.TypeOf(items).Elem().Elem()
	var src []client.Object
	if o.FieldSelector != nil {
		reqs := o.FieldSelector.Requirements()
		if len(reqs) != 1 {
			return fmt.Errorf("one field requirement, got %v", reqs)
		}
		src = r.index[t][reqs[0].Field][reqs[0].Value]
	} else {
		for _, obj := range r.objs[t] {
			src = append(src, obj)
		}
	}
	out := make([]kruntime.Object, 0, len(src))
	for _, obj := range src {
		if o.Namespace == "" || obj.GetNamespace() == o.Namespace {
			out = append(out, obj.DeepCopyObject())
		}
	}
	return apimeta.SetList(list, out)
}

// Scale of the benchmark's cache (issue 19's target).
const (
	benchAssignments     = 10_000
	benchActive          = 1_000
	benchUsers           = 5_000
	benchGroups          = 200
	benchRoles           = 50
	benchExpiredPerActor = 3
)

func benchUser(i int) string  { return fmt.Sprintf("user-%04d", i) }
func benchGroup(i int) string { return fmt.Sprintf("group-%03d", i) }
func benchRole(i int) string  { return fmt.Sprintf("role-%02d", i) }

// benchGroupsOf: each user is in three groups.
func benchGroupsOf(u int) []string {
	return []string{benchGroup(u % benchGroups), benchGroup((u * 7) % benchGroups), benchGroup((u * 13) % benchGroups), "system:authenticated"}
}

// benchCache builds the cache: 50 ClusterRoles of 8 rules each (role-00
// is pod-debugger's, the one everybody may activate), a RoleSetting per
// role; 10,000 RoleAssignments — every user eligible for role-00
// cluster-wide (5,000: the popular role), 4,800 more user assignments
// spread over the other roles, 200 group assignments; 1,000 users with an
// Active activation of role-00 in their namespace, and every one of those
// with three Expired ones (4,000 ActivationRequests).
func benchCache(now time.Time) *indexedReader {
	r := newIndexedReader()
	if err := lookup.Setup(context.Background(), r); err != nil {
		panic(err)
	}
	created := metav1.NewTime(now.Add(-30 * 24 * time.Hour))
	for i := range benchRoles {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: benchRole(i)}}
		role.Rules = []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "pods/log", "events"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/portforward", "pods/attach"}, Verbs: []string{"create", "get"}},
			{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"get", "patch", "update"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale"}, Verbs: []string{"patch", "update"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{fmt.Sprintf("app-config-%d", i)}, Verbs: []string{"get", "update"}},
			{NonResourceURLs: []string{"/healthz", "/metrics/*"}, Verbs: []string{"get"}},
		}
		r.add(role)
		r.add(&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: benchRole(i), CreationTimestamp: created},
			Spec: pimv1.RoleSettingSpec{RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: benchRole(i)}}})
	}
	n := 0
	assign := func(subject pimv1.Subject, role int, ns string) {
		n++
		r.add(&pimv1.RoleAssignment{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ra-%05d", n), UID: types.UID(fmt.Sprintf("ra-%05d", n)), CreationTimestamp: created},
			Spec: pimv1.RoleAssignmentSpec{Subject: subject, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: benchRole(role)},
				Namespace: ns, Type: pimv1.AssignmentEligible, Justification: "on call rota"},
			Status: pimv1.RoleAssignmentStatus{State: pimv1.AssignmentStateEligible},
		})
	}
	for u := range benchUsers {
		assign(pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: benchUser(u)}, 0, "")
	}
	for g := range benchGroups {
		assign(pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: benchGroup(g)}, 1+g%(benchRoles-1), fmt.Sprintf("ns-%03d", g))
	}
	for i := 0; n < benchAssignments; i++ {
		assign(pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: benchUser(i % benchUsers)}, 1+i%(benchRoles-1), fmt.Sprintf("ns-%03d", i%300))
	}
	activated, expires := metav1.NewTime(now.Add(-10*time.Minute)), metav1.NewTime(now.Add(50*time.Minute))
	for u := range benchActive {
		requester := &pimv1.UserInfo{Username: benchUser(u), Groups: benchGroupsOf(u)}
		ref := pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: benchRole(0)}
		ns := fmt.Sprintf("ns-%03d", u%300)
		r.add(&pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-active", benchUser(u)), CreationTimestamp: activated},
			Spec:   pimv1.ActivationRequestSpec{RoleRef: ref, Namespace: ns, Requester: requester, Justification: "incident"},
			Status: pimv1.ActivationRequestStatus{State: pimv1.ActivationStateActive, ActivatedAt: &activated, ExpiresAt: &expires}})
		for e := range benchExpiredPerActor {
			from, to := metav1.NewTime(now.Add(-time.Duration(e+1)*24*time.Hour)), metav1.NewTime(now.Add(-time.Duration(e+1)*24*time.Hour+time.Hour))
			r.add(&pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-old-%d", benchUser(u), e), CreationTimestamp: from},
				Spec:   pimv1.ActivationRequestSpec{RoleRef: ref, Namespace: ns, Requester: requester, Justification: "incident"},
				Status: pimv1.ActivationRequestStatus{State: pimv1.ActivationStateExpired, ActivatedAt: &from, ExpiresAt: &to}})
		}
	}
	return r
}

func benchSpec(u int, verb, resource, ns string) authorizationv1.SubjectAccessReviewSpec {
	return authorizationv1.SubjectAccessReviewSpec{User: benchUser(u), Groups: benchGroupsOf(u),
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: ns}}
}

// reportPercentiles adds p50 and p99 of the per-iteration times.
func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Nanoseconds())/1e3, "p99-µs")
}

func BenchmarkAuthorizerDecision(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cache := benchCache(testNow)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.Logf("cache: %d RoleAssignments, %d ActivationRequests (%d active), %d ClusterRoles; %.1f MiB of heap",
		benchAssignments, benchActive*(1+benchExpiredPerActor), benchActive, benchRoles, float64(after.HeapAlloc-before.HeapAlloc)/(1<<20))
	a := &accessAuthorizer{cache: cache, clock: clocktesting.NewFakePassiveClock(testNow), log: logr.Discard()}
	ctx := context.Background()

	cases := []struct {
		name    string
		spec    func(i int) authorizationv1.SubjectAccessReviewSpec
		allowed bool
		reason  string
	}{
		// A user with an activation in force, inside it: allowed.
		{"allowed", func(i int) authorizationv1.SubjectAccessReviewSpec {
			u := i % benchActive
			return benchSpec(u, "get", "pods", fmt.Sprintf("ns-%03d", u%300))
		}, true, "allowed by ActivationRequest"},
		// The same user outside their activation's namespace: no opinion,
		// with the hint (their own assignments are read too).
		{"no-opinion-with-hint", func(i int) authorizationv1.SubjectAccessReviewSpec {
			u := i % benchActive
			return benchSpec(u, "get", "pods", "elsewhere")
		}, false, "you are eligible for ClusterRole role-00"},
		// A user without activations asking for something no role allows.
		{"no-opinion-nothing", func(i int) authorizationv1.SubjectAccessReviewSpec {
			return benchSpec(benchActive+i%(benchUsers-benchActive), "delete", "secrets", "ns-001")
		}, false, ""},
	}
	for _, c := range cases {
		d, err := a.decide(ctx, c.spec(7))
		if err != nil || d.Allowed != c.allowed || !strings.Contains(d.Reason, c.reason) {
			b.Fatalf("%s: %+v, %v", c.name, d, err)
		}
		b.Run(c.name, func(b *testing.B) {
			times := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				spec := c.spec(i)
				start := time.Now()
				_, _ = a.decide(ctx, spec)
				times = append(times, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, times)
		})
	}

	// The whole handler: JSON in and out, as the API server calls it.
	b.Run("http-allowed", func(b *testing.B) {
		bodies := make([]string, benchActive)
		for u := range bodies {
			bodies[u] = fmt.Sprintf(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":%q,"groups":["%s"],"resourceAttributes":{"verb":"get","resource":"pods","namespace":"ns-%03d"}}}`,
				benchUser(u), strings.Join(benchGroupsOf(u), `","`), u%300)
		}
		times := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			req := httptest.NewRequest(http.MethodPost, AuthorizerPath, strings.NewReader(bodies[i%benchActive]))
			w := httptest.NewRecorder()
			start := time.Now()
			a.ServeHTTP(w, req)
			times = append(times, time.Since(start))
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"allowed":true`) {
				b.Fatalf("%d %s", w.Code, w.Body.String())
			}
		}
		b.StopTimer()
		reportPercentiles(b, times)
	})
}
