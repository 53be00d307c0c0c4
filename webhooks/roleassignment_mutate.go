package webhooks

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-roleassignment,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=roleassignments,verbs=create;update,versions=v1alpha1,name=mroleassignment.kubepim.io,admissionReviewVersions=v1

// mutateAssignment stamps who made an assignment (nobody changes it later)
// and who last changed its spec.
func mutateAssignment(_ context.Context, req Request[*pimv1.RoleAssignment]) field.ErrorList {
	ra := req.New
	switch req.Operation {
	case admissionv1.Create:
		ra.Spec.AssignedBy = req.User
	case admissionv1.Update:
		ra.Spec.AssignedBy = req.Old.Spec.AssignedBy
		stampChange(ra, req.Old, pimv1.AnnotationChangedBy, req.User.Username, !equality.Semantic.DeepEqual(req.Old.Spec, ra.Spec))
	}
	return nil
}
