package grant

import (
	"context"
	"fmt"
	"maps"
	"sync"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

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

// Sync makes want (nil for none) the only binding of owner: it creates or
// repairs want and revokes every other binding the owner has.
func (s *Syncer) Sync(ctx context.Context, owner Owner, want client.Object) (Outcome, error) {
	var out Outcome
	owned, err := s.Owned(ctx, owner)
	if err != nil {
		return out, err
	}
	for _, obj := range owned {
		if want != nil && SameBinding(obj, want) && obj.GetLabels()[pimv1.LabelOwnerUID] == string(owner.UID) {
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
	if obj.GetDeletionTimestamp() != nil {
		return EndDeletion(ctx, s.Client, obj)
	}
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	done := expect(&s.mu, &s.deleted, uid)
	err := s.Client.Delete(ctx, obj, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	done(err == nil, "")
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// EndDeletion finishes the deletion of a binding that is being deleted but
// held by finalizers: RBAC honours a binding until it is gone, so a
// finalizer that anyone who may edit bindings can add would keep revoked
// access alive. Once deletion has begun no finalizer can be added, so
// clearing them (if the binding is still the version read) ends it. The
// update that set deletionTimestamp comes back as a watch event, so this
// runs in the pass right after the delete. It reports whether the binding
// is (being) removed.
func EndDeletion(ctx context.Context, c client.Client, obj client.Object) (bool, error) {
	if obj.GetDeletionTimestamp() == nil {
		return false, nil
	}
	if len(obj.GetFinalizers()) == 0 {
		return true, nil
	}
	cleared := obj.DeepCopyObject().(client.Object)
	cleared.SetFinalizers(nil)
	err := c.Patch(ctx, cleared, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
