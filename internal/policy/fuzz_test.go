package policy

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// Whatever a request asks for and whenever it is judged, the window
// kubepim computes gives at least spec.duration of access and less than a
// second more, in whole seconds, starts no earlier than asked, and
// recovers from a binding; a window recovered from a binding is accepted
// only in that same shape: never shorter, never longer than asked and
// rounded.
func FuzzActivationWindow(f *testing.F) {
	f.Add(int64(600), int64(0), int64(0), int64(1_800_000_000), int64(0), int64(1_800_000_000), int64(4_000_000_000))
	f.Add(int64(3600), int64(0), int64(1_800_000_100), int64(1_800_000_000), int64(500_000_000), int64(1_800_000_100), int64(1_800_003_700))
	f.Add(int64(1), int64(0), int64(-5), int64(-1), int64(1), int64(0), int64(1))
	f.Add(int64(1), int64(500), int64(0), int64(1_800_000_000), int64(999_999_999), int64(1_800_000_000), int64(1_800_000_002))
	f.Fuzz(func(t *testing.T, durationSeconds, durationMillis, startTime, now, nowNanos, recoveredStart, recoveredEnd int64) {
		clamp := func(s int64) time.Time { return time.Unix(s%(1<<34), 0).UTC() }
		d := time.Duration(durationSeconds%(1<<20))*time.Second + time.Duration(durationMillis%1000)*time.Millisecond
		ar := &pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Duration: metav1.Duration{Duration: d}}}
		if startTime != 0 {
			ar.Spec.StartTime = &metav1.Time{Time: clamp(startTime)}
		}
		sub := time.Duration(nowNanos % int64(time.Second))
		if sub < 0 {
			sub = -sub
		}
		at := clamp(now).Add(sub)
		begin := at
		if ar.Spec.StartTime != nil && ar.Spec.StartTime.After(at) {
			begin = ar.Spec.StartTime.Time
		}
		w := RequestedWindow(ar, at)
		if w.End == nil || !w.End.Equal(w.End.Truncate(time.Second)) || !w.Start.Equal(w.Start.Truncate(time.Second)) {
			t.Fatalf("requested window %v–%v is not in whole seconds", w.Start, w.End)
		}
		if held := w.End.Sub(begin); held < d || held >= d+time.Second {
			t.Fatalf("requested window %v–%v, begun at %v, gives %s of access for a request of %s", w.Start, w.End, begin, held, d)
		}
		if w.Start.After(begin) || !begin.Before(w.Start.Add(time.Second)) {
			t.Fatalf("requested window starts %v, not the second access begins in (%v)", w.Start, begin)
		}
		if ar.Spec.StartTime != nil && w.Start.Before(ar.Spec.StartTime.Time) {
			t.Fatalf("starts %v, before the requested %v", w.Start, ar.Spec.StartTime.Time)
		}
		if d > 0 {
			if err := RecoveredWindowFits(ar, w, begin); err != nil {
				t.Fatalf("the window kubepim stamps, %v–%v, does not recover: %v", w.Start, w.End, err)
			}
		}
		end := clamp(recoveredEnd)
		recovered := Window{Start: clamp(recoveredStart), End: &end}
		if RecoveredWindowFits(ar, recovered, at) == nil {
			// Whole seconds: begun anywhere within the start's second, the
			// access lasts at least d and is never longer than d rounded up
			// from the latest instant of that second.
			if got := end.Sub(recovered.Start); got < d || got > ActivationEnd(recovered.Start.Add(time.Second-time.Nanosecond), d).Sub(recovered.Start) {
				t.Fatalf("accepted a recovered window of %s for a request of %s", got, d)
			}
			if d%time.Second == 0 && end.Sub(recovered.Start) > d+time.Second {
				t.Fatalf("accepted a recovered window of %s for a request of %s: more than a second over", end.Sub(recovered.Start), d)
			}
			if recovered.Start.After(at) {
				t.Fatalf("accepted a recovered window that has not started")
			}
		}
	})
}
