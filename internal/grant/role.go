package grant

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// A reduced-scope activation (spec.permissions) is granted, in bindings
// mode, with a role kubepim generates for the request: a Role in the
// request's namespace, or a ClusterRole for a cluster-wide request,
// holding exactly the request's permissions. The binding ForActivation
// builds then refers to that role instead of the request's role. The
// role is named after the request's name and UID, so that no binding left
// to it (by anyone) ever comes alive again under a later request of the
// same name; it carries the managed-by and owner labels and an owner
// reference to the request (the garbage collector removes it with the
// request), and is removed after the binding when the activation ends.

// ScopedRolePrefix begins the name of every role generated for a
// reduced-scope activation.
const ScopedRolePrefix = "kubepim-scope-"

// ScopedRoleName is the name of the role generated for ar.
func ScopedRoleName(ar *pimv1.ActivationRequest) string {
	uid := string(ar.UID)
	if len(uid) > 8 {
		uid = uid[:8]
	}
	return Name("scope", ar.Name+"-"+uid)
}

// ScopedRoleRef is the role the binding of ar refers to: the generated
// role for a reduced scope, the request's role otherwise.
func ScopedRoleRef(ar *pimv1.ActivationRequest) pimv1.RoleRef {
	if !policy.IsReduced(ar) {
		return ar.Spec.RoleRef
	}
	if ar.Spec.Namespace == "" {
		return pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: ScopedRoleName(ar)}
	}
	return pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: ScopedRoleName(ar)}
}

// ForScope is the role generated for a reduced-scope ar: exactly its
// permissions, in its namespace (a ClusterRole when cluster-wide). Nil
// when ar asks for its whole role.
func ForScope(ar *pimv1.ActivationRequest) client.Object {
	if !policy.IsReduced(ar) {
		return nil
	}
	owner := OwnerOfActivation(ar)
	// The binding's metadata, without its annotations: the same labels,
	// owner-name annotation and owner reference.
	meta := Desired(owner, ScopedRoleName(ar), Grant{Namespace: ar.Spec.Namespace})
	rules := policy.PermissionRules(ar.Spec.Permissions)
	if ar.Spec.Namespace == "" {
		crb := meta.(*rbacv1.ClusterRoleBinding)
		return &rbacv1.ClusterRole{ObjectMeta: crb.ObjectMeta, Rules: rules}
	}
	rb := meta.(*rbacv1.RoleBinding)
	return &rbacv1.Role{ObjectMeta: rb.ObjectMeta, Rules: rules}
}

// RoleReference describes a generated role for the request's status.
func RoleReference(obj client.Object) *pimv1.GeneratedRoleReference {
	kind := pimv1.RoleKindRole
	if _, ok := obj.(*rbacv1.ClusterRole); ok {
		kind = pimv1.RoleKindClusterRole
	}
	return &pimv1.GeneratedRoleReference{Kind: kind, Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: string(obj.GetUID())}
}

func rulesOf(obj client.Object) []rbacv1.PolicyRule {
	switch r := obj.(type) {
	case *rbacv1.ClusterRole:
		return r.Rules
	case *rbacv1.Role:
		return r.Rules
	}
	return nil
}

func setRules(obj client.Object, rules []rbacv1.PolicyRule) {
	switch r := obj.(type) {
	case *rbacv1.ClusterRole:
		r.Rules = rules
	case *rbacv1.Role:
		r.Rules = rules
	}
}

// EnsureRole makes want, the role generated for owner, exist with exactly
// its rules, and returns it as it now stands (with its UID). known is the
// generated role the owner's status records (nil if none yet). The role
// is read from the API server, never from a cache:
//
//   - missing, it is created;
//   - a role of that name that kubepim does not manage is never taken
//     over (ErrNameTaken);
//   - a managed one whose UID is not the recorded one was replaced behind
//     kubepim's back: it is deleted (that very version) and created anew;
//   - otherwise its rules, labels and owner reference are made exactly
//     the wanted ones (an edit by anyone is undone), so the binding never
//     grants more than the request's permissions.
func (s *Syncer) EnsureRole(ctx context.Context, owner Owner, want client.Object, known *pimv1.GeneratedRoleReference) (*pimv1.GeneratedRoleReference, error) {
	current := want.DeepCopyObject().(client.Object)
	err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(want), current)
	if apierrors.IsNotFound(err) {
		create := want.DeepCopyObject().(client.Object)
		if err := s.Client.Create(ctx, create); err != nil {
			return nil, err
		}
		return RoleReference(create), nil
	}
	if err != nil {
		return nil, err
	}
	kind := RoleReference(want).Kind
	if !isKubepims(current) || !ownedBy(current, owner) {
		return nil, &ErrNameTaken{Kind: kind, Namespace: want.GetNamespace(), Name: want.GetName()}
	}
	if known != nil && known.UID != "" && known.UID != string(current.GetUID()) {
		if _, err := s.deleteRole(ctx, current); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s %s was replaced by another than kubepim: deleted it, will create it anew", kind, want.GetName())
	}
	if equality.Semantic.DeepEqual(rulesOf(current), rulesOf(want)) && matches(current, want) {
		return RoleReference(current), nil
	}
	repaired := current.DeepCopyObject().(client.Object)
	setRules(repaired, rulesOf(want))
	labels := repaired.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	for k, v := range want.GetLabels() {
		labels[k] = v
	}
	repaired.SetLabels(labels)
	annotations := repaired.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	for k, v := range want.GetAnnotations() {
		annotations[k] = v
	}
	repaired.SetAnnotations(annotations)
	repaired.SetOwnerReferences(want.GetOwnerReferences())
	if err := s.Client.Update(ctx, repaired); err != nil {
		return nil, err
	}
	return RoleReference(repaired), nil
}

// RevokeRole deletes the role generated for owner under want's kind,
// namespace and name, read from the API server, if kubepim manages it
// for that owner. It reports whether a role was deleted.
func (s *Syncer) RevokeRole(ctx context.Context, owner Owner, want client.Object) (bool, error) {
	current := want.DeepCopyObject().(client.Object)
	if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(want), current); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !isKubepims(current) || !ownedBy(current, owner) {
		return false, nil
	}
	return s.deleteRole(ctx, current)
}

func (s *Syncer) deleteRole(ctx context.Context, obj client.Object) (bool, error) {
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	err := s.Client.Delete(ctx, obj, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
