package grant

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestJudge(t *testing.T) {
	owner := Owner{Kind: "ActivationRequest", Name: "alice-admin", UID: "uid-alice"}
	grant := Grant{
		Subject: rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"},
		RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "admin"},
	}
	want := func() client.Object { return Desired(owner, Name("ar", owner.Name), grant) }
	// real is the binding as the API server stores it: want, with a UID.
	real := func(edit func(b *rbacv1.ClusterRoleBinding)) client.Object {
		b := want().(*rbacv1.ClusterRoleBinding)
		b.UID = "uid-binding"
		if edit != nil {
			edit(b)
		}
		return b
	}
	granted := &pimv1.BindingReference{Kind: "ClusterRoleBinding", Name: Name("ar", owner.Name), UID: "uid-binding"}
	claim := &Claim{Owner: owner, Want: want(), Granted: granted}
	ungranted := &Claim{Owner: owner, Want: want()}
	ended := &Claim{Owner: owner, Granted: granted}

	cases := []struct {
		name  string
		obj   client.Object
		claim *Claim
		want  Verdict
	}{
		{"the granted binding", real(nil), claim, Ours},
		{"just created: the owner's status does not name it yet", real(nil), ungranted, Unsettled},
		{"granted, and a subject was added since", real(func(b *rbacv1.ClusterRoleBinding) {
			b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"})
		}), claim, Unsettled},
		{"no label at all", real(func(b *rbacv1.ClusterRoleBinding) { b.Labels = nil }), claim, Outside},
		{"managed-by label removed", real(func(b *rbacv1.ClusterRoleBinding) { delete(b.Labels, pimv1.LabelManagedBy) }), claim, Outside},
		{"labels name no existing owner", real(nil), nil, Outside},
		{"owner ended (or never binds)", real(nil), ended, Outside},
		{"owner UID forged: another object of that name", real(func(b *rbacv1.ClusterRoleBinding) { b.Labels[pimv1.LabelOwnerUID] = "uid-old" }), claim, Outside},
		{"owner kind forged", real(func(b *rbacv1.ClusterRoleBinding) { b.Labels[pimv1.LabelOwnerKind] = "RoleAssignment" }), claim, Outside},
		{"forged labels under another name", real(func(b *rbacv1.ClusterRoleBinding) { b.Name = "mallory-admin"; b.UID = "uid-forged" }), claim, Outside},
		{"forged labels, another name, not yet granted", real(func(b *rbacv1.ClusterRoleBinding) { b.Name = "mallory-admin" }), ungranted, Outside},
		{"forged labels, right name, another subject", real(func(b *rbacv1.ClusterRoleBinding) {
			b.UID = "uid-forged"
			b.Subjects[0].Name = "mallory"
		}), claim, Outside},
		{"forged labels, another role", real(func(b *rbacv1.ClusterRoleBinding) { b.UID = "uid-forged"; b.RoleRef.Name = "cluster-admin" }), claim, Outside},
		{"a copy of the granted binding in a namespace", namespacedCopy(real(nil).(*rbacv1.ClusterRoleBinding), "prod"), claim, Outside},
		{"replaced after it was granted: same name, another UID", real(func(b *rbacv1.ClusterRoleBinding) { b.UID = "uid-replaced" }), claim, Unsettled},
		{"owner without UID", real(nil), &Claim{Owner: Owner{Kind: owner.Kind, Name: owner.Name}, Want: want()}, Outside},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Judge(tc.obj, tc.claim); got != tc.want {
				t.Errorf("Judge = %s, want %s", got, tc.want)
			}
		})
	}
}

// namespacedCopy is a RoleBinding with everything of b, labels and UID
// included, in namespace.
func namespacedCopy(b *rbacv1.ClusterRoleBinding, namespace string) *rbacv1.RoleBinding {
	rb := &rbacv1.RoleBinding{ObjectMeta: *b.ObjectMeta.DeepCopy(), RoleRef: b.RoleRef, Subjects: b.Subjects}
	rb.Namespace = namespace
	return rb
}
