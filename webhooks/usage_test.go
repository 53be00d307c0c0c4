package webhooks

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestUsageRecorder(t *testing.T) {
	ctx := context.Background()
	ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "a1"}}
	ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "e1"}}
	c := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(ar, ra).
		WithStatusSubresource(&pimv1.ActivationRequest{}, &pimv1.RoleAssignment{}).Build()
	clk := clocktesting.NewFakeClock(testNow)
	u := newUsageRecorder(c, clk, logr.Discard())
	lastUsed := func(name string, obj client.Object) time.Time {
		t.Helper()
		if err := c.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
			t.Fatal(err)
		}
		var lu *metav1.Time
		switch o := obj.(type) {
		case *pimv1.ActivationRequest:
			lu = o.Status.LastUsedAt
		case *pimv1.RoleAssignment:
			lu = o.Status.LastUsedAt
		}
		if lu == nil {
			return time.Time{}
		}
		return lu.Time
	}
	step := func(d time.Duration) {
		clk.Step(d)
		u.Record("a1", "e1", clk.Now())
		u.flush(ctx)
	}

	// The first use is written at once, on both objects.
	step(0)
	if got := lastUsed("a1", &pimv1.ActivationRequest{}); !got.Equal(testNow.Truncate(time.Second)) {
		t.Fatalf("a1 lastUsedAt = %v, want %v", got, testNow)
	}
	if got := lastUsed("e1", &pimv1.RoleAssignment{}); !got.Equal(testNow.Truncate(time.Second)) {
		t.Fatalf("e1 lastUsedAt = %v, want %v", got, testNow)
	}
	// Uses within the interval are held back...
	step(10 * time.Second)
	step(20 * time.Second)
	if got := lastUsed("a1", &pimv1.ActivationRequest{}); !got.Equal(testNow.Truncate(time.Second)) {
		t.Fatalf("written within the interval: %v", got)
	}
	// ...and the latest is written once it has passed, without a new use.
	clk.Step(31 * time.Second)
	u.flush(ctx)
	if got, want := lastUsed("a1", &pimv1.ActivationRequest{}), testNow.Add(30*time.Second).Truncate(time.Second); !got.Equal(want) {
		t.Fatalf("after the interval: %v, want %v", got, want)
	}
	// Only forward: another replica stored a later use; an older one
	// observed here is not written over it.
	later := metav1.NewTime(testNow.Add(time.Hour).Truncate(time.Second))
	stored := &pimv1.ActivationRequest{}
	_ = c.Get(ctx, client.ObjectKey{Name: "a1"}, stored)
	stored.Status.LastUsedAt = &later
	if err := c.Status().Update(ctx, stored); err != nil {
		t.Fatal(err)
	}
	step(2 * time.Minute)
	if got := lastUsed("a1", &pimv1.ActivationRequest{}); !got.Equal(later.Time) {
		t.Fatalf("moved back to %v from %v", got, later.Time)
	}
	if got, want := lastUsed("e1", &pimv1.RoleAssignment{}), clk.Now().Truncate(time.Second); !got.Equal(want) {
		t.Fatalf("e1 lastUsedAt = %v, want %v", got, want)
	}
	// An object gone is forgotten.
	_ = c.Delete(ctx, &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "e1"}})
	step(2 * time.Minute)
	if _, ok := u.entries[usageKey{"RoleAssignment", "e1"}]; ok {
		t.Fatal("a deleted RoleAssignment is still remembered")
	}
	// Nothing to record without a name.
	u.Record("", "", clk.Now())
	var nilRecorder *usageRecorder
	nilRecorder.Record("a1", "e1", clk.Now())
}
