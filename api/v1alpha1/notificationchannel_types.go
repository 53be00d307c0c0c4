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
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`
}

// SMTPSettings says how to reach a mail server.
type SMTPSettings struct {
	// host of the mail server.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host,omitempty"`

	// port of the mail server; default 587.
	// +kubebuilder:default=587
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`

	// security of the connection: StartTLS (default), TLS, or None.
	// +kubebuilder:validation:Enum=StartTLS;TLS;None
	// +kubebuilder:default=StartTLS
	// +optional
	Security string `json:"security,omitempty"`

	// from is the sender's address.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=320
	// +kubebuilder:validation:Pattern=`^[^@\s]+@[^@\s]+$`
	From string `json:"from,omitempty"`
}

// NotificationChannelSpec is where notifications go and how.
// +kubebuilder:validation:XValidation:rule="self.type == 'SMTP' ? has(self.smtp) : has(self.secretRef)",message="an SMTP channel needs smtp; Webhook, Slack and Teams channels need secretRef (a Secret whose key \"url\" is the webhook URL)"
// +kubebuilder:validation:XValidation:rule="self.type == 'SMTP' || !has(self.smtp)",message="smtp is for SMTP channels only"
type NotificationChannelSpec struct {
	// type of the channel: Webhook, Slack, Teams or SMTP.
	// +required
	// +kubebuilder:validation:Enum=Webhook;Slack;Teams;SMTP
	Type string `json:"type,omitempty"`

	// secretRef names a Secret in kubepim's namespace holding what must not
	// live in Git: the key "url" for Webhook, Slack and Teams; "username"
	// and "password" for SMTP authentication (optional).
	// +optional
	SecretRef *ChannelSecretReference `json:"secretRef,omitempty"`

	// smtp settings, for type SMTP.
	// +optional
	SMTP *SMTPSettings `json:"smtp,omitempty"`

	// caBundle holds PEM certificates trusted for TLS to this channel, in
	// addition to the system's.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	CABundle string `json:"caBundle,omitempty"`

	// timeout of one delivery attempt; default 10s.
	// +kubebuilder:default="10s"
	// +optional
	Timeout metav1.Duration `json:"timeout"`
}

// NotificationChannelStatus tells whether the channel delivers.
type NotificationChannelStatus struct {
	// conditions are Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the status describes.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// pending is the number of notifications waiting for the channel.
	// +optional
	Pending int32 `json:"pending"`

	// failing is the number of pending notifications whose last attempt
	// failed.
	// +optional
	Failing int32 `json:"failing"`

	// lastDeliveryTime is when the channel last accepted a notification.
	// +optional
	LastDeliveryTime *metav1.Time `json:"lastDeliveryTime,omitempty"`

	// lastError is the newest delivery error.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	LastError string `json:"lastError,omitempty"`
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
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the NotificationChannel asks for.
	// +required
	Spec NotificationChannelSpec `json:"spec,omitzero"`

	// status is what kubepim observed of the NotificationChannel.
	// +optional
	Status NotificationChannelStatus `json:"status"`
}

// +kubebuilder:object:root=true

// NotificationChannelList is a list of NotificationChannels.
type NotificationChannelList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the NotificationChannels.
	// +required
	Items []NotificationChannel `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NotificationChannel{}, &NotificationChannelList{})
}
