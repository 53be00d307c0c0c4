package webhooks

import (
	"context"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// assignmentMutator stamps who made an assignment; nobody changes it later.
type assignmentMutator struct{ handlerBase }

func (m *assignmentMutator) Handle(_ context.Context, req admission.Request) admission.Response {
	ra := &pimv1.RoleAssignment{}
	if err := m.decoder.Decode(req, ra); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	switch req.Operation {
	case admissionv1.Create:
		ra.Spec.AssignedBy = userInfo(req.UserInfo)
	case admissionv1.Update:
		old := &pimv1.RoleAssignment{}
		if err := m.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		ra.Spec.AssignedBy = old.Spec.AssignedBy
		restore(ra, old, pimv1.AnnotationChangedBy)
		if !equality.Semantic.DeepEqual(old.Spec, ra.Spec) {
			setAnnotation(ra, pimv1.AnnotationChangedBy, req.UserInfo.Username)
		}
	default:
		return admission.Allowed("")
	}
	return patched(req, ra)
}

// assignmentValidator applies the role's assignment policy and the
// escalation guard to every assignment created or changed.
type assignmentValidator struct{ handlerBase }

func (v *assignmentValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	ra := &pimv1.RoleAssignment{}
	if err := v.decoder.Decode(req, ra); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	user := userInfo(req.UserInfo)
	switch req.Operation {
	case admissionv1.Create:
		if ra.Spec.AssignedBy == nil || !equality.Semantic.DeepEqual(*ra.Spec.AssignedBy, *user) {
			return admission.Denied("spec.assignedBy must be the authenticated user; it is set by kubepim's mutating webhook, which did not run")
		}
	case admissionv1.Update:
		old := &pimv1.RoleAssignment{}
		if err := v.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if !equality.Semantic.DeepEqual(old.Spec.AssignedBy, ra.Spec.AssignedBy) {
			return admission.Denied("spec.assignedBy cannot change")
		}
		if equality.Semantic.DeepEqual(old.Spec, ra.Spec) || !ra.DeletionTimestamp.IsZero() {
			// Metadata only (labels, finalizers): no new grant.
			return admission.Allowed("")
		}
	default:
		return admission.Allowed("")
	}
	setting, _, err := lookup.EffectiveSetting(ctx, v.cache, ra.Spec.RoleRef, ra.Spec.Namespace)
	if err != nil {
		return denyOrError(err)
	}
	created := v.cfg.Clock.Now()
	if req.Operation == admissionv1.Update {
		created = ra.CreationTimestamp.Time
	}
	if err := policy.CheckAssignment(setting.Assignment, ra, created, hasMFAClaim(user, v.cfg)); err != nil {
		return admission.Denied(joinLines(err))
	}
	if err := (access{v.direct}).mayGrant(ctx, user, ra.Spec.RoleRef, ra.Spec.Namespace); err != nil {
		return denyOrError(err)
	}
	return admission.Allowed("")
}
