package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Notification channel types.
const (
	// ChannelWebhook POSTs kubepim's own JSON document to a URL.
	ChannelWebhook = "Webhook"
	// ChannelSlack POSTs a Slack incoming-webhook message.
	ChannelSlack = "Slack"
	// ChannelTeams POSTs a Microsoft Teams workflow message with an
	// Adaptive Card.
	ChannelTeams = "Teams"
	// ChannelSMTP sends mail.
	ChannelSMTP = "SMTP"
)

// SMTP connection security.
const (
	// SMTPStartTLS connects in plain text and upgrades with STARTTLS,
	// refusing a server that does not offer it (port 587).
	SMTPStartTLS = "StartTLS"
	// SMTPTLS connects with TLS from the first byte (port 465).
	SMTPTLS = "TLS"
	// SMTPNone sends in plain text, for a relay on the node or in the pod
	// network only; credentials are never sent without TLS.
	SMTPNone = "None"
)

// Channel Ready condition reasons.
const (
	ReasonChannelValid    = "Valid"
	ReasonSecretMissing   = "SecretMissing"
	ReasonSecretInvalid   = "SecretInvalid"
	ReasonDeliveryFailing = "DeliveryFailing"
)

// ChannelSecretReference names a Secret in kubepim's namespace.
type ChannelSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// SMTPSettings says how to reach a mail server.
type SMTPSettings struct {
	// Host of the mail server.
	// +kubebuilder:validation:MinLength=1
	Host string `json:"host"`

	// Port of the mail server; default 587.
	// +kubebuilder:default=587
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// Security of the connection: StartTLS (default), TLS, or None.
	// +kubebuilder:validation:Enum=StartTLS;TLS;None
	// +kubebuilder:default=StartTLS
	// +optional
	Security string `json:"security,omitempty"`

	// From is the sender's address.
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
	From string `json:"from"`
}

// NotificationChannelSpec is where notifications go and how.
// +kubebuilder:validation:XValidation:rule="self.type == 'SMTP' ? has(self.smtp) : has(self.secretRef)",message="an SMTP channel needs smtp; Webhook, Slack and Teams channels need secretRef (a Secret whose key \"url\" is the webhook URL)"
// +kubebuilder:validation:XValidation:rule="self.type == 'SMTP' || !has(self.smtp)",message="smtp is for SMTP channels only"
type NotificationChannelSpec struct {
	// Type of the channel: Webhook, Slack, Teams or SMTP.
	// +kubebuilder:validation:Enum=Webhook;Slack;Teams;SMTP
	Type string `json:"type"`

	// SecretRef names a Secret in kubepim's namespace holding what must not
	// live in Git: the key "url" for Webhook, Slack and Teams; "username"
	// and "password" for SMTP authentication (optional).
	// +optional
	SecretRef *ChannelSecretReference `json:"secretRef,omitempty"`

	// SMTP settings, for type SMTP.
	// +optional
	SMTP *SMTPSettings `json:"smtp,omitempty"`

	// CABundle holds PEM certificates trusted for TLS to this channel, in
	// addition to the system's.
	// +optional
	CABundle string `json:"caBundle,omitempty"`

	// Timeout of one delivery attempt; default 10s.
	// +kubebuilder:default="10s"
	// +optional
	Timeout metav1.Duration `json:"timeout,omitempty"`
}

// NotificationChannelStatus tells whether the channel delivers.
type NotificationChannelStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Pending is the number of notifications waiting for the channel.
	// +optional
	Pending int32 `json:"pending"`

	// Failing is the number of pending notifications whose last attempt
	// failed.
	// +optional
	Failing int32 `json:"failing"`

	// LastDeliveryTime is when the channel last accepted a notification.
	// +optional
	LastDeliveryTime *metav1.Time `json:"lastDeliveryTime,omitempty"`

	// LastError is the newest delivery error.
	// +optional
	LastError string `json:"lastError,omitempty"`

	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NotificationChannel is a place kubepim sends notifications to: a JSON
// webhook, Slack, Microsoft Teams, or a mail server. RoleSettings name
// channels; the URLs and credentials stay in a Secret in kubepim's
// namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pimch,categories=pim
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pending`
// +kubebuilder:printcolumn:name="Failing",type=integer,JSONPath=`.status.failing`
// +kubebuilder:printcolumn:name="Last-Delivery",type=date,JSONPath=`.status.lastDeliveryTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NotificationChannel struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   NotificationChannelSpec   `json:"spec"`
	Status NotificationChannelStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// NotificationChannelList is a list of NotificationChannels.
type NotificationChannelList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NotificationChannel `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NotificationChannel{}, &NotificationChannelList{})
}
