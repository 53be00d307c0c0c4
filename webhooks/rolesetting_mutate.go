package webhooks

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-rolesetting,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=rolesettings,verbs=create;update,versions=v1alpha1,name=mrolesetting.kubepim.io,admissionReviewVersions=v1

// stampSetting records who last created or changed a RoleSetting's spec.
func stampSetting(_ context.Context, req Request[*pimv1.RoleSetting]) field.ErrorList {
	switch req.Operation {
	case admissionv1.Create:
		setAnnotation(req.New, pimv1.AnnotationChangedBy, req.User.Username)
	case admissionv1.Update:
		stampChange(req.New, req.Old, pimv1.AnnotationChangedBy, req.User.Username, !equality.Semantic.DeepEqual(req.Old.Spec, req.New.Spec))
	}
	return nil
}
