package webhooks

import (
	"context"
	"testing"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestMutateAssignment(t *testing.T) {
	ops := user("ops", "platform")
	t.Run("stamps the assigner on create", func(t *testing.T) {
		ra := eligible("a", "alice", clusterRole("view"))
		ra.Spec.AssignedBy = user("mallory")
		allowed.check(t, mutateAssignment(context.Background(), create(ops, ra)))
		if ra.Spec.AssignedBy != ops {
			t.Errorf("assignedBy = %+v, want %+v", ra.Spec.AssignedBy, ops)
		}
	})
	for _, tc := range []struct {
		name      string
		edit      func(*pimv1.RoleAssignment)
		changedBy string
	}{
		{"stamps who changed the spec", func(ra *pimv1.RoleAssignment) { ra.Spec.Justification = "on call" }, "dana"},
		{"puts back the stamp on a metadata change", func(ra *pimv1.RoleAssignment) {
			annotated(ra, pimv1.AnnotationChangedBy, "dana", "note", "x")
		}, "ops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := annotated(eligible("a", "alice", clusterRole("view")), pimv1.AnnotationChangedBy, "ops")
			old.Spec.AssignedBy = ops
			ra := old.DeepCopy()
			ra.Spec.AssignedBy = user("dana")
			tc.edit(ra)
			allowed.check(t, mutateAssignment(context.Background(), update(user("dana"), old, ra)))
			if ra.Spec.AssignedBy.Username != "ops" {
				t.Errorf("assignedBy = %+v, want ops kept", ra.Spec.AssignedBy)
			}
			if got := ra.Annotations[pimv1.AnnotationChangedBy]; got != tc.changedBy {
				t.Errorf("changed-by = %q, want %q", got, tc.changedBy)
			}
		})
	}
}
