package webhooks

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-roleassignment,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=roleassignments,verbs=create;update,versions=v1alpha1,name=vroleassignment.kubepim.io,admissionReviewVersions=v1

// assignmentValidator applies the role's assignment policy and the
// escalation guard to every assignment created or changed.
type assignmentValidator struct{ handlerBase }

func (v *assignmentValidator) validate(ctx context.Context, req Request[*pimv1.RoleAssignment]) field.ErrorList {
	ra, user := req.New, req.User
	assignedBy := specPath.Child("assignedBy")
	created := v.cfg.Clock.Now()
	switch req.Operation {
	case admissionv1.Create:
		if ra.Spec.AssignedBy == nil || !equality.Semantic.DeepEqual(*ra.Spec.AssignedBy, *user) {
			return forbidden(assignedBy, "spec.assignedBy must be the authenticated user; it is set by kubepim's mutating webhook, which did not run")
		}
	case admissionv1.Update:
		if !equality.Semantic.DeepEqual(req.Old.Spec.AssignedBy, ra.Spec.AssignedBy) {
			return forbidden(assignedBy, "spec.assignedBy cannot change")
		}
		if equality.Semantic.DeepEqual(req.Old.Spec, ra.Spec) || !ra.DeletionTimestamp.IsZero() {
			// Metadata only (labels, finalizers): no new grant.
			return nil
		}
		created = ra.CreationTimestamp.Time
	default:
		return nil
	}
	roleRef := specPath.Child("roleRef")
	setting, _, err := lookup.EffectiveSetting(ctx, v.cache, ra.Spec.RoleRef, ra.Spec.Namespace)
	if err != nil {
		return settingError(roleRef, err)
	}
	if errs := policyRefusals(specPath, policy.CheckAssignment(setting.Assignment, ra, created, v.cfg.mfaClaimed(user))); len(errs) > 0 {
		return errs
	}
	ok, err := v.mayGrant(ctx, user, ra.Spec.RoleRef, ra.Spec.Namespace)
	if err != nil {
		return internalError(roleRef, err)
	}
	if !ok {
		return forbidden(roleRef, grantRefusal(user, ra.Spec.RoleRef, ra.Spec.Namespace))
	}
	return nil
}
