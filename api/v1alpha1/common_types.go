package v1alpha1

// Role kinds a kubepim object may refer to.
const (
	RoleKindClusterRole = "ClusterRole"
	RoleKindRole        = "Role"
)

// Subject kinds.
const (
	SubjectKindUser           = "User"
	SubjectKindGroup          = "Group"
	SubjectKindServiceAccount = "ServiceAccount"
)

// Labels and annotations kubepim puts on the objects it manages or reads.
const (
	// LabelManagedBy marks RoleBindings and ClusterRoleBindings that kubepim
	// owns; its value is ManagedByValue.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "kubepim"
	// LabelOwnerKind and LabelOwnerUID name the kubepim object a binding
	// belongs to; AnnotationOwnerName carries its name (names may exceed the
	// 63 characters a label value allows).
	LabelOwnerKind      = "kubepim.io/owner-kind"
	LabelOwnerUID       = "kubepim.io/owner-uid"
	AnnotationOwnerName = "kubepim.io/owner-name"
	// AnnotationChangedBy names who last changed an object's spec; kubepim's
	// webhook stamps it from the authenticated user.
	AnnotationChangedBy = "kubepim.io/changed-by"
	// FinalizerRevoke holds a deleted RoleAssignment until kubepim has
	// revoked its binding and recorded the removal.
	FinalizerRevoke = "kubepim.io/revoke"
)

// RoleRef names the Role or ClusterRole an assignment or activation grants.
// A Role lives in the namespace of the assignment or activation.
// +structType=atomic
type RoleRef struct {
	// Kind is ClusterRole or Role.
	// +kubebuilder:validation:Enum=ClusterRole;Role
	Kind string `json:"kind"`

	// Name of the role.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// Subject is who an assignment is for.
// +structType=atomic
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' ? has(self.__namespace__) && size(self.__namespace__) > 0 : !has(self.__namespace__) || size(self.__namespace__) == 0",message="subject.namespace is required for a ServiceAccount and must be empty for a User or Group"
type Subject struct {
	// Kind is User, Group or ServiceAccount.
	// +kubebuilder:validation:Enum=User;Group;ServiceAccount
	Kind string `json:"kind"`

	// Name of the user, group or service account, as the API server's
	// authenticator reports it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of a ServiceAccount: a DNS-1123 label. (A pattern, not a
	// CEL rule: subjects are listed in status, where CEL's cost budget
	// counts every item.)
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// Principal is a user or group named in a policy (an approver, a reviewer).
// +structType=atomic
type Principal struct {
	// Kind is User or Group.
	// +kubebuilder:validation:Enum=User;Group
	Kind string `json:"kind"`

	// Name of the user or group.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// UserInfo is an identity as the API server authenticated it. kubepim's
// admission webhooks stamp it from the admission request; it is never taken
// from what a user typed.
type UserInfo struct {
	// Username as authenticated.
	Username string `json:"username"`

	// UID of the user, when the authenticator provides one.
	// +optional
	UID string `json:"uid,omitempty"`

	// Groups the user was in when the request was made.
	// +optional
	// +listType=atomic
	Groups []string `json:"groups,omitempty"`

	// Extra holds the authenticator's extra claims (for example "amr").
	// +optional
	Extra map[string][]string `json:"extra,omitempty"`
}

// BindingReference names the RoleBinding or ClusterRoleBinding that kubepim
// manages for an object.
type BindingReference struct {
	// Kind is ClusterRoleBinding or RoleBinding.
	Kind string `json:"kind"`
	// Name of the binding.
	Name string `json:"name"`
	// Namespace of a RoleBinding.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// UID of the binding when it was last seen.
	// +optional
	UID string `json:"uid,omitempty"`
}

// Condition types shared by kubepim kinds.
const (
	// ConditionReady says whether the object is in the state its spec asks for.
	ConditionReady = "Ready"
	// ConditionGranted says whether the subject holds the role right now.
	ConditionGranted = "Granted"
	// ConditionConflict says that more than one RoleSetting governs one role.
	ConditionConflict = "Conflict"
	// ConditionApproved says where an ActivationRequest stands with its
	// approvers.
	ConditionApproved = "Approved"
	// ConditionAlerting says whether security alerts are raised on a role.
	ConditionAlerting = "Alerting"
)

// Condition reasons shared by kubepim kinds.
const (
	ReasonScheduled        = "Scheduled"
	ReasonActivated        = "Activated"
	ReasonEligible         = "Eligible"
	ReasonExpired          = "Expired"
	ReasonRepaired         = "Repaired"
	ReasonBindingConflict  = "BindingNameTaken"
	ReasonReconcileError   = "ReconcileError"
	ReasonNoConflict       = "NoConflict"
	ReasonMultipleSettings = "MultipleRoleSettings"
	ReasonValid            = "Valid"
)
