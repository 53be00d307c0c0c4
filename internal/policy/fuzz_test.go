package policy

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// Whatever a request asks for and whenever it is judged, the window
// kubepim computes lasts exactly spec.duration, starts no earlier than
// asked, and a window recovered from a binding is accepted only in that
// same shape: never longer than asked.
func FuzzActivationWindow(f *testing.F) {
	f.Add(int64(600), int64(0), int64(1_800_000_000), int64(1_800_000_000), int64(4_000_000_000))
	f.Add(int64(3600), int64(1_800_000_100), int64(1_800_000_000), int64(1_800_000_100), int64(1_800_003_700))
	f.Add(int64(1), int64(-5), int64(-1), int64(0), int64(1))
	f.Fuzz(func(t *testing.T, durationSeconds, startTime, now, recoveredStart, recoveredEnd int64) {
		clamp := func(s int64) time.Time { return time.Unix(s%(1<<34), 0).UTC() }
		d := time.Duration(durationSeconds%(1<<20)) * time.Second
		ar := &pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Duration: metav1.Duration{Duration: d}}}
		if startTime != 0 {
			ar.Spec.StartTime = &metav1.Time{Time: clamp(startTime)}
		}
		at := clamp(now)
		w := RequestedWindow(ar, at)
		if w.End == nil || w.End.Sub(w.Start) != d {
			t.Fatalf("requested window %v–%v is not %s long", w.Start, w.End, d)
		}
		if ar.Spec.StartTime != nil && w.Start.Before(ar.Spec.StartTime.Time) {
			t.Fatalf("starts %v, before the requested %v", w.Start, ar.Spec.StartTime.Time)
		}
		end := clamp(recoveredEnd)
		recovered := Window{Start: clamp(recoveredStart), End: &end}
		if RecoveredWindowFits(ar, recovered, at) == nil {
			if end.Sub(recovered.Start) != d {
				t.Fatalf("accepted a recovered window of %s for a request of %s", end.Sub(recovered.Start), d)
			}
			if recovered.Start.After(at) {
				t.Fatalf("accepted a recovered window that has not started")
			}
		}
	})
}
