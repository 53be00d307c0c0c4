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
	// Kind of the object.
	Kind string `json:"kind"`
	// Name of the object.
	Name string `json:"name"`
	// UID of the object.
	// +optional
	UID string `json:"uid,omitempty"`
}

// AuditEventSpec is one recorded action. It is written once by kubepim and
// never changes.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="audit events are immutable"
type AuditEventSpec struct {
	// Time the action happened.
	Time metav1.Time `json:"time"`

	// Action, for example ActivationRequested, Activated, Expired, Approved.
	// +kubebuilder:validation:MinLength=1
	Action string `json:"action"`

	// Actor who caused the action; kubepim's own controller when it acted
	// on a timer.
	// +optional
	Actor *UserInfo `json:"actor,omitempty"`

	// Subject whose access changed.
	// +optional
	Subject *Subject `json:"subject,omitempty"`

	// RoleRef of the role concerned.
	// +optional
	RoleRef *RoleRef `json:"roleRef,omitempty"`

	// Namespace the role applies in; empty means cluster-wide.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Target is the kubepim object the event is about.
	// +optional
	Target *AuditObjectReference `json:"target,omitempty"`

	// Justification given by the actor.
	// +optional
	Justification string `json:"justification,omitempty"`

	// Ticket given by the actor.
	// +optional
	Ticket *Ticket `json:"ticket,omitempty"`

	// Outcome: Success or Failure.
	// +optional
	Outcome string `json:"outcome,omitempty"`

	// Reason or message in words.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Details carries action-specific fields (ticket, duration, ...).
	// +optional
	Details map[string]string `json:"details,omitempty"`

	// Sequence is the event's position in the hash chain.
	// +optional
	Sequence int64 `json:"sequence,omitempty"`

	// PreviousHash is the hash of the event before this one.
	// +optional
	PreviousHash string `json:"previousHash,omitempty"`

	// Hash is the SHA-256 over this event's fields and PreviousHash.
	// +optional
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
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AuditEventSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// AuditEventList is a list of AuditEvents.
type AuditEventList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuditEvent `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AuditEvent{}, &AuditEventList{})
}
