package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoleSettingRoleRef names the role a RoleSetting governs.
// +structType=atomic
// +kubebuilder:validation:XValidation:rule="self.kind == 'Role' ? has(self.__namespace__) && size(self.__namespace__) > 0 : !has(self.__namespace__) || size(self.__namespace__) == 0",message="roleRef.namespace is required for a Role and must be empty for a ClusterRole"
type RoleSettingRoleRef struct {
	// kind is ClusterRole or Role.
	// +required
	// +kubebuilder:validation:Enum=ClusterRole;Role
	Kind string `json:"kind,omitempty"`

	// name of the role.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// namespace of a Role.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == '' || !format.dns1123Label().validate(self).hasValue()",message="must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit (a DNS-1123 label)"
	Namespace string `json:"namespace,omitempty"`
}

// ApprovalPolicy says whether activating a role needs someone's consent.
// +kubebuilder:validation:XValidation:rule="!has(self.required) || !self.required || (has(self.approvers) && size(self.approvers) > 0)",message="approval.approvers must name at least one User or Group when approval is required"
// +kubebuilder:validation:XValidation:rule="!has(self.required) || !self.required || !has(self.approvers) || !has(self.requiredApprovals) || self.requiredApprovals <= size(self.approvers) || self.approvers.exists(a, a.kind == 'Group')",message="approval.requiredApprovals cannot exceed the number of named approvers"
type ApprovalPolicy struct {
	// required makes every activation wait for approval.
	// +kubebuilder:default=false
	// +optional
	Required bool `json:"required"`

	// approvers who may approve or deny. A requester never approves their
	// own request, even when named here.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Approvers []Principal `json:"approvers,omitempty"`

	// requiredApprovals is how many distinct approvers must approve.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	// +optional
	RequiredApprovals int32 `json:"requiredApprovals,omitempty"`

	// timeout after which an unanswered request is denied.
	// +kubebuilder:default="24h"
	// +optional
	Timeout metav1.Duration `json:"timeout"`
}

// ActivationPolicy is what activating the role requires.
// +kubebuilder:validation:XValidation:rule="!has(self.maxDuration) || (duration(self.maxDuration) > duration('0s') && duration(self.maxDuration) <= duration('24h'))",message="activation.maxDuration must be more than 0s and at most 24h"
// +kubebuilder:validation:XValidation:rule="!has(self.idleTimeout) || (duration(self.idleTimeout) >= duration('5m') && duration(self.idleTimeout) <= duration('24h'))",message="activation.idleTimeout must be at least 5m and at most 24h"
type ActivationPolicy struct {
	// maxDuration is the longest an activation may last.
	// +kubebuilder:default="8h"
	// +optional
	MaxDuration metav1.Duration `json:"maxDuration"`

	// requireJustification refuses activations without a justification.
	// Absent means true (JustificationRequired).
	// +kubebuilder:default=true
	// +optional
	RequireJustification *bool `json:"requireJustification,omitempty"`

	// requireTicket refuses activations without a ticket system and number.
	// +kubebuilder:default=false
	// +optional
	RequireTicket bool `json:"requireTicket"`

	// requireMFA refuses activations whose requester has not proven a
	// second factor (an MFA claim from the identity provider, or a TOTP
	// code).
	// +kubebuilder:default=false
	// +optional
	RequireMFA bool `json:"requireMFA"`

	// approval of activations.
	// +kubebuilder:default={}
	// +optional
	Approval ApprovalPolicy `json:"approval"`

	// idleTimeout ends an Active activation (Deactivated, reason
	// IdleTimeout) that kubepim's authorizer has not seen used for this
	// long: since its last recorded use (status.lastUsedAt, kept to within a
	// minute), or since it began when never used. At least 5m, at most 24h.
	// Only in --access-mode=authorizer; ignored in bindings mode, where uses
	// are not seen.
	// +optional
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`
}

// EligibleAssignmentPolicy bounds eligible assignments.
type EligibleAssignmentPolicy struct {
	// allowPermanent allows eligible assignments with no endTime. Absent
	// means true (PermanentAllowed).
	// +kubebuilder:default=true
	// +optional
	AllowPermanent *bool `json:"allowPermanent,omitempty"`

	// maxDuration is the longest an eligible assignment may last.
	// +optional
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`
}

// ActiveAssignmentPolicy bounds active (standing) assignments.
type ActiveAssignmentPolicy struct {
	// allowPermanent allows active assignments with no endTime. Absent
	// means true (PermanentAllowed).
	// +kubebuilder:default=true
	// +optional
	AllowPermanent *bool `json:"allowPermanent,omitempty"`

	// maxDuration is the longest an active assignment may last.
	// +optional
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`

	// requireJustification refuses active assignments without one.
	// +kubebuilder:default=false
	// +optional
	RequireJustification bool `json:"requireJustification"`

	// requireMFA refuses active assignments made without MFA.
	// +kubebuilder:default=false
	// +optional
	RequireMFA bool `json:"requireMFA"`
}

// AssignmentPolicy bounds assignments of the role.
type AssignmentPolicy struct {
	// eligible assignments.
	// +kubebuilder:default={}
	// +optional
	Eligible EligibleAssignmentPolicy `json:"eligible"`

	// active assignments.
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
	// emailChannel names the SMTP NotificationChannel that sends mail.
	// Default "email". When no such channel exists, nobody is mailed.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	EmailChannel string `json:"emailChannel,omitempty"`

	// admins are the platform team: extra email addresses and chat channels
	// that hear about the role.
	// +optional
	Admins NotificationAudience `json:"admins"`

	// approvers may also be reached at extra addresses (a team mailbox) and
	// on chat channels (a team's approvals channel), besides the approvers'
	// own addresses.
	// +optional
	Approvers NotificationAudience `json:"approvers"`

	// events switches each event on or off for each audience. What is on
	// when nothing is said is in the README's notification table.
	// +optional
	Events NotificationEvents `json:"events"`

	// reminders says when expiringSoon is sent.
	// +optional
	Reminders ExpiryReminders `json:"reminders"`
}

// NotificationAudience lists where an audience is reached besides the user
// directory.
type NotificationAudience struct {
	// emails are extra addresses.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=50
	// +kubebuilder:validation:items:MaxLength=320
	// +kubebuilder:validation:items:Pattern=`^[^@\s]+@[^@\s]+$`
	Emails []string `json:"emails,omitempty"`

	// channels are names of NotificationChannels (Webhook, Slack or Teams).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=253
	Channels []string `json:"channels,omitempty"`
}

// NotificationEvents holds one switch per event.
type NotificationEvents struct {
	// eligibleAssigned applies when a subject became eligible for the role.
	// +optional
	EligibleAssigned NotificationSwitches `json:"eligibleAssigned"`
	// activeAssigned applies when a subject was given the role outright.
	// +optional
	ActiveAssigned NotificationSwitches `json:"activeAssigned"`
	// approvalNeeded applies when an activation waits for approval.
	// +optional
	ApprovalNeeded NotificationSwitches `json:"approvalNeeded"`
	// activated applies when an activation began.
	// +optional
	Activated NotificationSwitches `json:"activated"`
	// approved applies when an activation was approved.
	// +optional
	Approved NotificationSwitches `json:"approved"`
	// denied applies when an activation was denied.
	// +optional
	Denied NotificationSwitches `json:"denied"`
	// expiringSoon applies when an assignment or activation ends soon (see reminders).
	// +optional
	ExpiringSoon NotificationSwitches `json:"expiringSoon"`
	// expired applies when an assignment or activation ended at its end time.
	// +optional
	Expired NotificationSwitches `json:"expired"`
}

// NotificationSwitches are the three audiences of one event.
type NotificationSwitches struct {
	// admins are the addresses and channels of spec.notifications.admins.
	// +optional
	Admins NotificationSwitch `json:"admins"`
	// requester is the requester of an activation, or the assignee of an
	// assignment (a User, or each address a Group maps to).
	// +optional
	Requester NotificationSwitch `json:"requester"`
	// approvers are the role's approvers.
	// +optional
	Approvers NotificationSwitch `json:"approvers"`
}

// NotificationSwitch turns one audience of one event on or off.
type NotificationSwitch struct {
	// enabled turns the notification on or off; unset means the default.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// criticalOnly sends only critical notifications (approvalNeeded,
	// activeAssigned, denied and expiringSoon are critical).
	// +optional
	CriticalOnly *bool `json:"criticalOnly,omitempty"`
}

// ExpiryReminders are how long before the end expiringSoon is sent.
type ExpiryReminders struct {
	// assignment reminders before a RoleAssignment's endTime; default 336h
	// (14 days) and 24h.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	Assignment []metav1.Duration `json:"assignment,omitempty"`
	// activation reminders before an activation's expiresAt; default 15m.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=5
	Activation []metav1.Duration `json:"activation,omitempty"`
}

// RoleSettingSpec is the policy of one role.
type RoleSettingSpec struct {
	// roleRef is the role this policy governs.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="roleRef is immutable; create a new RoleSetting instead"
	RoleRef RoleSettingRoleRef `json:"roleRef,omitzero"`

	// activation is what activating the role requires.
	// +kubebuilder:default={}
	// +optional
	Activation ActivationPolicy `json:"activation"`

	// assignment bounds eligible and active assignments of the role.
	// +kubebuilder:default={}
	// +optional
	Assignment AssignmentPolicy `json:"assignment"`

	// notifications about the role.
	// +optional
	Notifications NotificationPolicy `json:"notifications"`

	// alerts tunes the role's security alerts.
	// +optional
	Alerts AlertPolicy `json:"alerts"`
}

// Alert types, after Azure PIM's security alerts. Alert.Type lists them
// in its Enum marker: keep the two in step.
const (
	AlertAssignedOutsidePIM     = "AssignedOutsidePIM"
	AlertRoleNotRequiringMFA    = "RoleNotRequiringMFA"
	AlertTooManyPermanentActive = "TooManyPermanentActive"
	AlertUnusedEligibility      = "UnusedEligibility"
	AlertFrequentActivation     = "FrequentActivation"
)

// AlertPolicy tunes the security alerts of a role.
type AlertPolicy struct {
	// removeOutsideBindings (enforce mode) deletes RoleBindings and
	// ClusterRoleBindings of the role that kubepim does not manage, after
	// recording each in the audit trail.
	// +optional
	RemoveOutsideBindings *bool `json:"removeOutsideBindings,omitempty"`

	// maxPermanentActive is how many permanent active assignments of the
	// role are tolerated (default 2).
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxPermanentActive *int32 `json:"maxPermanentActive,omitempty"`

	// unusedEligibilityDays raises an alert for an eligible assignment not
	// activated for this many days (default 90).
	// +optional
	// +kubebuilder:validation:Minimum=1
	UnusedEligibilityDays int32 `json:"unusedEligibilityDays,omitempty"`

	// frequentActivations raises an alert when one user activates the role
	// more than this many times within FrequentActivationWindow (default 5).
	// +optional
	// +kubebuilder:validation:Minimum=1
	FrequentActivations int32 `json:"frequentActivations,omitempty"`

	// frequentActivationWindow is the window for FrequentActivations
	// (default 24h).
	// +optional
	FrequentActivationWindow *metav1.Duration `json:"frequentActivationWindow,omitempty"`
}

// Alert is a security alert raised about a role.
type Alert struct {
	// type of the alert.
	// +required
	// +kubebuilder:validation:Enum=AssignedOutsidePIM;RoleNotRequiringMFA;TooManyPermanentActive;UnusedEligibility;FrequentActivation
	Type string `json:"type,omitempty"`
	// message says what is wrong and what to do.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32768
	Message string `json:"message,omitempty"`
	// since when the alert has been raised.
	// +required
	Since metav1.Time `json:"since,omitzero"`
}

// RoleSettingStatus is what kubepim observed of a RoleSetting.
type RoleSettingStatus struct {
	// conditions are Ready, Conflict and Alerting.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation last reconciled.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// alerts raised about the role now.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Alerts []Alert `json:"alerts,omitempty"`

	// alertSummary lists the raised alert types, for kubectl get.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
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
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the RoleSetting asks for.
	// +required
	Spec RoleSettingSpec `json:"spec,omitzero"`

	// status is what kubepim observed of the RoleSetting.
	// +optional
	Status RoleSettingStatus `json:"status"`
}

// +kubebuilder:object:root=true

// RoleSettingList is a list of RoleSettings.
type RoleSettingList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the RoleSettings.
	// +required
	Items []RoleSetting `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RoleSetting{}, &RoleSettingList{})
}
