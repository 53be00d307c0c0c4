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

// Notification phases.
const (
	NotificationPending   = "Pending"
	NotificationDelivered = "Delivered"
	NotificationFailed    = "Failed"
)

// LabelChannel labels a Notification with its channel's name.
const LabelChannel = "kubepim.io/channel"

// NotificationFact is one line of a notification: "Role: ClusterRole/admin".
type NotificationFact struct {
	// Name of the fact.
	Name string `json:"name"`
	// Value of the fact.
	Value string `json:"value"`
}

// NotificationAction is a command the reader can run.
type NotificationAction struct {
	// Label says what the command does.
	Label string `json:"label"`
	// Command is the exact command line.
	Command string `json:"command"`
}

// NotificationSpec is one message for one channel.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a Notification is immutable"
type NotificationSpec struct {
	// Event that happened.
	// +kubebuilder:validation:Enum=eligibleAssigned;activeAssigned;approvalNeeded;activated;approved;denied;expiringSoon;expired
	Event string `json:"event"`

	// Audience the message is for.
	// +kubebuilder:validation:Enum=Admins;Requester;Approvers
	Audience string `json:"audience"`

	// Critical marks a notification that needs attention.
	// +optional
	Critical bool `json:"critical,omitempty"`

	// Channel is the NotificationChannel that carries it.
	Channel string `json:"channel"`

	// To are the email addresses, for an SMTP channel.
	// +optional
	// +listType=set
	To []string `json:"to,omitempty"`

	// Unreachable names people the user directory has no address for.
	// +optional
	// +listType=set
	Unreachable []string `json:"unreachable,omitempty"`

	// Source is the object the event happened to.
	Source AuditObjectReference `json:"source"`

	// OccurredAt is when the event happened.
	OccurredAt metav1.Time `json:"occurredAt"`

	// Title is a one-line summary.
	Title string `json:"title"`

	// Facts: who, which role, scope, duration, justification, ticket.
	// +optional
	Facts []NotificationFact `json:"facts,omitempty"`

	// Actions are the commands the reader may run, such as approving.
	// +optional
	Actions []NotificationAction `json:"actions,omitempty"`
}

// NotificationStatus is how delivery goes.
type NotificationStatus struct {
	// Phase: Pending, Delivered or Failed (given up).
	// +optional
	Phase string `json:"phase,omitempty"`

	// Attempts made so far.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`

	// FirstAttemptTime is when delivery was first tried; delivery is given
	// up some time after it.
	// +optional
	FirstAttemptTime *metav1.Time `json:"firstAttemptTime,omitempty"`

	// LastAttemptTime is when delivery was last tried.
	// +optional
	LastAttemptTime *metav1.Time `json:"lastAttemptTime,omitempty"`

	// NextAttemptTime is when the next attempt is due.
	// +optional
	NextAttemptTime *metav1.Time `json:"nextAttemptTime,omitempty"`

	// DeliveredTo lists the addresses that accepted the message, so that a
	// retry sends only to the others.
	// +optional
	// +listType=set
	DeliveredTo []string `json:"deliveredTo,omitempty"`

	// DeliveryTime is when delivery completed.
	// +optional
	DeliveryTime *metav1.Time `json:"deliveryTime,omitempty"`

	// LastError is the error of the last failed attempt.
	// +optional
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
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NotificationSpec   `json:"spec"`
	Status NotificationStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NotificationList is a list of Notifications.
type NotificationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Notification `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Notification{}, &NotificationList{})
}
