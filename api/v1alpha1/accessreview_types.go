package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Review decisions.
const (
	ReviewDecisionApprove        = "Approve"
	ReviewDecisionDeny           = "Deny"
	ReviewDecisionNone           = "None"
	ReviewDecisionRecommendation = "Recommendation"
)

// AccessReview states.
const (
	ReviewStateScheduled  = "Scheduled"
	ReviewStateInProgress = "InProgress"
	ReviewStateCompleted  = "Completed"
	ReviewStateApplying   = "Applying"
	ReviewStateApplied    = "Applied"
)

// Reviewer types.
const (
	ReviewerTypeNamed = "Named"
	ReviewerTypeSelf  = "Self"
)

// Recurrence types.
const (
	RecurrenceOneTime      = "OneTime"
	RecurrenceWeekly       = "Weekly"
	RecurrenceMonthly      = "Monthly"
	RecurrenceQuarterly    = "Quarterly"
	RecurrenceSemiAnnually = "SemiAnnually"
	RecurrenceAnnually     = "Annually"
)

// Annotations of AccessReviews.
const (
	// AnnotationReviewDecisionPrefix starts the key a reviewer annotates to
	// decide on one item: decision.kubepim.io/<item-id>: "Approve: <reason>".
	AnnotationReviewDecisionPrefix = "decision.kubepim.io/"
	// AnnotationReviewDecisions holds the signed decision records; only
	// kubepim's webhook writes it.
	AnnotationReviewDecisions = "kubepim.io/review-decisions"
)

// AccessReviewScope selects the assignments under review.
type AccessReviewScope struct {
	// RoleRefs are the roles under review.
	// +optional
	// +listType=atomic
	RoleRefs []RoleRef `json:"roleRefs,omitempty"`

	// RoleSettingSelector selects, by label, RoleSettings whose roles are
	// under review too.
	// +optional
	RoleSettingSelector *metav1.LabelSelector `json:"roleSettingSelector,omitempty"`

	// AssignmentTypes under review: Eligible, Active or Both.
	// +kubebuilder:validation:Enum=Eligible;Active;Both
	// +kubebuilder:default=Both
	// +optional
	AssignmentTypes string `json:"assignmentTypes,omitempty"`

	// Namespaces limits the review to assignments in these namespaces
	// (cluster-wide assignments are "" and included when this is empty).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$`
	Namespaces []string `json:"namespaces,omitempty"`
}

// AccessReviewRecurrence repeats a review.
type AccessReviewRecurrence struct {
	// Type is OneTime, Weekly, Monthly, Quarterly, SemiAnnually or Annually.
	// +kubebuilder:validation:Enum=OneTime;Weekly;Monthly;Quarterly;SemiAnnually;Annually
	// +kubebuilder:default=OneTime
	// +optional
	Type string `json:"type,omitempty"`

	// EndDate after which no instance starts.
	// +optional
	EndDate *metav1.Time `json:"endDate,omitempty"`

	// Occurrences is how many instances run at most.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Occurrences *int32 `json:"occurrences,omitempty"`
}

// RecommendationSettings tune the recommendations.
type RecommendationSettings struct {
	// InactiveDays: an assignment not activated within this many days is
	// recommended for removal.
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	// +optional
	InactiveDays int32 `json:"inactiveDays,omitempty"`
}

// AccessReviewSettings say what happens to the decisions.
type AccessReviewSettings struct {
	// AutoApply removes denied assignments when an instance ends.
	// +kubebuilder:default=true
	// +optional
	AutoApply bool `json:"autoApply"`

	// DefaultDecision for items nobody decided: None, Approve, Deny, or
	// Recommendation (the item's recommendation).
	// +kubebuilder:validation:Enum=None;Approve;Deny;Recommendation
	// +kubebuilder:default=None
	// +optional
	DefaultDecision string `json:"defaultDecision,omitempty"`

	// RequireJustification refuses decisions without a reason.
	// +kubebuilder:default=true
	// +optional
	RequireJustification bool `json:"requireJustification"`

	// Recommendation settings.
	// +kubebuilder:default={}
	// +optional
	Recommendation RecommendationSettings `json:"recommendation"`
}

// AccessReviewSpec is a one-off or recurring review of assignments.
// +kubebuilder:validation:XValidation:rule="self.reviewerType == 'Self' || (has(self.reviewers) && size(self.reviewers) > 0)",message="name reviewers, or set reviewerType: Self"
type AccessReviewSpec struct {
	// Scope of the review.
	Scope AccessReviewScope `json:"scope"`

	// ReviewerType is Named (the reviewers below) or Self (each assignee
	// reviews their own access).
	// +kubebuilder:validation:Enum=Named;Self
	// +kubebuilder:default=Named
	// +optional
	ReviewerType string `json:"reviewerType,omitempty"`

	// Reviewers who decide, by name or group. A reviewer never decides on
	// their own access unless reviewerType is Self.
	// +optional
	// +listType=atomic
	Reviewers []Principal `json:"reviewers,omitempty"`

	// FallbackReviewers decide too (for Self reviews: on behalf of
	// assignees who do not).
	// +optional
	// +listType=atomic
	FallbackReviewers []Principal `json:"fallbackReviewers,omitempty"`

	// StartTime of the first instance; absent means when created.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// Duration each instance stays open (at most the recurrence period).
	// +kubebuilder:default="168h"
	// +optional
	Duration metav1.Duration `json:"duration,omitempty"`

	// Recurrence of the review.
	// +kubebuilder:default={}
	// +optional
	Recurrence AccessReviewRecurrence `json:"recurrence"`

	// Settings of the review.
	// +kubebuilder:default={}
	// +optional
	Settings AccessReviewSettings `json:"settings"`
}

// ReviewItem is one assignment under review in the current instance.
type ReviewItem struct {
	// ID identifies the item in decision annotations.
	ID string `json:"id"`
	// Assignment is the RoleAssignment's name.
	Assignment string `json:"assignment"`
	// AssignmentUID is the RoleAssignment's UID.
	AssignmentUID string `json:"assignmentUID"`
	// Subject of the assignment.
	Subject Subject `json:"subject"`
	// RoleRef of the assignment.
	RoleRef RoleRef `json:"roleRef"`
	// Namespace of the assignment ("" cluster-wide).
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Type of the assignment.
	Type string `json:"type"`
	// LastActivation is when the subject last activated the role.
	// +optional
	LastActivation *metav1.Time `json:"lastActivation,omitempty"`
	// Recommendation is Approve or Deny, from the activation history.
	Recommendation string `json:"recommendation"`
	// RecommendationReason explains it.
	// +optional
	RecommendationReason string `json:"recommendationReason,omitempty"`
	// Decision taken: Approve, Deny, or empty while undecided.
	// +optional
	Decision string `json:"decision,omitempty"`
	// Reviewer who decided (as authenticated), or kubepim:default.
	// +optional
	Reviewer string `json:"reviewer,omitempty"`
	// Reason the reviewer gave.
	// +optional
	Reason string `json:"reason,omitempty"`
	// DecidedAt is when.
	// +optional
	DecidedAt *metav1.Time `json:"decidedAt,omitempty"`
	// Applied says the decision was carried out (the assignment removed).
	// +optional
	Applied bool `json:"applied,omitempty"`
}

// AccessReviewStatus is what kubepim observed of an AccessReview.
type AccessReviewStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// State: Scheduled, InProgress, Completed (decisions taken), Applying,
	// Applied (denied assignments removed). A closed instance keeps its
	// state until the next one starts.
	// +optional
	State string `json:"state,omitempty"`
	// Instance is the number of the current (or last) instance, from 1.
	// +optional
	Instance int32 `json:"instance,omitempty"`
	// StartedAt is when the current instance began.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// DueAt is when the current instance closes.
	// +optional
	DueAt *metav1.Time `json:"dueAt,omitempty"`
	// NextStart is when the next instance begins, if any.
	// +optional
	NextStart *metav1.Time `json:"nextStart,omitempty"`
	// Items of the current instance.
	// +optional
	// +listType=map
	// +listMapKey=id
	Items []ReviewItem `json:"items,omitempty"`
	// Reviewed counts decided items; Total counts all.
	// +optional
	Reviewed int32 `json:"reviewed,omitempty"`
	// +optional
	Total int32 `json:"total,omitempty"`
	// Progress is "reviewed/total", for kubectl get.
	// +optional
	Progress string `json:"progress,omitempty"`
	// DecisionsRecorded is the sequence number of the last signed decision
	// kubepim has applied and recorded in the audit trail. A reviewer's
	// earlier decision on an item is kept in the decisions annotation until
	// it is recorded, so every decision reaches the trail, in order, even
	// two within one second.
	// +optional
	DecisionsRecorded int64 `json:"decisionsRecorded,omitempty"`
	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AccessReview is a one-off or recurring review in which reviewers keep or
// remove assignments.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pimrev,categories=pim
// +kubebuilder:printcolumn:name="Reviewers",type=string,JSONPath=`.spec.reviewerType`
// +kubebuilder:printcolumn:name="Recurrence",type=string,JSONPath=`.spec.recurrence.type`
// +kubebuilder:printcolumn:name="Instance",type=integer,JSONPath=`.status.instance`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Reviewed",type=string,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="Due",type=string,JSONPath=`.status.dueAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AccessReview struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AccessReviewSpec   `json:"spec"`
	Status AccessReviewStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AccessReviewList is a list of AccessReviews.
type AccessReviewList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AccessReview `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AccessReview{}, &AccessReviewList{})
}
