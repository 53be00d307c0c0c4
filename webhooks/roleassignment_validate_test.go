package webhooks

import (
	"context"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func podReader() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}}
}

func TestAssignmentValidator(t *testing.T) {
	ops := user("ops")
	assigned := func(role string) *pimv1.RoleAssignment {
		ra := eligible("a", "alice", clusterRole(role))
		ra.Spec.AssignedBy = ops
		return ra
	}
	strict := &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "strict"}, Spec: pimv1.RoleSettingSpec{
		RoleRef:    pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "strict"},
		Assignment: pimv1.AssignmentPolicy{Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(false)}},
	}}
	for _, tc := range []struct {
		name   string
		access *access
		req    Request[*pimv1.RoleAssignment]
		want   want
	}{
		{"allows an assigner who may bind the role", allowing("ops bind clusterroles"), create(ops, assigned("admin")), allowed},
		{"allows an assigner who holds every permission of the role", allowing("ops get pods", "ops list pods"), create(ops, assigned("pod-reader")), allowed},
		{"refuses an assigner missing one permission", allowing("ops get pods"), create(ops, assigned("pod-reader")),
			refused("spec.roleRef", "ops may not grant ClusterRole pod-reader cluster-wide through kubepim")},
		{"refuses a role that does not exist yet without bind", allowing("ops get pods"), create(ops, assigned("later")),
			refused("spec.roleRef", `verb "bind" on clusterroles "later"`)},
		{"fails when the access review fails", &access{err: errAPI}, create(ops, assigned("admin")), failed("spec.roleRef")},
		{"refuses an assigner stamp that is not the user", allowing("mallory bind clusterroles"), create(user("mallory"), assigned("admin")),
			refused("spec.assignedBy", "must be the authenticated user")},
		{"refuses the role's assignment policy", allowing("ops bind clusterroles"), create(ops, assigned("strict")),
			refused("spec", "cannot be permanent: set spec.endTime")},
		{"refuses changing the assigner", allowing("ops bind clusterroles"), update(ops, assigned("admin"), func() *pimv1.RoleAssignment {
			ra := assigned("admin")
			ra.Spec.AssignedBy = user("root")
			return ra
		}()), refused("spec.assignedBy", "cannot change")},
		{"allows a metadata change without asking", &access{err: errAPI}, update(ops, assigned("admin"), annotated(assigned("admin"), "note", "x")), allowed},
		{"checks a changed spec again", allowing(), update(ops, assigned("admin"), func() *pimv1.RoleAssignment {
			ra := assigned("admin")
			ra.Spec.EndTime = &metav1.Time{Time: testNow.Add(time.Hour)}
			return ra
		}()), refused("spec.roleRef", "may not grant")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &assignmentValidator{handlerBase: testBase(fakeClient([]client.Object{podReader(), strict}...), tc.access)}
			tc.want.check(t, v.validate(context.Background(), tc.req))
		})
	}
}
