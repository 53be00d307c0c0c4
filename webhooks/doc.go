// Package webhooks holds kubepim's admission webhooks. They run inside the
// manager and take every identity (requester, approver, assigner) from the
// API server's authenticated userInfo, never from what a client typed.
//
// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-activationrequest,mutating=true,failurePolicy=fail,sideEffects=NoneOnDryRun,groups=kubepim.io,resources=activationrequests,verbs=create;update,versions=v1alpha1,name=mactivationrequest.kubepim.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-activationrequest,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=activationrequests,verbs=create;update,versions=v1alpha1,name=vactivationrequest.kubepim.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-roleassignment,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=roleassignments,verbs=create;update,versions=v1alpha1,name=mroleassignment.kubepim.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-roleassignment,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=roleassignments,verbs=create;update,versions=v1alpha1,name=vroleassignment.kubepim.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-auditevent,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=auditevents,verbs=create;update;delete,versions=v1alpha1,name=vauditevent.kubepim.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-rolesetting,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=rolesettings,verbs=create;update;delete,versions=v1alpha1,name=vrolesetting.kubepim.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-rolesetting,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=rolesettings,verbs=create;update,versions=v1alpha1,name=mrolesetting.kubepim.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-accessreview,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=accessreviews,verbs=create;update,versions=v1alpha1,name=maccessreview.kubepim.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-accessreview,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=accessreviews,verbs=create;update,versions=v1alpha1,name=vaccessreview.kubepim.io,admissionReviewVersions=v1
package webhooks

// The manager reads TOTP enrollments and asks the API server who may
// deactivate requests.
// +kubebuilder:rbac:groups=core,namespace=kubepim-system,resources=secrets,verbs=get;create;update
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
