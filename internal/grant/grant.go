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
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// Syncer makes the bindings of an owner exactly what is wanted.
type Syncer struct {
	// Client reads from the manager's cache (which holds managed bindings
	// only) and writes to the API server.
	Client client.Client
	// APIReader reads from the API server directly, for revocations and for
	// names the cache cannot see.
	APIReader client.Reader

	// echoes are the creates (by kind/namespace/name) and deletes (by
	// UID) this Syncer sent whose watch events have not come back yet.
	// They are noted before the request is sent: the watch event may be
	// delivered before the response.
	mu      sync.Mutex
	created map[string]*echo
	deleted map[types.UID]*echo
}

// echo is one expected watch event.
type echo struct {
	done bool   // the request returned
	rv   string // the resourceVersion created
	seen bool   // the event came while the request was in flight
}

func echoKey(obj client.Object) string { return Key(obj) }

// Echo reports whether a binding's create (deleted false) or delete
// (deleted true) watch event is the echo of this Syncer's own request for
// an owner of kind, and forgets it then. The pass that sent it already
// knew: running the owner's reconcile again for it, from a cache that may
// not yet hold that pass's own status, would only repeat its work. A
// binding changed by anyone since (another resourceVersion) is no echo.
func (s *Syncer) Echo(kind string, obj client.Object, deleted bool) bool {
	if obj.GetLabels()[pimv1.LabelOwnerKind] != kind {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if deleted {
		return consume(s.deleted, obj.GetUID(), "")
	}
	return consume(s.created, echoKey(obj), obj.GetResourceVersion())
}

func consume[K comparable](m map[K]*echo, key K, rv string) bool {
	e := m[key]
	if e == nil {
		return false
	}
	if !e.done {
		e.seen = true
		return true
	}
	delete(m, key)
	return rv == "" || e.rv == rv
}

// expect notes a request about to be sent; its result is given to the
// returned function.
func expect[K comparable](mu *sync.Mutex, m *map[K]*echo, key K) func(ok bool, rv string) {
	mu.Lock()
	if *m == nil {
		*m = map[K]*echo{}
	}
	e := &echo{}
	(*m)[key] = e
	mu.Unlock()
	return func(ok bool, rv string) {
		mu.Lock()
		defer mu.Unlock()
		if (*m)[key] != e {
			return
		}
		if !ok || e.seen {
			delete(*m, key)
			return
		}
		e.done, e.rv = true, rv
	}
}

// create creates obj, noting its echo.
func (s *Syncer) create(ctx context.Context, obj client.Object) error {
	done := expect(&s.mu, &s.created, echoKey(obj))
	err := s.Client.Create(ctx, obj)
	done(err == nil, obj.GetResourceVersion())
	return err
}

// Sync makes want (nil for none) the only binding of owner: it creates or
// repairs want and revokes every other binding the owner has.
func (s *Syncer) Sync(ctx context.Context, owner Owner, want client.Object) (Outcome, error) {
	var out Outcome
	owned, err := s.Owned(ctx, owner)
	if err != nil {
		return out, err
	}
	for _, obj := range owned {
		if want != nil && sameObject(obj, want) && obj.GetLabels()[pimv1.LabelOwnerUID] == string(owner.UID) {
			continue
		}
		removed, err := s.Revoke(ctx, obj)
		if err != nil {
			return out, err
		}
		if removed {
			out.Removed++
		}
	}
	if want == nil {
		return out, nil
	}
	out.Created, out.Repaired, err = s.ensure(ctx, owner, want)
	if err != nil {
		return out, err
	}
	out.Binding = Reference(want)
	return out, nil
}

// Owned lists the managed bindings recorded for owner, from the cache (by
// kind and name: an earlier owner of the same name shows up here too, and
// Sync revokes it).
func (s *Syncer) Owned(ctx context.Context, owner Owner) ([]client.Object, error) {
	var crbs rbacv1.ClusterRoleBindingList
	if err := s.Client.List(ctx, &crbs, client.MatchingFields{OwnerIndex: owner.indexKey()}); err != nil {
		return nil, err
	}
	var rbs rbacv1.RoleBindingList
	if err := s.Client.List(ctx, &rbs, client.MatchingFields{OwnerIndex: owner.indexKey()}); err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(crbs.Items)+len(rbs.Items))
	for i := range crbs.Items {
		out = append(out, &crbs.Items[i])
	}
	for i := range rbs.Items {
		out = append(out, &rbs.Items[i])
	}
	return out, nil
}

// ensure creates want or repairs the existing binding of that name.
func (s *Syncer) ensure(ctx context.Context, owner Owner, want client.Object) (created, repaired bool, err error) {
	current := want.DeepCopyObject().(client.Object)
	err = s.Client.Get(ctx, client.ObjectKeyFromObject(want), current)
	if apierrors.IsNotFound(err) {
		// Not in the cache: create it straight away, without a read first —
		// this is the grant's critical path. The cache only holds managed
		// bindings, so an unmanaged binding of the same name (or one whose
		// label was removed) may be there: the create then fails and that
		// binding is read from the API server and judged below.
		create := want.DeepCopyObject().(client.Object)
		err = s.create(ctx, create)
		if err == nil {
			want.SetUID(create.GetUID())
			return true, false, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return false, false, err
		}
		err = s.APIReader.Get(ctx, client.ObjectKeyFromObject(want), current)
		if apierrors.IsNotFound(err) {
			return false, false, fmt.Errorf("binding %s existed and then did not while creating it, will retry: %w", want.GetName(), err)
		}
	}
	if err != nil {
		return false, false, err
	}
	if !ownedBy(current, owner) {
		return false, false, &ErrNameTaken{Kind: Reference(want).Kind, Namespace: want.GetNamespace(), Name: want.GetName()}
	}
	want.SetUID(current.GetUID())
	if matches(current, want) {
		return false, false, nil
	}
	if !equality.Semantic.DeepEqual(roleRefOf(current), roleRefOf(want)) {
		// roleRef of a binding is immutable: replace the binding.
		if _, err := s.Revoke(ctx, current); err != nil {
			return false, false, err
		}
		if err := s.create(ctx, want); err != nil {
			return false, false, err
		}
		return false, true, nil
	}
	repairedObj := current.DeepCopyObject().(client.Object)
	labels := maps.Clone(current.GetLabels())
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, want.GetLabels())
	repairedObj.SetLabels(labels)
	annotations := maps.Clone(current.GetAnnotations())
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(annotations, want.GetAnnotations())
	repairedObj.SetAnnotations(annotations)
	repairedObj.SetOwnerReferences(want.GetOwnerReferences())
	setSubjects(repairedObj, subjectsOf(want))
	if err := s.Client.Update(ctx, repairedObj); err != nil {
		return false, false, err
	}
	want.SetUID(repairedObj.GetUID())
	return false, true, nil
}

// Revoke deletes a managed binding. It deletes the very version it was
// given (UID and resourceVersion preconditions), which was managed by
// kubepim when it was read; if the binding changed since (the cache may
// lag), it re-reads it from the API server, checks that it is still
// kubepim's, and deletes that version. It reports whether a binding was
// deleted.
func (s *Syncer) Revoke(ctx context.Context, obj client.Object) (bool, error) {
	if isKubepims(obj) && obj.GetUID() != "" && obj.GetResourceVersion() != "" {
		removed, err := s.deleteExactly(ctx, obj)
		if !apierrors.IsConflict(err) {
			return removed, err
		}
	}
	fresh := obj.DeepCopyObject().(client.Object)
	if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !isKubepims(fresh) {
		// Not ours (any more): never delete what kubepim does not manage.
		return false, nil
	}
	return s.deleteExactly(ctx, fresh)
}

// RevokeRef revokes the binding a status reference names, read from the
// API server: for when the cache shows none (a lagging watch) although
// status says one was granted.
func (s *Syncer) RevokeRef(ctx context.Context, ref *pimv1.BindingReference) (bool, error) {
	var b client.Object = &rbacv1.ClusterRoleBinding{}
	if ref.Kind == "RoleBinding" {
		b = &rbacv1.RoleBinding{}
	}
	b.SetName(ref.Name)
	b.SetNamespace(ref.Namespace)
	return s.Revoke(ctx, b)
}

// deleteExactly deletes obj if it is still the version read: a Conflict
// means it changed (or was replaced) since.
func (s *Syncer) deleteExactly(ctx context.Context, obj client.Object) (bool, error) {
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	done := expect(&s.mu, &s.deleted, uid)
	err := s.Client.Delete(ctx, obj, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	done(err == nil, "")
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
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

func sameObject(a, b client.Object) bool { return Key(a) == Key(b) }

// SameBinding reports whether a and b are the same binding: kind,
// namespace and name.
func SameBinding(a, b client.Object) bool { return sameObject(a, b) }

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
