package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ActivationState is where an ActivationRequest stands.
// +kubebuilder:validation:Enum=Pending;PendingApproval;Scheduled;Active;Expired;Denied;Cancelled;Deactivated;Failed;TimedOut
type ActivationState string

// ActivationRequest states.
const (
	ActivationStatePending         ActivationState = "Pending"
	ActivationStatePendingApproval ActivationState = "PendingApproval"
	ActivationStateScheduled       ActivationState = "Scheduled"
	ActivationStateActive          ActivationState = "Active"
	ActivationStateExpired         ActivationState = "Expired"
	ActivationStateDenied          ActivationState = "Denied"
	ActivationStateCancelled       ActivationState = "Cancelled"
	ActivationStateDeactivated     ActivationState = "Deactivated"
	ActivationStateFailed          ActivationState = "Failed"
	ActivationStateTimedOut        ActivationState = "TimedOut"
)

// ApprovalDecision is an approver's decision on an ActivationRequest.
// +kubebuilder:validation:Enum=Approve;Deny
type ApprovalDecision string

// Approval decisions.
const (
	DecisionApprove ApprovalDecision = "Approve"
	DecisionDeny    ApprovalDecision = "Deny"
)

// Annotations people put on an ActivationRequest.
const (
	// AnnotationCancel withdraws a request that is not active yet.
	AnnotationCancel = "kubepim.io/cancel"
	// AnnotationDeactivate ends an active request now; its value is the reason.
	AnnotationDeactivate = "kubepim.io/deactivate"
	// AnnotationTOTP carries a one-time code on create; the webhook verifies
	// and removes it before the request is stored.
	AnnotationTOTP = "kubepim.io/totp"
	// AnnotationCancelledBy and AnnotationDeactivatedBy record who cancelled
	// or deactivated; the webhook stamps them from the authenticated user.
	AnnotationCancelledBy   = "kubepim.io/cancelled-by"
	AnnotationDeactivatedBy = "kubepim.io/deactivated-by"
	// AnnotationApprove and AnnotationDeny are how an approver decides; the
	// value is the reason. The webhook turns them into a signed record.
	AnnotationApprove = "kubepim.io/approve"
	AnnotationDeny    = "kubepim.io/deny"
	// AnnotationDecisions holds the signed approval records; only kubepim's
	// webhook writes it.
	AnnotationDecisions = "kubepim.io/decisions"
	// AnnotationActivatedAt and AnnotationExpiresAt (RFC 3339, whole
	// seconds) are stamped on the binding an activation grants with: the
	// deadline is stored with the access it bounds, in the same write, so a
	// manager that dies before storing the status still revokes on time.
	AnnotationActivatedAt = "kubepim.io/activated-at"
	AnnotationExpiresAt   = "kubepim.io/expires-at"
	// AnnotationTimingSignature signs the two above, with kubepim's key,
	// for this request's UID and this very binding: anyone may create a
	// binding carrying kubepim's labels and annotations, so a timing is
	// believed only when kubepim signed it.
	AnnotationTimingSignature = "kubepim.io/timing-signature"
	// FieldState is the field selector of an ActivationRequest's state:
	// --field-selector status.state=PendingApproval.
	FieldState = "status.state"
)

// Ticket is a change or incident ticket backing an activation.
type Ticket struct {
	// system is the ticketing system, for example "jira" or "servicenow".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	System string `json:"system,omitempty"`

	// number of the ticket in that system.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Number string `json:"number,omitempty"`
}

// ActivationRequestSpec is a request to activate an eligible role. It is
// immutable once created.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="an ActivationRequest's spec is immutable; use the kubepim.io/cancel or kubepim.io/deactivate annotation, or create a new request"
// +kubebuilder:validation:XValidation:rule="self.roleRef.kind == 'ClusterRole' || (has(self.__namespace__) && size(self.__namespace__) > 0)",message="a Role can only be activated in a namespace: set spec.namespace"
type ActivationRequestSpec struct {
	// roleRef is the role to activate.
	// +required
	RoleRef RoleRef `json:"roleRef,omitzero"`

	// namespace to activate the role in; absent means cluster-wide.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == '' || !format.dns1123Label().validate(self).hasValue()",message="must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit (a DNS-1123 label)"
	Namespace string `json:"namespace,omitempty"`

	// duration of the activation, for example "1h"; at most the role's
	// activation.maxDuration.
	// +required
	Duration metav1.Duration `json:"duration"`

	// startTime is when the activation should start; absent means now.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// justification for the activation.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Justification string `json:"justification,omitempty"`

	// ticket backing the activation.
	// +optional
	Ticket *Ticket `json:"ticket,omitempty"`

	// extends names an Active request of the same requester, role and
	// namespace that this one takes over from without a gap.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Extends string `json:"extends,omitempty"`

	// requester is who asked, stamped by kubepim's admission webhook from
	// the authenticated request; whatever a client sends here is replaced.
	// +optional
	Requester *UserInfo `json:"requester,omitempty"`

	// mfa records how the requester proved a second factor, stamped by
	// kubepim's admission webhook; whatever a client sends here is replaced.
	// +optional
	MFA *MFAProof `json:"mfa,omitempty"`

	// permissions narrows the activation to a subset of the role (a
	// "reduced scope"): only what these rules allow, and only while the
	// role itself still allows it. Absent means the whole role. Each rule
	// must be covered by the role's rules when the request is made; in
	// bindings mode kubepim grants them with a Role (namespaced request)
	// or ClusterRole (cluster-wide) it generates for this request.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Permissions []PermissionRule `json:"permissions,omitempty"`
}

// PermissionRule is one rule of a reduced-scope activation, with the
// meaning of an RBAC PolicyRule: either a resource rule (verbs, apiGroups,
// resources, optionally resourceNames) or a non-resource rule (verbs,
// nonResourceURLs, cluster-wide requests only).
// +kubebuilder:validation:XValidation:rule="has(self.nonResourceURLs) != has(self.resources)",message="a rule has either resources (with apiGroups) or nonResourceURLs, not both"
// +kubebuilder:validation:XValidation:rule="has(self.resources) == has(self.apiGroups)",message="a resource rule needs both apiGroups and resources"
// +kubebuilder:validation:XValidation:rule="!has(self.resourceNames) || has(self.resources)",message="resourceNames apply to resources only"
type PermissionRule struct {
	// verbs allowed, for example get, list, delete; "*" is every verb.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=64
	Verbs []string `json:"verbs,omitempty"`

	// apiGroups of the resources: "" is the core group, "*" every group.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	APIGroups []string `json:"apiGroups,omitempty"`

	// resources allowed, for example pods or pods/log; "*" is every resource.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	Resources []string `json:"resources,omitempty"`

	// resourceNames limits the rule to these objects; absent means all.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	ResourceNames []string `json:"resourceNames,omitempty"`

	// nonResourceURLs allowed, for example /healthz or /logs/*, in a cluster-wide
	// request only.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	NonResourceURLs []string `json:"nonResourceURLs,omitempty"`
}

// Activation scopes (status.scope).
const (
	// ScopeRole: the activation grants the whole role.
	ScopeRole = "Role"
	// ScopeReduced: the activation grants only spec.permissions.
	ScopeReduced = "Reduced"
)

// MFA methods.
const (
	// MFAMethodClaim: the identity provider's claim (for example amr=mfa)
	// reached the API server as user extra.
	MFAMethodClaim = "Claim"
	// MFAMethodTOTP: the requester gave a valid one-time code.
	MFAMethodTOTP = "TOTP"
)

// MFAProof is how a second factor was proven.
type MFAProof struct {
	// method is Claim or TOTP.
	// +required
	// +kubebuilder:validation:Enum=Claim;TOTP
	Method string `json:"method,omitempty"`
	// verifiedAt is when kubepim checked it.
	// +required
	VerifiedAt metav1.Time `json:"verifiedAt,omitzero"`
}

// ApprovalRecord is one approver's decision.
type ApprovalRecord struct {
	// approver who decided, as authenticated when deciding.
	// +required
	Approver UserInfo `json:"approver,omitzero"`
	// decision is Approve or Deny.
	// +required
	Decision ApprovalDecision `json:"decision,omitempty"`
	// reason the approver gave.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// time of the decision.
	// +required
	Time metav1.Time `json:"time,omitzero"`
}

// GeneratedRoleReference names a role kubepim generated.
type GeneratedRoleReference struct {
	// kind is Role or ClusterRole.
	// +required
	// +kubebuilder:validation:Enum=Role;ClusterRole
	Kind string `json:"kind,omitempty"`
	// name of the role.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
	// namespace of a Role.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// uid of the role kubepim created.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	UID string `json:"uid,omitempty"`
}

// ActivationRequestStatus is what kubepim observed of an ActivationRequest.
type ActivationRequestStatus struct {
	// conditions are Ready, Granted and Approved.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation last reconciled.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// state is Pending, PendingApproval, Scheduled, Active, Expired, Denied,
	// Cancelled, Deactivated, Failed or TimedOut.
	// +optional
	State ActivationState `json:"state,omitempty"`

	// approvals recorded so far.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Approvals []ApprovalRecord `json:"approvals,omitempty"`

	// approvalDeadline is when a request waiting for approval times out.
	// +optional
	ApprovalDeadline *metav1.Time `json:"approvalDeadline,omitempty"`

	// activatedAt is when the role was (or will be) granted.
	// +optional
	ActivatedAt *metav1.Time `json:"activatedAt,omitempty"`

	// expiresAt is when the grant ends: the instant it began plus
	// duration, rounded up to a whole second (activatedAt is rounded
	// down), so access lasts at least duration and less than a second more.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// endedAt is when the request reached a final state.
	// +optional
	EndedAt *metav1.Time `json:"endedAt,omitempty"`

	// binding kubepim keeps while the request is Active.
	// +optional
	Binding *BindingReference `json:"binding,omitempty"`

	// scope is Role when the activation grants the whole role, Reduced
	// when only spec.permissions (a subset of the role).
	// +optional
	// +kubebuilder:validation:Enum=Role;Reduced
	Scope string `json:"scope,omitempty"`

	// generatedRole is the Role or ClusterRole kubepim generated for a
	// reduced-scope activation in bindings mode, holding only
	// spec.permissions, while the request is Active. Written only by
	// kubepim: a role of that name with another UID is not kubepim's.
	// +optional
	GeneratedRole *GeneratedRoleReference `json:"generatedRole,omitempty"`

	// lastUsedAt is, in --access-mode=authorizer, when kubepim's authorizer
	// last allowed a request through this activation, to within the rate
	// limit of its status writes (a minute). Written only by kubepim; only
	// moves forward. Unset in bindings mode, where uses are not seen.
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`

	// message says in words why the request is in its state.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	Message string `json:"message,omitempty"`
}

// ActivationRequest asks to activate an eligible role now or at a chosen
// time, for a duration, with justification, ticket and MFA.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pimar;pimact,categories=pim
// +kubebuilder:selectablefield:JSONPath=`.status.state`
// +kubebuilder:selectablefield:JSONPath=`.spec.requester.username`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.roleRef.name`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.namespace`
// +kubebuilder:printcolumn:name="Scope",type=string,JSONPath=`.status.scope`
// +kubebuilder:printcolumn:name="Requester",type=string,JSONPath=`.spec.requester.username`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.spec.duration`,priority=1
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ActivationRequest struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the ActivationRequest asks for.
	// +required
	Spec ActivationRequestSpec `json:"spec,omitzero"`

	// status is what kubepim observed of the ActivationRequest.
	// +optional
	Status ActivationRequestStatus `json:"status"`
}

// +kubebuilder:object:root=true

// ActivationRequestList is a list of ActivationRequests.
type ActivationRequestList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the ActivationRequests.
	// +required
	Items []ActivationRequest `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ActivationRequest{}, &ActivationRequestList{})
}

// EndedAtOr returns when the request ended, or fallback if it has not.
func (s *ActivationRequestStatus) EndedAtOr(fallback time.Time) time.Time {
	if s.EndedAt == nil {
		return fallback
	}
	return s.EndedAt.Time
}

// RequesterName is the username of the requester kubepim stamped, for
// messages and decisions ("unknown requester" if none was stamped).
func (ar *ActivationRequest) RequesterName() string {
	if ar.Spec.Requester == nil {
		return "unknown requester"
	}
	return ar.Spec.Requester.Username
}
