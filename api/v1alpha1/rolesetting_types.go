package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoleSettingRoleRef names the role a RoleSetting governs.
// +structType=atomic
// +kubebuilder:validation:XValidation:rule="self.kind == 'Role' ? has(self.__namespace__) && size(self.__namespace__) > 0 : !has(self.__namespace__) || size(self.__namespace__) == 0",message="roleRef.namespace is required for a Role and must be empty for a ClusterRole"
type RoleSettingRoleRef struct {
	// Kind is ClusterRole or Role.
	// +kubebuilder:validation:Enum=ClusterRole;Role
	Kind string `json:"kind"`

	// Name of the role.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Namespace of a Role.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == '' || !format.dns1123Label().validate(self).hasValue()",message="must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit (a DNS-1123 label)"
	Namespace string `json:"namespace,omitempty"`
}

// ApprovalPolicy says whether activating a role needs someone's consent.
// +kubebuilder:validation:XValidation:rule="!has(self.required) || !self.required || (has(self.approvers) && size(self.approvers) > 0)",message="approval.approvers must name at least one User or Group when approval is required"
// +kubebuilder:validation:XValidation:rule="!has(self.required) || !self.required || !has(self.approvers) || !has(self.requiredApprovals) || self.requiredApprovals <= size(self.approvers) || self.approvers.exists(a, a.kind == 'Group')",message="approval.requiredApprovals cannot exceed the number of named approvers"
type ApprovalPolicy struct {
	// Required makes every activation wait for approval.
	// +kubebuilder:default=false
	// +optional
	Required bool `json:"required"`

	// Approvers who may approve or deny. A requester never approves their
	// own request, even when named here.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Approvers []Principal `json:"approvers,omitempty"`

	// RequiredApprovals is how many distinct approvers must approve.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	// +optional
	RequiredApprovals int32 `json:"requiredApprovals"`

	// Timeout after which an unanswered request is denied.
	// +kubebuilder:default="24h"
	// +optional
	Timeout metav1.Duration `json:"timeout"`
}

// ActivationPolicy is what activating the role requires.
// +kubebuilder:validation:XValidation:rule="!has(self.maxDuration) || (duration(self.maxDuration) > duration('0s') && duration(self.maxDuration) <= duration('24h'))",message="activation.maxDuration must be more than 0s and at most 24h"
type ActivationPolicy struct {
	// MaxDuration is the longest an activation may last.
	// +kubebuilder:default="8h"
	// +optional
	MaxDuration metav1.Duration `json:"maxDuration"`

	// RequireJustification refuses activations without a justification.
	// +kubebuilder:default=true
	// +optional
	RequireJustification bool `json:"requireJustification"`

	// RequireTicket refuses activations without a ticket system and number.
	// +kubebuilder:default=false
	// +optional
	RequireTicket bool `json:"requireTicket"`

	// RequireMFA refuses activations whose requester has not proven a
	// second factor (an MFA claim from the identity provider, or a TOTP
	// code).
	// +kubebuilder:default=false
	// +optional
	RequireMFA bool `json:"requireMFA"`

	// Approval of activations.
	// +kubebuilder:default={}
	// +optional
	Approval ApprovalPolicy `json:"approval"`
}

// EligibleAssignmentPolicy bounds eligible assignments.
type EligibleAssignmentPolicy struct {
	// AllowPermanent allows eligible assignments with no endTime.
	// +kubebuilder:default=true
	// +optional
	AllowPermanent bool `json:"allowPermanent"`

	// MaxDuration is the longest an eligible assignment may last.
	// +optional
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`
}

// ActiveAssignmentPolicy bounds active (standing) assignments.
type ActiveAssignmentPolicy struct {
	// AllowPermanent allows active assignments with no endTime.
	// +kubebuilder:default=true
	// +optional
	AllowPermanent bool `json:"allowPermanent"`

	// MaxDuration is the longest an active assignment may last.
	// +optional
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`

	// RequireJustification refuses active assignments without one.
	// +kubebuilder:default=false
	// +optional
	RequireJustification bool `json:"requireJustification"`

	// RequireMFA refuses active assignments made without MFA.
	// +kubebuilder:default=false
	// +optional
	RequireMFA bool `json:"requireMFA"`
}

// AssignmentPolicy bounds assignments of the role.
type AssignmentPolicy struct {
	// Eligible assignments.
	// +kubebuilder:default={}
	// +optional
	Eligible EligibleAssignmentPolicy `json:"eligible"`

	// Active assignments.
	// +kubebuilder:default={}
	// +optional
	Active ActiveAssignmentPolicy `json:"active"`
}

// NotificationPolicy says who hears about what happens to the role, after
// Azure PIM's notification settings: each event × each audience can be
// switched on or off, or limited to critical notifications. People
// (requesters, assignees, approvers) are mailed through EmailChannel at the
// addresses the user directory gives; admins get the addresses and channels
// listed here. Only names of NotificationChannels appear here, never URLs
// or credentials: RoleSettings live in Git.
type NotificationPolicy struct {
	// EmailChannel names the SMTP NotificationChannel that sends mail.
	// Default "email". When no such channel exists, nobody is mailed.
	// +optional
	EmailChannel string `json:"emailChannel,omitempty"`

	// Admins are the platform team: extra email addresses and chat channels
	// that hear about the role.
	// +optional
	Admins NotificationAudience `json:"admins,omitempty"`

	// Approvers may also be reached at extra addresses (a team mailbox) and
	// on chat channels (a team's approvals channel), besides the approvers'
	// own addresses.
	// +optional
	Approvers NotificationAudience `json:"approvers,omitempty"`

	// Events switches each event on or off for each audience. What is on
	// when nothing is said is in the README's notification table.
	// +optional
	Events NotificationEvents `json:"events,omitempty"`

	// Reminders says when expiringSoon is sent.
	// +optional
	Reminders ExpiryReminders `json:"reminders,omitempty"`
}

// NotificationAudience lists where an audience is reached besides the user
// directory.
type NotificationAudience struct {
	// Emails are extra addresses.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:Pattern=`^[^@\s]+@[^@\s]+$`
	Emails []string `json:"emails,omitempty"`

	// Channels are names of NotificationChannels (Webhook, Slack or Teams).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=20
	Channels []string `json:"channels,omitempty"`
}

// NotificationEvents holds one switch per event.
type NotificationEvents struct {
	// EligibleAssigned: a subject became eligible for the role.
	// +optional
	EligibleAssigned NotificationSwitches `json:"eligibleAssigned,omitempty"`
	// ActiveAssigned: a subject was given the role outright.
	// +optional
	ActiveAssigned NotificationSwitches `json:"activeAssigned,omitempty"`
	// ApprovalNeeded: an activation waits for approval.
	// +optional
	ApprovalNeeded NotificationSwitches `json:"approvalNeeded,omitempty"`
	// Activated: an activation began.
	// +optional
	Activated NotificationSwitches `json:"activated,omitempty"`
	// Approved: an activation was approved.
	// +optional
	Approved NotificationSwitches `json:"approved,omitempty"`
	// Denied: an activation was denied.
	// +optional
	Denied NotificationSwitches `json:"denied,omitempty"`
	// ExpiringSoon: an assignment or activation ends soon (see reminders).
	// +optional
	ExpiringSoon NotificationSwitches `json:"expiringSoon,omitempty"`
	// Expired: an assignment or activation ended at its end time.
	// +optional
	Expired NotificationSwitches `json:"expired,omitempty"`
}

// NotificationSwitches are the three audiences of one event.
type NotificationSwitches struct {
	// Admins: the addresses and channels of spec.notifications.admins.
	// +optional
	Admins NotificationSwitch `json:"admins,omitempty"`
	// Requester: the requester of an activation, or the assignee of an
	// assignment (a User, or each address a Group maps to).
	// +optional
	Requester NotificationSwitch `json:"requester,omitempty"`
	// Approvers: the role's approvers.
	// +optional
	Approvers NotificationSwitch `json:"approvers,omitempty"`
}

// NotificationSwitch turns one audience of one event on or off.
type NotificationSwitch struct {
	// Enabled turns the notification on or off; unset means the default.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// CriticalOnly sends only critical notifications (approvalNeeded,
	// activeAssigned, denied and expiringSoon are critical).
	// +optional
	CriticalOnly bool `json:"criticalOnly,omitempty"`
}

// ExpiryReminders are how long before the end expiringSoon is sent.
type ExpiryReminders struct {
	// Assignment reminders before a RoleAssignment's endTime; default 336h
	// (14 days) and 24h.
	// +optional
	// +kubebuilder:validation:MaxItems=5
	Assignment []metav1.Duration `json:"assignment,omitempty"`
	// Activation reminders before an activation's expiresAt; default 15m.
	// +optional
	// +kubebuilder:validation:MaxItems=5
	Activation []metav1.Duration `json:"activation,omitempty"`
}

// RoleSettingSpec is the policy of one role.
type RoleSettingSpec struct {
	// RoleRef is the role this policy governs.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="roleRef is immutable; create a new RoleSetting instead"
	RoleRef RoleSettingRoleRef `json:"roleRef"`

	// Activation is what activating the role requires.
	// +kubebuilder:default={}
	// +optional
	Activation ActivationPolicy `json:"activation"`

	// Assignment bounds eligible and active assignments of the role.
	// +kubebuilder:default={}
	// +optional
	Assignment AssignmentPolicy `json:"assignment"`

	// Notifications about the role.
	// +optional
	Notifications NotificationPolicy `json:"notifications,omitempty"`

	// Alerts tunes the role's security alerts.
	// +optional
	Alerts AlertPolicy `json:"alerts,omitempty"`
}

// Alert types, after Azure PIM's security alerts.
const (
	AlertAssignedOutsidePIM     = "AssignedOutsidePIM"
	AlertRoleNotRequiringMFA    = "RoleNotRequiringMFA"
	AlertTooManyPermanentActive = "TooManyPermanentActive"
	AlertUnusedEligibility      = "UnusedEligibility"
	AlertFrequentActivation     = "FrequentActivation"
)

// AlertPolicy tunes the security alerts of a role.
type AlertPolicy struct {
	// RemoveOutsideBindings (enforce mode) deletes RoleBindings and
	// ClusterRoleBindings of the role that kubepim does not manage, after
	// recording each in the audit trail.
	// +optional
	RemoveOutsideBindings bool `json:"removeOutsideBindings,omitempty"`

	// MaxPermanentActive is how many permanent active assignments of the
	// role are tolerated (default 2).
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxPermanentActive *int32 `json:"maxPermanentActive,omitempty"`

	// UnusedEligibilityDays raises an alert for an eligible assignment not
	// activated for this many days (default 90).
	// +optional
	// +kubebuilder:validation:Minimum=1
	UnusedEligibilityDays *int32 `json:"unusedEligibilityDays,omitempty"`

	// FrequentActivations raises an alert when one user activates the role
	// more than this many times within FrequentActivationWindow (default 5).
	// +optional
	// +kubebuilder:validation:Minimum=1
	FrequentActivations *int32 `json:"frequentActivations,omitempty"`

	// FrequentActivationWindow is the window for FrequentActivations
	// (default 24h).
	// +optional
	FrequentActivationWindow *metav1.Duration `json:"frequentActivationWindow,omitempty"`
}

// Alert is a security alert raised about a role.
type Alert struct {
	// Type of the alert.
	Type string `json:"type"`
	// Message says what is wrong and what to do.
	Message string `json:"message"`
	// Since when the alert has been raised.
	Since metav1.Time `json:"since"`
}

// RoleSettingStatus is what kubepim observed of a RoleSetting.
type RoleSettingStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Conflict, Alerting.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Alerts raised about the role now.
	// +optional
	// +listType=map
	// +listMapKey=type
	Alerts []Alert `json:"alerts,omitempty"`

	// AlertSummary lists the raised alert types, for kubectl get.
	// +optional
	AlertSummary string `json:"alertSummary,omitempty"`
}

// RoleSetting is the policy of one Role or ClusterRole: how long an
// activation may last, what it requires, who approves, how long assignments
// may last and who is notified. A role with no RoleSetting gets the defaults.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pimrs,categories=pim
// +kubebuilder:printcolumn:name="Role-Kind",type=string,JSONPath=`.spec.roleRef.kind`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.roleRef.name`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.roleRef.namespace`
// +kubebuilder:printcolumn:name="Max",type=string,JSONPath=`.spec.activation.maxDuration`
// +kubebuilder:printcolumn:name="Approval",type=boolean,JSONPath=`.spec.activation.approval.required`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Alerts",type=string,JSONPath=`.status.alertSummary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RoleSetting struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RoleSettingSpec   `json:"spec"`
	Status RoleSettingStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// RoleSettingList is a list of RoleSettings.
type RoleSettingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RoleSetting `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RoleSetting{}, &RoleSettingList{})
}
