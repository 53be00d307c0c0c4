package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Notification events, as named in RoleSetting spec.notifications.events.
const (
	EventEligibleAssigned = "eligibleAssigned"
	EventActiveAssigned   = "activeAssigned"
	EventApprovalNeeded   = "approvalNeeded"
	EventActivated        = "activated"
	EventApproved         = "approved"
	EventDenied           = "denied"
	EventExpiringSoon     = "expiringSoon"
	EventExpired          = "expired"
)

// Notification audiences.
const (
	AudienceAdmins    = "Admins"
	AudienceRequester = "Requester"
	AudienceApprovers = "Approvers"
)

// NotificationPhase is where delivery of a Notification stands.
// +kubebuilder:validation:Enum=Pending;Delivered;Failed
type NotificationPhase string

// Notification phases.
const (
	NotificationPending   NotificationPhase = "Pending"
	NotificationDelivered NotificationPhase = "Delivered"
	NotificationFailed    NotificationPhase = "Failed"
)

// LabelChannel labels a Notification with its channel's name.
const LabelChannel = "kubepim.io/channel"

// NotificationFact is one line of a notification: "Role: ClusterRole/admin".
type NotificationFact struct {
	// name of the fact.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	Name string `json:"name,omitempty"`
	// value of the fact.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	Value string `json:"value,omitempty"`
}

// NotificationAction is a command the reader can run.
type NotificationAction struct {
	// label says what the command does.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Label string `json:"label,omitempty"`
	// command is the exact command line.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Command string `json:"command,omitempty"`
}

// NotificationSpec is one message for one channel.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a Notification is immutable"
type NotificationSpec struct {
	// event that happened.
	// +required
	// +kubebuilder:validation:Enum=eligibleAssigned;activeAssigned;approvalNeeded;activated;approved;denied;expiringSoon;expired
	Event string `json:"event,omitempty"`

	// audience the message is for.
	// +required
	// +kubebuilder:validation:Enum=Admins;Requester;Approvers
	Audience string `json:"audience,omitempty"`

	// critical marks a notification that needs attention.
	// +optional
	Critical *bool `json:"critical,omitempty"`

	// channel is the NotificationChannel that carries it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Channel string `json:"channel,omitempty"`

	// to are the email addresses, for an SMTP channel: at most 1,000 (one
	// mail to more people is split over several Notifications).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=320
	To []string `json:"to,omitempty"`

	// unreachable names people the user directory has no address for: at
	// most 100, the last saying how many more.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=1024
	Unreachable []string `json:"unreachable,omitempty"`

	// source is the object the event happened to.
	// +required
	Source AuditObjectReference `json:"source,omitzero"`

	// occurredAt is when the event happened.
	// +required
	OccurredAt metav1.Time `json:"occurredAt,omitzero"`

	// title is a one-line summary.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Title string `json:"title,omitempty"`

	// facts are who, which role, scope, duration, justification, ticket.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Facts []NotificationFact `json:"facts,omitempty"`

	// actions are the commands the reader may run, such as approving.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Actions []NotificationAction `json:"actions,omitempty"`
}

// NotificationStatus is how delivery goes.
type NotificationStatus struct {
	// phase is Pending, Delivered or Failed (given up).
	// +optional
	Phase NotificationPhase `json:"phase,omitempty"`

	// attempts made so far.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Attempts int32 `json:"attempts,omitempty"`

	// firstAttemptTime is when delivery was first tried; delivery is given
	// up some time after it.
	// +optional
	FirstAttemptTime *metav1.Time `json:"firstAttemptTime,omitempty"`

	// lastAttemptTime is when delivery was last tried.
	// +optional
	LastAttemptTime *metav1.Time `json:"lastAttemptTime,omitempty"`

	// nextAttemptTime is when the next attempt is due.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`

	// deliveredTo lists the addresses that accepted the message, so that a
	// retry sends only to the others (at most spec.to's 1,000).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=320
	DeliveredTo []string `json:"deliveredTo,omitempty"`

	// deliveryTime is when delivery completed.
	// +optional
	DeliveryTime *metav1.Time `json:"deliveryTime,omitempty"`

	// lastError is the error of the last failed attempt.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	LastError string `json:"lastError,omitempty"`
}

// Notification is one message on its way to one channel: kubepim's
// outbox. It is created once per event, audience and channel under a name
// derived from them, so that a restart neither sends twice what was
// delivered nor forgets what was not; the manager delivers it with retries
// and exponential backoff, and deletes it after its retention.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pimnote,categories=pim
// +kubebuilder:printcolumn:name="Event",type=string,JSONPath=`.spec.event`
// +kubebuilder:printcolumn:name="Audience",type=string,JSONPath=`.spec.audience`
// +kubebuilder:printcolumn:name="Channel",type=string,JSONPath=`.spec.channel`
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.spec.source.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Attempts",type=integer,JSONPath=`.status.attempts`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Notification struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the Notification asks for.
	// +required
	Spec NotificationSpec `json:"spec,omitzero"`

	// status is what kubepim observed of the Notification.
	// +optional
	Status NotificationStatus `json:"status"`
}

// +kubebuilder:object:root=true

// NotificationList is a list of Notifications.
type NotificationList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the Notifications.
	// +required
	Items []Notification `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Notification{}, &NotificationList{})
}
