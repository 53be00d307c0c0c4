package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Audit actions.
const (
	AuditAssignmentCreated     = "AssignmentCreated"
	AuditAssignmentChanged     = "AssignmentChanged"
	AuditAssignmentRemoved     = "AssignmentRemoved"
	AuditAssignmentActivated   = "AssignmentActivated"
	AuditAssignmentExpired     = "AssignmentExpired"
	AuditActivationRequested   = "ActivationRequested"
	AuditApproved              = "Approved"
	AuditDenied                = "Denied"
	AuditTimedOut              = "TimedOut"
	AuditActivated             = "Activated"
	AuditExpired               = "Expired"
	AuditDeactivated           = "Deactivated"
	AuditCancelled             = "Cancelled"
	AuditExtended              = "Extended"
	AuditFailed                = "Failed"
	AuditReviewDecision        = "ReviewDecision"
	AuditReviewApplied         = "ReviewApplied"
	AuditReviewCreated         = "ReviewCreated"
	AuditReviewChanged         = "ReviewChanged"
	AuditSettingChanged        = "SettingChanged"
	AuditAlertRaised           = "AlertRaised"
	AuditBindingRepaired       = "BindingRepaired"
	AuditOutsideBindingRemoved = "OutsideBindingRemoved"
	// AuditMFAFailed is a refused TOTP attempt: a wrong code, or an
	// attempt while locked out after too many (recorded by the leader from
	// the user's enrollment Secret; the webhook never writes the trail).
	AuditMFAFailed      = "MFAFailed"
	AuditOutcomeSuccess = "Success"
	AuditOutcomeFailure = "Failure"
)

// AuditObjectReference names the kubepim object an audit event is about.
type AuditObjectReference struct {
	// kind of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind,omitempty"`
	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
	// uid of the object.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	UID string `json:"uid,omitempty"`
}

// AuditEventSpec is one recorded action. It is written once by kubepim and
// never changes.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="audit events are immutable"
type AuditEventSpec struct {
	// time the action happened.
	// +required
	Time metav1.Time `json:"time,omitzero"`

	// action is what happened, for example ActivationRequested, Activated, Expired, Approved.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Action string `json:"action,omitempty"`

	// actor who caused the action; kubepim's own controller when it acted
	// on a timer.
	// +optional
	Actor *UserInfo `json:"actor,omitempty"`

	// subject whose access changed.
	// +optional
	Subject *Subject `json:"subject,omitempty"`

	// roleRef of the role concerned.
	// +optional
	RoleRef *RoleRef `json:"roleRef,omitempty"`

	// namespace the role applies in; empty means cluster-wide.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// target is the kubepim object the event is about.
	// +optional
	Target *AuditObjectReference `json:"target,omitempty"`

	// justification given by the actor.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Justification string `json:"justification,omitempty"`

	// ticket given by the actor.
	// +optional
	Ticket *Ticket `json:"ticket,omitempty"`

	// outcome is Success or Failure.
	// +optional
	// +kubebuilder:validation:Enum=Success;Failure
	Outcome string `json:"outcome,omitempty"`

	// reason or message in words.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	Reason string `json:"reason,omitempty"`

	// details carries action-specific fields (ticket, duration, ...): at
	// most 32, each value cut to 8 KiB by kubepim.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Details map[string]string `json:"details,omitempty"`

	// sequence is the event's position in the hash chain.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Sequence int64 `json:"sequence,omitempty"`

	// previousHash is the hash of the event before this one.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	PreviousHash string `json:"previousHash,omitempty"`

	// hash is the SHA-256 over this event's fields and PreviousHash.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Hash string `json:"hash,omitempty"`
}

// AuditEvent is one entry of kubepim's tamper-evident audit trail.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=pimaudit,categories=pim
// +kubebuilder:printcolumn:name="Time",type=string,JSONPath=`.spec.time`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Actor",type=string,JSONPath=`.spec.actor.username`
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject.name`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.roleRef.name`
// +kubebuilder:printcolumn:name="Seq",type=integer,JSONPath=`.spec.sequence`,priority=1
// +kubebuilder:printcolumn:name="Outcome",type=string,JSONPath=`.spec.outcome`
type AuditEvent struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the AuditEvent asks for.
	// +required
	Spec AuditEventSpec `json:"spec,omitzero"`
}

// +kubebuilder:object:root=true

// AuditEventList is a list of AuditEvents.
type AuditEventList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the AuditEvents.
	// +required
	Items []AuditEvent `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AuditEvent{}, &AuditEventList{})
}
