package audit

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := pimv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

// The recorder labels each event with its day and role; the day never
// goes back along the chain, even when an event built before midnight is
// linked after one built after it.
func TestRecordLabelsDayAndRole(t *testing.T) {
	ctx := context.Background()
	c := fakeClient(t)
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC))
	r := &Recorder{Client: c, Clock: clk, Log: logr.Discard()}
	role := &pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "system:pod-debugger"}
	target := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "a", UID: "u1"}}
	if err := r.Record(ctx, Entry{Action: pimv1.AuditActivated, RoleRef: role, Target: target, TargetKind: "ActivationRequest"}); err != nil {
		t.Fatal(err)
	}
	// Built at 23:59:59 but linked after an event of the next day.
	late := r.spec(Entry{Action: pimv1.AuditExpired, Target: target, TargetKind: "ActivationRequest"})
	clk.SetTime(time.Date(2026, 12, 1, 0, 0, 1, 0, time.UTC))
	if err := r.Record(ctx, Entry{Action: pimv1.AuditDeactivated, Target: target, TargetKind: "ActivationRequest"}); err != nil {
		t.Fatal(err)
	}
	ev := &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: "late"}, Spec: late}
	if _, err := r.link(ctx, ev); err != nil {
		t.Fatal(err)
	}
	var list pimv1.AuditEventList
	if err := c.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	got := map[int64]map[string]string{}
	for _, e := range list.Items {
		got[e.Spec.Sequence] = e.Labels
		if !LabelsMatch(&e) {
			t.Errorf("event %d: labels %v do not match its spec", e.Spec.Sequence, e.Labels)
		}
	}
	if got[1][LabelDay] != "2026-11-30" || got[1][LabelRole] != RoleLabel("system:pod-debugger") || len(RoleLabel("x")) != 20 {
		t.Errorf("event 1: %v", got[1])
	}
	if _, ok := got[2][LabelRole]; ok || got[2][LabelDay] != "2026-12-01" {
		t.Errorf("event 2 (no role): %v", got[2])
	}
	if got[3][LabelDay] != "2026-12-01" {
		t.Errorf("event 3, built on the 30th, linked after an event of the 1st: %v (the day must not go back)", got[3])
	}

	// A label that does not match the spec is reported by the chain.
	forged := list.Items[0]
	forged.Labels = map[string]string{LabelDay: "2026-01-01", LabelRole: forged.Labels[LabelRole]}
	chain := NewChainFromOldest()
	chain.Add(&forged)
	if rep := chain.Report(); rep.OK() {
		t.Error("a relabelled event verified")
	}
}

// LabelOld labels events written before the labels, and AllLabelled
// says when none is left.
func TestLabelOld(t *testing.T) {
	ctx := context.Background()
	old := &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Spec: pimv1.AuditEventSpec{
		Time: metav1.NewTime(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), Action: pimv1.AuditActivated, Sequence: 1,
		RoleRef: &pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "view"}}}
	c := fakeClient(t, old)
	if all, err := AllLabelled(ctx, c); err != nil || all {
		t.Fatalf("AllLabelled = %v, %v with an unlabelled event", all, err)
	}
	r := &Recorder{Client: c, Log: logr.Discard()}
	if n, err := r.LabelOld(ctx); err != nil || n != 1 {
		t.Fatalf("LabelOld = %d, %v", n, err)
	}
	var ev pimv1.AuditEvent
	if err := c.Get(ctx, client.ObjectKey{Name: "old"}, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Labels[LabelDay] != "2026-03-04" || ev.Labels[LabelRole] != RoleLabel("view") {
		t.Errorf("labels %v", ev.Labels)
	}
	if all, err := AllLabelled(ctx, c); err != nil || !all {
		t.Fatalf("AllLabelled = %v, %v after LabelOld", all, err)
	}
}

func TestRangeDays(t *testing.T) {
	since := time.Date(2026, 11, 29, 13, 0, 0, 0, time.UTC)
	got := RangeDays(since, time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC))
	if want := []string{"2026-11-29", "2026-11-30", "2026-12-01"}; !slices.Equal(got, want) {
		t.Errorf("RangeDays = %v, want %v (the day after until too)", got, want)
	}
	if got := RangeDays(since, since.Add(MaxRangeDays*24*time.Hour)); got != nil {
		t.Errorf("a range over %d days: %d days, want nil (read the whole trail)", MaxRangeDays, len(got))
	}
	if got := RangeDays(time.Time{}, since); got != nil {
		t.Errorf("no since: %v, want nil", got)
	}
}

func TestLabelsMatch(t *testing.T) {
	at := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	role := &pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "db-admin"}
	cases := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"its day", map[string]string{LabelDay: "2026-11-30", LabelRole: RoleLabel("db-admin")}, true},
		{"the next day (linked after midnight)", map[string]string{LabelDay: "2026-12-01", LabelRole: RoleLabel("db-admin")}, true},
		{"a later day (the clock stepped back; labels stay monotonic)", map[string]string{LabelDay: "2027-03-09", LabelRole: RoleLabel("db-admin")}, true},
		{"an earlier day", map[string]string{LabelDay: "2026-11-29", LabelRole: RoleLabel("db-admin")}, false},
		{"another role", map[string]string{LabelDay: "2026-11-30", LabelRole: RoleLabel("viewer")}, false},
		{"no role label", map[string]string{LabelDay: "2026-11-30"}, false},
		{"unlabelled (written before labels)", nil, true},
	}
	for _, c := range cases {
		ev := &pimv1.AuditEvent{Spec: pimv1.AuditEventSpec{Time: metav1.NewTime(at), RoleRef: role}}
		ev.Labels = c.labels
		if got := LabelsMatch(ev); got != c.want {
			t.Errorf("%s: LabelsMatch = %v, want %v", c.name, got, c.want)
		}
	}
}
