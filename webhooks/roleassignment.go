package webhooks

import (
	"context"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
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
	default:
		return admission.Allowed("")
	}
	return patched(req, ra)
}

// assignmentValidator checks that the assigner was stamped.
type assignmentValidator struct{ handlerBase }

func (v *assignmentValidator) Handle(_ context.Context, req admission.Request) admission.Response {
	ra := &pimv1.RoleAssignment{}
	if err := v.decoder.Decode(req, ra); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if req.Operation == admissionv1.Create {
		if ra.Spec.AssignedBy == nil || !equality.Semantic.DeepEqual(*ra.Spec.AssignedBy, *userInfo(req.UserInfo)) {
			return admission.Denied("spec.assignedBy must be the authenticated user; it is set by kubepim's mutating webhook, which did not run")
		}
	}
	if req.Operation == admissionv1.Update {
		old := &pimv1.RoleAssignment{}
		if err := v.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if !equality.Semantic.DeepEqual(old.Spec.AssignedBy, ra.Spec.AssignedBy) {
			return admission.Denied("spec.assignedBy cannot change")
		}
	}
	return admission.Allowed("")
}
