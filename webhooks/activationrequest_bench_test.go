package webhooks

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz"
	"github.com/kubepim/kubepim/internal/lookup"
)

// BenchmarkActivationAdmission times the ActivationRequest validating
// webhook's create check over the authorizer benchmark's cache (10,000
// RoleAssignments, 5,000 of them to one role everybody is eligible for),
// beside what it used to read: every assignment of the role, deep-copied
// out of the cache, to find the requester's (docs/performance.md, run 8).
//
//	go test ./webhooks -run '^$' -bench BenchmarkActivationAdmission -benchmem
func BenchmarkActivationAdmission(b *testing.B) {
	cache := benchCache(testNow)
	// The cache holds the settings as stored, defaults included.
	setting := cache.objs[reflect.TypeFor[pimv1.RoleSetting]()][types.NamespacedName{Name: benchRole(0)}].(*pimv1.RoleSetting)
	setting.Spec.Activation.MaxDuration = metav1.Duration{Duration: 8 * time.Hour}
	v := &activationValidator{handlerBase: handlerBase{cache: cache, direct: cache,
		allowed: func(context.Context, *pimv1.UserInfo, authz.Attributes) (bool, error) { return true, nil }, cfg: Config{
			Clock: clocktesting.NewFakePassiveClock(testNow), MFAClaim: "amr", MFAClaimValues: DefaultMFAClaimValues, Namespace: testNamespace}}}
	ctx := context.Background()
	// Users without an activation of their own: each request is admitted.
	request := func(i int) (*pimv1.ActivationRequest, *pimv1.UserInfo) {
		u := benchActive + i%(benchUsers-benchActive)
		requester := &pimv1.UserInfo{Username: benchUser(u), Groups: benchGroupsOf(u)}
		return &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)},
			Spec: pimv1.ActivationRequestSpec{RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: benchRole(0)},
				Namespace: "ns-001", Duration: metav1.Duration{Duration: time.Hour}, Justification: "incident", Requester: requester}}, requester
	}
	if ar, u := request(0); len(v.validateCreate(ctx, ar, u)) > 0 {
		b.Fatalf("not admitted: %v", v.validateCreate(ctx, ar, u))
	}
	b.Run("admission", func(b *testing.B) {
		times := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			ar, u := request(i)
			start := time.Now()
			if errs := v.validateCreate(ctx, ar, u); len(errs) > 0 {
				b.Fatal(errs)
			}
			times = append(times, time.Since(start))
		}
		b.StopTimer()
		reportPercentiles(b, times)
	})
	b.Run("reading-every-assignment-of-the-role", func(b *testing.B) {
		times := make([]time.Duration, 0, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			ras, err := lookup.AssignmentsOf(ctx, cache, pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: benchRole(0)})
			if err != nil || len(ras) != benchUsers {
				b.Fatal(len(ras), err)
			}
			times = append(times, time.Since(start))
		}
		b.StopTimer()
		reportPercentiles(b, times)
	})
}
