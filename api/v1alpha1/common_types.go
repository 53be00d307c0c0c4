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
	// kind is ClusterRole or Role.
	// +required
	// +kubebuilder:validation:Enum=ClusterRole;Role
	Kind string `json:"kind,omitempty"`

	// name of the role.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
}

// Subject is who an assignment is for.
// +structType=atomic
// +kubebuilder:validation:XValidation:rule="self.kind == 'ServiceAccount' ? has(self.__namespace__) && size(self.__namespace__) > 0 : !has(self.__namespace__) || size(self.__namespace__) == 0",message="subject.namespace is required for a ServiceAccount and must be empty for a User or Group"
type Subject struct {
	// kind is User, Group or ServiceAccount.
	// +required
	// +kubebuilder:validation:Enum=User;Group;ServiceAccount
	Kind string `json:"kind,omitempty"`

	// name of the user, group or service account, as the API server's
	// authenticator reports it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// namespace of a ServiceAccount: a DNS-1123 label. (A pattern, not a
	// CEL rule: subjects are listed in status, where CEL's cost budget
	// counts every item.)
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// Principal is a user or group named in a policy (an approver, a reviewer).
// +structType=atomic
type Principal struct {
	// kind is User or Group.
	// +required
	// +kubebuilder:validation:Enum=User;Group
	Kind string `json:"kind,omitempty"`

	// name of the user or group.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Name string `json:"name,omitempty"`
}

// UserInfo is an identity as the API server authenticated it. kubepim's
// admission webhooks stamp it from the admission request; it is never taken
// from what a user typed.
type UserInfo struct {
	// username as authenticated.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Username string `json:"username,omitempty"`

	// uid of the user, when the authenticator provides one.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	UID string `json:"uid,omitempty"`

	// groups the user was in when the request was made.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:MaxLength=1024
	Groups []string `json:"groups,omitempty"`

	// extra holds the authenticator's extra claims (for example "amr").
	// +optional
	Extra map[string][]string `json:"extra,omitempty"`
}

// BindingReference names the RoleBinding or ClusterRoleBinding that kubepim
// manages for an object.
type BindingReference struct {
	// kind is ClusterRoleBinding or RoleBinding.
	// +required
	// +kubebuilder:validation:Enum=ClusterRoleBinding;RoleBinding
	Kind string `json:"kind,omitempty"`
	// name of the binding.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
	// namespace of a RoleBinding.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// uid of the binding when it was last seen.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
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
	// ConditionStalled is kstatus's abnormal-true condition: present (True)
	// only while kubepim cannot make progress without someone changing
	// something (two RoleSettings for one role, a binding name taken, a
	// channel's Secret missing, a failed activation). GitOps tools that
	// use kstatus (Flux, kpt, cli-utils) report the object as Failed then,
	// instead of waiting for Ready until they time out.
	ConditionStalled = "Stalled"
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
