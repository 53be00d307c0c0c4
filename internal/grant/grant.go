// Package grant keeps the RoleBindings and ClusterRoleBindings that kubepim
// grants with: exactly the one an owner (a RoleAssignment or an
// ActivationRequest) should have, or none. Every binding it makes carries the
// managed-by label and its owner's kind, name and UID, so that drift can be
// repaired and orphans removed, and every revocation deletes exactly the
// version of the binding that was seen (UID and resourceVersion
// preconditions), re-reading it from the API server when that version is
// gone.
package grant

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// OwnerIndex is the cache field index of managed bindings by owner,
// "<kind>/<name>".
const OwnerIndex = "kubepim.io/owner"

// Owner is the kubepim object a binding belongs to.
type Owner struct {
	Kind string
	Name string
	UID  types.UID
}

func (o Owner) indexKey() string { return o.Kind + "/" + o.Name }

// OwnerKey returns the owner index value of a managed binding, or "" when
// the object is not a kubepim-managed binding.
func OwnerKey(obj client.Object) string {
	if obj.GetLabels()[pimv1.LabelManagedBy] != pimv1.ManagedByValue {
		return ""
	}
	kind, name := obj.GetLabels()[pimv1.LabelOwnerKind], obj.GetAnnotations()[pimv1.AnnotationOwnerName]
	if kind == "" || name == "" {
		return ""
	}
	return kind + "/" + name
}

// OwnerName returns the owner name recorded on a managed binding of the given
// owner kind, or "".
func OwnerName(obj client.Object, kind string) string {
	if obj.GetLabels()[pimv1.LabelManagedBy] != pimv1.ManagedByValue || obj.GetLabels()[pimv1.LabelOwnerKind] != kind {
		return ""
	}
	return obj.GetAnnotations()[pimv1.AnnotationOwnerName]
}

// Grant is the binding an owner should have.
type Grant struct {
	Subject   rbacv1.Subject
	RoleRef   pimv1.RoleRef
	Namespace string // empty: a ClusterRoleBinding
	// Annotations are added to the binding's own (and kept there).
	Annotations map[string]string
}

// SubjectFor converts a kubepim subject to an RBAC subject.
func SubjectFor(s pimv1.Subject) rbacv1.Subject {
	switch s.Kind {
	case pimv1.SubjectKindServiceAccount:
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: s.Name, Namespace: s.Namespace}
	case pimv1.SubjectKindGroup:
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: s.Name}
	default:
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: s.Name}
	}
}

// Name is the deterministic binding name for an owner: "kubepim-<prefix>-<name>",
// shortened with a hash when it would be too long for an object name.
func Name(prefix, ownerName string) string {
	name := "kubepim-" + prefix + "-" + ownerName
	// Hashed names are 253 long; plain ones shorter than any hashed name,
	// so that no owner's plain name is another owner's hashed one.
	if len(name) < 253-17 {
		return name
	}
	sum := sha256.Sum256([]byte(ownerName))
	return name[:253-17] + "-" + hex.EncodeToString(sum[:])[:16]
}

// Desired builds the binding for a grant.
func Desired(owner Owner, name string, g Grant) client.Object {
	annotations := maps.Clone(g.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[pimv1.AnnotationOwnerName] = owner.Name
	meta := metav1.ObjectMeta{
		Name:      name,
		Namespace: g.Namespace,
		Labels: map[string]string{
			pimv1.LabelManagedBy: pimv1.ManagedByValue,
			pimv1.LabelOwnerKind: owner.Kind,
			pimv1.LabelOwnerUID:  string(owner.UID),
		},
		Annotations: annotations,
		// A second line of defence: in a cluster running garbage collection,
		// deleting the owner deletes the binding even if kubepim is down.
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: pimv1.GroupVersion.String(),
			Kind:       owner.Kind,
			Name:       owner.Name,
			UID:        owner.UID,
		}},
	}
	roleRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: g.RoleRef.Kind, Name: g.RoleRef.Name}
	subjects := []rbacv1.Subject{g.Subject}
	if g.Namespace == "" {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: meta, RoleRef: roleRef, Subjects: subjects}
	}
	return &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: roleRef, Subjects: subjects}
}

// Reference describes a binding for an owner's status.
func Reference(obj client.Object) *pimv1.BindingReference {
	kind := "RoleBinding"
	if _, ok := obj.(*rbacv1.ClusterRoleBinding); ok {
		kind = "ClusterRoleBinding"
	}
	return &pimv1.BindingReference{Kind: kind, Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: string(obj.GetUID())}
}

// Outcome says what Sync changed.
type Outcome struct {
	// Created is true when the wanted binding did not exist and was made.
	Created bool
	// Repaired is true when the wanted binding existed but had drifted.
	Repaired bool
	// Removed counts bindings of the owner that were deleted.
	Removed int
	// Binding is the wanted binding as it now stands, if any.
	Binding *pimv1.BindingReference
}

// ErrNameTaken is returned when the deterministic binding name belongs to a
// binding kubepim does not manage; kubepim never takes over such a binding.
type ErrNameTaken struct{ Kind, Namespace, Name string }

func (e *ErrNameTaken) Error() string {
	return fmt.Sprintf("%s %q already exists and is not managed by kubepim; rename or delete it", e.Kind, types.NamespacedName{Namespace: e.Namespace, Name: e.Name}.String())
}

func isKubepims(obj client.Object) bool {
	return obj.GetLabels()[pimv1.LabelManagedBy] == pimv1.ManagedByValue || hasKubepimOwnerRef(obj)
}

func ownedBy(obj client.Object, owner Owner) bool {
	if obj.GetLabels()[pimv1.LabelOwnerUID] == string(owner.UID) {
		return true
	}
	// The labels may have been edited away; an owner reference still proves it.
	return slices.ContainsFunc(obj.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == owner.UID })
}

func hasKubepimOwnerRef(obj client.Object) bool {
	return slices.ContainsFunc(obj.GetOwnerReferences(), func(r metav1.OwnerReference) bool {
		return r.APIVersion == pimv1.GroupVersion.String()
	})
}

// SameBinding reports whether a and b are the same binding: kind,
// namespace and name.
func SameBinding(a, b client.Object) bool { return Key(a) == Key(b) }

// Key is "<kind>/<namespace>/<name>" of a binding.
func Key(obj client.Object) string {
	return Reference(obj).Kind + "/" + obj.GetNamespace() + "/" + obj.GetName()
}

func matches(current, want client.Object) bool {
	for k, v := range want.GetLabels() {
		if current.GetLabels()[k] != v {
			return false
		}
	}
	for k, v := range want.GetAnnotations() {
		if current.GetAnnotations()[k] != v {
			return false
		}
	}
	return equality.Semantic.DeepEqual(current.GetOwnerReferences(), want.GetOwnerReferences()) &&
		equality.Semantic.DeepEqual(roleRefOf(current), roleRefOf(want)) &&
		equality.Semantic.DeepEqual(subjectsOf(current), subjectsOf(want))
}

func roleRefOf(obj client.Object) rbacv1.RoleRef {
	switch b := obj.(type) {
	case *rbacv1.ClusterRoleBinding:
		return b.RoleRef
	case *rbacv1.RoleBinding:
		return b.RoleRef
	}
	return rbacv1.RoleRef{}
}

func subjectsOf(obj client.Object) []rbacv1.Subject {
	switch b := obj.(type) {
	case *rbacv1.ClusterRoleBinding:
		return b.Subjects
	case *rbacv1.RoleBinding:
		return b.Subjects
	}
	return nil
}

func setSubjects(obj client.Object, subjects []rbacv1.Subject) {
	switch b := obj.(type) {
	case *rbacv1.ClusterRoleBinding:
		b.Subjects = subjects
	case *rbacv1.RoleBinding:
		b.Subjects = subjects
	}
}

// OwnerOfActivation is the Owner an ActivationRequest's binding records.
func OwnerOfActivation(ar *pimv1.ActivationRequest) Owner {
	return Owner{Kind: "ActivationRequest", Name: ar.Name, UID: ar.UID}
}

// OwnerOfAssignment is the Owner a RoleAssignment's binding records.
func OwnerOfAssignment(ra *pimv1.RoleAssignment) Owner {
	return Owner{Kind: "RoleAssignment", Name: ra.Name, UID: ra.UID}
}

// ForActivation is the binding an activation grants with: the requester
// alone, as a User (even when eligible through a group), to the role (for
// a reduced scope, to the role generated for the request: ForScope), in
// the request's namespace (cluster-wide when none). The controller that
// grants it and the judge of outside bindings build it here, so they
// cannot disagree.
func ForActivation(ar *pimv1.ActivationRequest, annotations map[string]string) client.Object {
	var requester string
	if ar.Spec.Requester != nil {
		requester = ar.Spec.Requester.Username
	}
	return Desired(OwnerOfActivation(ar), Name("ar", ar.Name), Grant{
		Subject:     rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: requester},
		RoleRef:     ScopedRoleRef(ar),
		Namespace:   ar.Spec.Namespace,
		Annotations: annotations,
	})
}

// ForAssignment is the binding an Active RoleAssignment grants with: its
// subject, to the role, in its namespace (cluster-wide when none).
func ForAssignment(ra *pimv1.RoleAssignment) client.Object {
	return Desired(OwnerOfAssignment(ra), Name("ra", ra.Name), Grant{
		Subject:   SubjectFor(ra.Spec.Subject),
		RoleRef:   ra.Spec.RoleRef,
		Namespace: ra.Spec.Namespace,
	})
}
