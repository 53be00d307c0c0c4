package webhooks

import (
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// added reports whether cur has the annotation key and old had not.
func added(old, cur client.Object, key string) bool {
	_, had := old.GetAnnotations()[key]
	_, has := cur.GetAnnotations()[key]
	return has && !had
}

// restore puts back old's annotation key (or its absence) on cur.
func restore(cur, old client.Object, key string) {
	if v, ok := old.GetAnnotations()[key]; ok {
		setAnnotation(cur, key, v)
		return
	}
	a := cur.GetAnnotations()
	delete(a, key)
	cur.SetAnnotations(a)
}

func setAnnotation(obj client.Object, key, value string) {
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = value
	obj.SetAnnotations(a)
}

// stampChange sets the annotation key of an updated object to username
// when its spec changed, and otherwise puts back what it was: who last
// changed what the object decides with.
func stampChange(cur, old client.Object, key, username string, specChanged bool) {
	restore(cur, old, key)
	if specChanged {
		setAnnotation(cur, key, username)
	}
}

// metadataChanges lists what an update changes of an object's labels,
// annotations (those guarded keeps), finalizers and owner references:
// an owner reference to a missing owner has the garbage collector delete
// the object, a finalizer keeps it from going.
func metadataChanges(old, cur client.Object, guarded func(map[string]string) map[string]string) []string {
	var changed []string
	if !maps.Equal(old.GetLabels(), cur.GetLabels()) {
		changed = append(changed, "labels")
	}
	if !maps.Equal(guarded(old.GetAnnotations()), guarded(cur.GetAnnotations())) {
		changed = append(changed, "annotations")
	}
	if !slices.Equal(old.GetFinalizers(), cur.GetFinalizers()) {
		changed = append(changed, "finalizers")
	}
	if !equality.Semantic.DeepEqual(old.GetOwnerReferences(), cur.GetOwnerReferences()) {
		changed = append(changed, "ownerReferences")
	}
	return changed
}

// MaxFieldManagers bounds the field managers (managedFields entries) a
// user's write may leave on a kubepim object that every user may patch
// (ActivationRequests, AccessReviews, AccessReviewItems): each
// server-side apply under a new manager name adds an entry, whatever it
// changes, and enough of them would push the object past the API server's
// size limit, so that kubepim could no longer write its status.
const MaxFieldManagers = 32

// boundManagers refuses an update that adds field managers past
// MaxFieldManagers (one that does not add any is let through: kubepim's
// own writes never grow the list).
func boundManagers(old, cur client.Object) field.ErrorList {
	before, after := len(old.GetManagedFields()), len(cur.GetManagedFields())
	if after <= MaxFieldManagers || after <= before {
		return nil
	}
	return field.ErrorList{field.Forbidden(metadataPath.Child("managedFields"), fmt.Sprintf(
		"this object already has %d field managers, the most kubepim allows; apply with a field manager it already has (kubectl --field-manager)", before))}
}
