package policy

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time   { return t0.Add(d) }
func timePtr(t time.Time) *time.Time { return &t }

func TestWindowPhaseAt(t *testing.T) {
	cases := []struct {
		name      string
		w         Window
		now       time.Time
		wantPhase Phase
		wantNext  time.Time
	}{
		{"before start", Window{Start: at(time.Hour), End: timePtr(at(2 * time.Hour))}, t0, BeforeStart, at(time.Hour)},
		{"at start is in force", Window{Start: t0, End: timePtr(at(time.Hour))}, t0, InForce, at(time.Hour)},
		{"in force, permanent", Window{Start: t0}, at(time.Hour), InForce, time.Time{}},
		{"a nanosecond before end", Window{Start: t0, End: timePtr(at(time.Hour))}, at(time.Hour - 1), InForce, at(time.Hour)},
		{"at end has ended", Window{Start: t0, End: timePtr(at(time.Hour))}, at(time.Hour), Ended, time.Time{}},
		{"after end", Window{Start: t0, End: timePtr(at(time.Hour))}, at(48 * time.Hour), Ended, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			phase, next := tc.w.PhaseAt(tc.now)
			if phase != tc.wantPhase || !next.Equal(tc.wantNext) {
				t.Fatalf("PhaseAt = (%v, %v), want (%v, %v)", phase, next, tc.wantPhase, tc.wantNext)
			}
		})
	}
}

func TestRequeueAfter(t *testing.T) {
	cases := []struct {
		name     string
		deadline time.Time
		want     time.Duration
	}{
		{"no deadline waits the cap", time.Time{}, 5 * time.Minute},
		{"a near deadline is exact", at(1500 * time.Millisecond), 1500 * time.Millisecond},
		{"a far deadline is capped", at(time.Hour), 5 * time.Minute},
		{"an overdue deadline is now", at(-time.Hour), time.Nanosecond},
		{"a deadline exactly now is now", t0, time.Nanosecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := RequeueAfter(t0, tc.deadline, 5*time.Minute); got != tc.want {
				t.Fatalf("RequeueAfter = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEarliest(t *testing.T) {
	if got := Earliest(time.Time{}, at(2*time.Hour), at(time.Hour), time.Time{}); !got.Equal(at(time.Hour)) {
		t.Fatalf("Earliest = %v", got)
	}
	if got := Earliest(time.Time{}); !got.IsZero() {
		t.Fatalf("Earliest of zeros = %v", got)
	}
}

func TestAssignmentState(t *testing.T) {
	mk := func(typ string, start, end *time.Time) *pimv1.RoleAssignment {
		ra := &pimv1.RoleAssignment{Spec: pimv1.RoleAssignmentSpec{Type: typ}}
		ra.CreationTimestamp = metav1.NewTime(t0)
		if start != nil {
			ra.Spec.StartTime = &metav1.Time{Time: *start}
		}
		if end != nil {
			ra.Spec.EndTime = &metav1.Time{Time: *end}
		}
		return ra
	}
	cases := []struct {
		name      string
		ra        *pimv1.RoleAssignment
		now       time.Time
		wantState pimv1.AssignmentState
		wantBound bool
		wantNext  time.Time
	}{
		{"active, starts at creation", mk(pimv1.AssignmentActive, nil, timePtr(at(time.Hour))), t0, pimv1.AssignmentStateActive, true, at(time.Hour)},
		{"active, scheduled", mk(pimv1.AssignmentActive, timePtr(at(time.Hour)), nil), t0, pimv1.AssignmentStateScheduled, false, at(time.Hour)},
		{"active, permanent", mk(pimv1.AssignmentActive, nil, nil), at(1000 * time.Hour), pimv1.AssignmentStateActive, true, time.Time{}},
		{"active, expired", mk(pimv1.AssignmentActive, nil, timePtr(at(time.Hour))), at(time.Hour), pimv1.AssignmentStateExpired, false, time.Time{}},
		{"eligible never binds", mk(pimv1.AssignmentEligible, nil, timePtr(at(time.Hour))), t0, pimv1.AssignmentStateEligible, false, at(time.Hour)},
		{"eligible, expired", mk(pimv1.AssignmentEligible, nil, timePtr(at(time.Hour))), at(2 * time.Hour), pimv1.AssignmentStateExpired, false, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state, bound, next := AssignmentState(tc.ra, tc.now)
			if state != tc.wantState || bound != tc.wantBound || !next.Equal(tc.wantNext) {
				t.Fatalf("AssignmentState = (%s, %v, %v), want (%s, %v, %v)", state, bound, next, tc.wantState, tc.wantBound, tc.wantNext)
			}
		})
	}
}
