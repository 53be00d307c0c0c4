package policy

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestRecoveredWindowFits(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	req := func(d time.Duration, start *time.Time) *pimv1.ActivationRequest {
		ar := &pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Duration: metav1.Duration{Duration: d}}}
		if start != nil {
			ar.Spec.StartTime = &metav1.Time{Time: *start}
		}
		return ar
	}
	for _, tc := range []struct {
		name string
		ar   *pimv1.ActivationRequest
		w    Window
		ok   bool
	}{
		{"the request's own window", req(10*time.Minute, nil), Window{Start: now.Add(-time.Minute), End: at(9 * time.Minute)}, true},
		{"begun mid-second: a second longer, rounded up", req(10*time.Minute, nil), Window{Start: now, End: at(10*time.Minute + time.Second)}, true},
		{"stretched to 2099", req(10*time.Minute, nil), Window{Start: now, End: timePtr(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))}, false},
		{"two seconds longer", req(10*time.Minute, nil), Window{Start: now, End: at(10*time.Minute + 2*time.Second)}, false},
		{"more than the rounding allows", req(10*time.Minute, nil), Window{Start: now, End: at(10*time.Minute + time.Second + time.Nanosecond)}, false},
		{"a second shorter", req(10*time.Minute, nil), Window{Start: now, End: at(10*time.Minute - time.Second)}, false},
		{"a nanosecond shorter", req(10*time.Minute, nil), Window{Start: now, End: at(10*time.Minute - time.Nanosecond)}, false},
		{"shorter", req(10*time.Minute, nil), Window{Start: now, End: at(5 * time.Minute)}, false},
		{"sub-second duration, begun at the second", req(1500*time.Millisecond, nil), Window{Start: now, End: at(2 * time.Second)}, true},
		{"sub-second duration, begun late in the second", req(1500*time.Millisecond, nil), Window{Start: now, End: at(3 * time.Second)}, true},
		{"sub-second duration, too long", req(1500*time.Millisecond, nil), Window{Start: now, End: at(4 * time.Second)}, false},
		{"not begun", req(10*time.Minute, nil), Window{Start: now.Add(time.Second), End: at(10*time.Minute + time.Second)}, false},
		{"before the requested start", req(10*time.Minute, at(-time.Minute)), Window{Start: now.Add(-2 * time.Minute), End: at(8 * time.Minute)}, false},
		{"at the requested start", req(10*time.Minute, at(-time.Minute)), Window{Start: now.Add(-time.Minute), End: at(9 * time.Minute)}, true},
		{"no end", req(10*time.Minute, nil), Window{Start: now}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := RecoveredWindowFits(tc.ar, tc.w, now); (err == nil) != tc.ok {
				t.Errorf("RecoveredWindowFits = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
