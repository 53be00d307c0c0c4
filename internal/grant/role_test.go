package grant

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func scopedRequest(namespace string) *pimv1.ActivationRequest {
	return &pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-pod-admin-x1", UID: "0123456789abcdef"},
		Spec: pimv1.ActivationRequestSpec{
			RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pod-admin"}, Namespace: namespace,
			Requester:   &pimv1.UserInfo{Username: "alice"},
			Permissions: []pimv1.PermissionRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}},
		},
	}
}

func TestForScope(t *testing.T) {
	ar := scopedRequest("prod")
	role, ok := ForScope(ar).(*rbacv1.Role)
	if !ok {
		t.Fatalf("a namespaced request's role: %T", ForScope(ar))
	}
	if role.Name != "kubepim-scope-alice-pod-admin-x1-01234567" || role.Namespace != "prod" {
		t.Errorf("role %s/%s", role.Namespace, role.Name)
	}
	if len(role.Rules) != 1 || role.Rules[0].Verbs[0] != "get" || role.Rules[0].Resources[0] != "pods" {
		t.Errorf("rules %+v", role.Rules)
	}
	if role.Labels[pimv1.LabelManagedBy] != pimv1.ManagedByValue || role.Labels[pimv1.LabelOwnerUID] != string(ar.UID) ||
		OwnerName(role, "ActivationRequest") != ar.Name || len(role.OwnerReferences) != 1 || role.OwnerReferences[0].UID != ar.UID {
		t.Errorf("ownership %v %v %v", role.Labels, role.Annotations, role.OwnerReferences)
	}
	b := ForActivation(ar, nil).(*rbacv1.RoleBinding)
	if b.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}) {
		t.Errorf("the binding refers to %+v", b.RoleRef)
	}

	cluster := scopedRequest("")
	if _, ok := ForScope(cluster).(*rbacv1.ClusterRole); !ok {
		t.Errorf("a cluster-wide request's role: %T", ForScope(cluster))
	}
	if got := ForActivation(cluster, nil).(*rbacv1.ClusterRoleBinding).RoleRef.Kind; got != "ClusterRole" {
		t.Errorf("cluster-wide binding refers to a %s", got)
	}

	whole := scopedRequest("prod")
	whole.Spec.Permissions = nil
	if ForScope(whole) != nil {
		t.Error("a request of the whole role has no generated role")
	}
	if got := ForActivation(whole, nil).(*rbacv1.RoleBinding).RoleRef; got.Name != "pod-admin" || got.Kind != "ClusterRole" {
		t.Errorf("a request of the whole role binds %+v", got)
	}

	// Another request of the same name (a later one) gets another role:
	// a binding left to the first one's never comes alive again.
	later := scopedRequest("prod")
	later.UID = "fedcba9876543210"
	if ScopedRoleName(later) == ScopedRoleName(ar) {
		t.Error("two requests of one name share a generated role name")
	}
}

func TestJudgeReducedScope(t *testing.T) {
	ar := scopedRequest("prod")
	want := ForActivation(ar, nil)
	real := want.DeepCopyObject().(*rbacv1.RoleBinding)
	real.UID = "uid-binding"
	claim := &Claim{Owner: OwnerOfActivation(ar), Want: want, Granted: Reference(real)}
	if v := Judge(real, claim); v != Ours {
		t.Errorf("the binding to the generated role: %v", v)
	}
	// A binding dressed as the request's, to the whole role it narrowed.
	forged := real.DeepCopy()
	forged.RoleRef.Kind, forged.RoleRef.Name = "ClusterRole", "pod-admin"
	if v := Judge(forged, claim); v != Outside {
		t.Errorf("a binding of the whole role claiming a reduced-scope request: %v", v)
	}
}
