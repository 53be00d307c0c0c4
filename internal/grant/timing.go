package grant

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
)

// TimingAnnotations are the annotations that stamp an activation's window
// on the binding it is granted with (ForActivation), signed with key for
// that request and that very binding: a manager that dies between the
// grant and the status write finds its deadline there, and nobody else can
// write one that kubepim believes.
func TimingAnnotations(key []byte, ar *pimv1.ActivationRequest, start, end time.Time) map[string]string {
	timing := approval.GrantTiming{OwnerUID: ar.UID, Binding: Key(ForActivation(ar, nil)), Start: start, End: end}
	return map[string]string{
		pimv1.AnnotationActivatedAt:     start.UTC().Format(time.RFC3339),
		pimv1.AnnotationExpiresAt:       end.UTC().Format(time.RFC3339),
		pimv1.AnnotationTimingSignature: approval.SignTiming(key, timing),
	}
}

// StampedTiming reads the window stamped on b for the request with uid:
// stamped is false when b carries none; signed says whether kubepim signed
// it, with key, for that request and this very binding.
func StampedTiming(key []byte, uid types.UID, b client.Object) (start, end time.Time, stamped, signed bool) {
	a := b.GetAnnotations()
	start, err1 := time.Parse(time.RFC3339, a[pimv1.AnnotationActivatedAt])
	end, err2 := time.Parse(time.RFC3339, a[pimv1.AnnotationExpiresAt])
	if err1 != nil || err2 != nil {
		return time.Time{}, time.Time{}, false, false
	}
	timing := approval.GrantTiming{OwnerUID: uid, Binding: Key(b), Start: start, End: end}
	return start, end, true, approval.VerifyTiming(key, timing, a[pimv1.AnnotationTimingSignature])
}
