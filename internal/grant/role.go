package grant

import (
	"context"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	rbacvalidation "k8s.io/component-helpers/auth/rbac/validation"
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

// ErrScopedRoleUnsafe is returned when the role generated for a request
// cannot be created, adopted or restored without widening what some
// binding made by someone else grants. RBAC checks a binding against its
// role's rules only when the binding is made: anyone who may create
// bindings may bind an empty role (or one narrower than the request's
// permissions), and a binding outlives its role and names it only by
// name. So kubepim never widens a role it did not just create, never
// creates one under a name a binding already refers to, and never
// re-creates one that went: the request is ended instead.
type ErrScopedRoleUnsafe struct{ Kind, Namespace, Name, Why string }

func (e *ErrScopedRoleUnsafe) Error() string {
	where := ""
	if e.Namespace != "" {
		where = " in namespace " + e.Namespace
	}
	return fmt.Sprintf("the %s %s%s generated for this reduced scope %s: it is not granted (make a new request)", e.Kind, e.Name, where, e.Why)
}

// EnsureRole makes want, the role generated for owner, exist with exactly
// its rules, and returns it as it now stands (with its UID). known is the
// generated role the owner's status records (nil if none yet); own is the
// binding the owner grants with (a binding of that name, subjects and
// owner label to the role is not someone else's). The role is read from
// the API server, never from a cache:
//
//   - missing and never recorded, it is created, unless a binding other
//     than own already refers to its name (ErrScopedRoleUnsafe);
//   - missing though recorded (someone deleted it), or recorded under
//     another UID (someone replaced it): never made anew, since bindings
//     made in between would come alive with it (ErrScopedRoleUnsafe;
//     a replacement kubepim's labels claim is deleted);
//   - a role of that name that kubepim does not manage is never taken
//     over (ErrNameTaken);
//   - otherwise, its rules are made exactly the wanted ones only if that
//     narrows them (an edit that widened them is undone); an edit that
//     narrowed them may have let someone bind it, so it is never undone
//     (ErrScopedRoleUnsafe). A role adopted without a record (kubepim's
//     own create, its status write lost) is checked for others'
//     bindings as a created one is.
func (s *Syncer) EnsureRole(ctx context.Context, owner Owner, want client.Object, known *pimv1.GeneratedRoleReference, own client.Object) (*pimv1.GeneratedRoleReference, error) {
	kind := RoleReference(want).Kind
	unsafe := func(why string) error {
		return &ErrScopedRoleUnsafe{Kind: kind, Namespace: want.GetNamespace(), Name: want.GetName(), Why: why}
	}
	recorded := known != nil && known.UID != ""
	current := want.DeepCopyObject().(client.Object)
	err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(want), current)
	if apierrors.IsNotFound(err) {
		if recorded {
			return nil, unsafe("was deleted by another than kubepim")
		}
		// Checked before the create (so that a binding waiting for the
		// name never gets even a moment of access) and after it (one made
		// and its role deleted again in between is found, and revoked).
		if err := s.noForeignBindings(ctx, want, own, unsafe); err != nil {
			return nil, err
		}
		create := want.DeepCopyObject().(client.Object)
		if err := s.Client.Create(ctx, create); err != nil {
			return nil, err
		}
		if err := s.noForeignBindings(ctx, want, own, unsafe); err != nil {
			if _, derr := s.deleteRole(ctx, create); derr != nil {
				return nil, derr
			}
			return nil, err
		}
		return RoleReference(create), nil
	}
	if err != nil {
		return nil, err
	}
	ours := recorded && known.UID == string(current.GetUID())
	if !ours && (!isKubepims(current) || !ownedBy(current, owner)) {
		return nil, &ErrNameTaken{Kind: kind, Namespace: want.GetNamespace(), Name: want.GetName()}
	}
	if recorded && !ours {
		if _, err := s.deleteRole(ctx, current); err != nil {
			return nil, err
		}
		return nil, unsafe("was replaced by another than kubepim (deleted it)")
	}
	if cr, ok := current.(*rbacv1.ClusterRole); ok && cr.AggregationRule != nil {
		// Its rules are the aggregator's to write, not kubepim's: they
		// could grow at any time under the request's binding.
		if _, err := s.deleteRole(ctx, current); err != nil {
			return nil, err
		}
		return nil, unsafe("carries an aggregationRule (deleted it)")
	}
	if covered, _ := rbacvalidation.Covers(rulesOf(current), rulesOf(want)); !covered {
		// Restoring would widen the role under any binding made to it
		// while it was narrower (RBAC let whoever may bind do so).
		if _, err := s.deleteRole(ctx, current); err != nil {
			return nil, err
		}
		return nil, unsafe("was narrowed by another than kubepim (deleted it rather than widen it again)")
	}
	if !recorded {
		if err := s.noForeignBindings(ctx, want, own, unsafe); err != nil {
			// Deleted here, whatever its labels say by the time the
			// request's end looks for it.
			if _, derr := s.deleteRole(ctx, current); derr != nil {
				return nil, derr
			}
			return nil, err
		}
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

// noForeignBindings fails (through unsafe) when a RoleBinding or
// ClusterRoleBinding other than own refers to the role want, read from
// the API server: a Role's in its namespace, a ClusterRole's anywhere.
func (s *Syncer) noForeignBindings(ctx context.Context, want, own client.Object, unsafe func(string) error) error {
	roleKind := RoleReference(want).Kind
	var found []string
	isOwn := func(b client.Object) bool {
		return own != nil && SameBinding(b, own) && b.GetLabels()[pimv1.LabelOwnerUID] == own.GetLabels()[pimv1.LabelOwnerUID] &&
			equality.Semantic.DeepEqual(subjectsOf(b), subjectsOf(own))
	}
	refers := func(b client.Object) {
		ref := roleRefOf(b)
		if ref.APIGroup == rbacv1.GroupName && ref.Kind == roleKind && ref.Name == want.GetName() && !isOwn(b) {
			found = append(found, Key(b))
		}
	}
	var rbs rbacv1.RoleBindingList
	if err := s.APIReader.List(ctx, &rbs, client.InNamespace(want.GetNamespace())); err != nil {
		return err
	}
	for i := range rbs.Items {
		refers(&rbs.Items[i])
	}
	if roleKind == pimv1.RoleKindClusterRole {
		var crbs rbacv1.ClusterRoleBindingList
		if err := s.APIReader.List(ctx, &crbs); err != nil {
			return err
		}
		for i := range crbs.Items {
			refers(&crbs.Items[i])
		}
	}
	if len(found) == 0 {
		return nil
	}
	slices.Sort(found)
	return unsafe("has bindings that already refer to its name, made by others: " + strings.Join(found, ", "))
}

// RevokeRole deletes the role generated for owner under want's kind,
// namespace and name, read from the API server, if kubepim manages it
// for that owner or it is the very role known records (whatever its
// labels now say). It reports whether a role was deleted.
func (s *Syncer) RevokeRole(ctx context.Context, owner Owner, want client.Object, known *pimv1.GeneratedRoleReference) (bool, error) {
	current := want.DeepCopyObject().(client.Object)
	if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(want), current); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	ours := known != nil && known.UID != "" && known.UID == string(current.GetUID())
	if !ours && (!isKubepims(current) || !ownedBy(current, owner)) {
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
