package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReviewDecision is a decision on an item under review: Approve or Deny;
// as spec.settings.defaultDecision also None or Recommendation. Each field
// that holds one lists the values it accepts.
type ReviewDecision string

// Review decisions.
const (
	ReviewDecisionApprove        ReviewDecision = "Approve"
	ReviewDecisionDeny           ReviewDecision = "Deny"
	ReviewDecisionNone           ReviewDecision = "None"
	ReviewDecisionRecommendation ReviewDecision = "Recommendation"
)

// AccessReviewState is where an AccessReview's current instance stands.
// +kubebuilder:validation:Enum=Scheduled;InProgress;Closing;Completed;Applying;Applied
type AccessReviewState string

// AccessReview states.
const (
	ReviewStateScheduled  AccessReviewState = "Scheduled"
	ReviewStateInProgress AccessReviewState = "InProgress"
	// ReviewStateClosing: the instance has ended; kubepim is taking the
	// default decisions and applying the denials, item by item.
	ReviewStateClosing   AccessReviewState = "Closing"
	ReviewStateCompleted AccessReviewState = "Completed"
	// ReviewStateApplying is what versions before 0.4 showed while
	// closing; kubepim no longer sets it.
	ReviewStateApplying AccessReviewState = "Applying"
	ReviewStateApplied  AccessReviewState = "Applied"
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
	// AnnotationReviewDecisionPrefix started the key with which reviewers
	// decided on an AccessReview before 0.4
	// (decision.kubepim.io/<item-id>); decisions are now annotated on the
	// AccessReviewItem (AnnotationDecision), and kubepim refuses this one
	// with a message saying so.
	AnnotationReviewDecisionPrefix = "decision.kubepim.io/"
	// AnnotationReviewDecisions holds the signed decision records of an
	// AccessReviewItem (before 0.4: of an AccessReview); only kubepim's
	// webhook writes it.
	AnnotationReviewDecisions = "kubepim.io/review-decisions"
)

// AccessReviewScope selects the assignments under review.
type AccessReviewScope struct {
	// roleRefs are the roles under review.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	RoleRefs []RoleRef `json:"roleRefs,omitempty"`

	// roleSettingSelector selects, by label, RoleSettings whose roles are
	// under review too.
	// +optional
	RoleSettingSelector *metav1.LabelSelector `json:"roleSettingSelector,omitempty"`

	// assignmentTypes under review: Eligible, Active or Both.
	// +kubebuilder:validation:Enum=Eligible;Active;Both
	// +kubebuilder:default=Both
	// +optional
	AssignmentTypes string `json:"assignmentTypes,omitempty"`

	// namespaces limits the review to assignments in these namespaces
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
	// type is OneTime, Weekly, Monthly, Quarterly, SemiAnnually or Annually.
	// +kubebuilder:validation:Enum=OneTime;Weekly;Monthly;Quarterly;SemiAnnually;Annually
	// +kubebuilder:default=OneTime
	// +optional
	Type string `json:"type,omitempty"`

	// endDate after which no instance starts.
	// +optional
	EndDate *metav1.Time `json:"endDate,omitempty"`

	// occurrences is how many instances run at most.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Occurrences int32 `json:"occurrences,omitempty"`
}

// RecommendationSettings tune the recommendations.
type RecommendationSettings struct {
	// inactiveDays is a number of days: an assignment not activated within this many days is
	// recommended for removal.
	// +kubebuilder:default=30
	// +kubebuilder:validation:Minimum=1
	// +optional
	InactiveDays int32 `json:"inactiveDays,omitempty"`
}

// AccessReviewSettings say what happens to the decisions.
type AccessReviewSettings struct {
	// autoApply removes denied assignments when an instance ends.
	// +kubebuilder:default=true
	// +optional
	AutoApply *bool `json:"autoApply,omitempty"`

	// defaultDecision for items nobody decided: None, Approve, Deny, or
	// Recommendation (the item's recommendation).
	// +kubebuilder:validation:Enum=None;Approve;Deny;Recommendation
	// +kubebuilder:default=None
	// +optional
	DefaultDecision ReviewDecision `json:"defaultDecision,omitempty"`

	// requireJustification refuses decisions without a reason.
	// +kubebuilder:default=true
	// +optional
	RequireJustification *bool `json:"requireJustification,omitempty"`

	// recommendation settings.
	// +kubebuilder:default={}
	// +optional
	Recommendation RecommendationSettings `json:"recommendation"`
}

// AccessReviewSpec is a one-off or recurring review of assignments.
// +kubebuilder:validation:XValidation:rule="self.reviewerType == 'Self' || (has(self.reviewers) && size(self.reviewers) > 0)",message="name reviewers, or set reviewerType: Self"
type AccessReviewSpec struct {
	// scope of the review.
	// +required
	Scope AccessReviewScope `json:"scope"`

	// reviewerType is Named (the reviewers below) or Self (each assignee
	// reviews their own access).
	// +kubebuilder:validation:Enum=Named;Self
	// +kubebuilder:default=Named
	// +optional
	ReviewerType string `json:"reviewerType,omitempty"`

	// reviewers who decide, by name or group. A reviewer never decides on
	// their own access unless reviewerType is Self.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Reviewers []Principal `json:"reviewers,omitempty"`

	// fallbackReviewers decide too (for Self reviews: on behalf of
	// assignees who do not).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	FallbackReviewers []Principal `json:"fallbackReviewers,omitempty"`

	// startTime of the first instance; absent means when created.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// duration each instance stays open (at most the recurrence period).
	// +kubebuilder:default="168h"
	// +optional
	Duration metav1.Duration `json:"duration"`

	// recurrence of the review.
	// +kubebuilder:default={}
	// +optional
	Recurrence AccessReviewRecurrence `json:"recurrence"`

	// settings of the review.
	// +kubebuilder:default={}
	// +optional
	Settings AccessReviewSettings `json:"settings"`
}

// ReviewItem is one assignment under review in the current instance.
type ReviewItem struct {
	// id identifies the item in decision annotations.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	ID string `json:"id,omitempty"`
	// assignment is the RoleAssignment's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Assignment string `json:"assignment,omitempty"`
	// assignmentUID is the RoleAssignment's UID.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	AssignmentUID string `json:"assignmentUID,omitempty"`
	// subject of the assignment.
	// +required
	Subject Subject `json:"subject,omitzero"`
	// roleRef of the assignment.
	// +required
	RoleRef RoleRef `json:"roleRef,omitzero"`
	// namespace of the assignment; absent for a cluster-wide one.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// type of the assignment: Eligible or Active.
	// +required
	// +kubebuilder:validation:Enum=Eligible;Active
	Type string `json:"type,omitempty"`
	// lastActivation is when the subject last activated the role.
	// +optional
	LastActivation *metav1.Time `json:"lastActivation,omitempty"`
	// recommendation is Approve or Deny, from the activation history.
	// +required
	// +kubebuilder:validation:Enum=Approve;Deny
	Recommendation ReviewDecision `json:"recommendation,omitempty"`
	// recommendationReason explains it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	RecommendationReason string `json:"recommendationReason,omitempty"`
	// decision taken: Approve or Deny; absent while undecided.
	// +optional
	// +kubebuilder:validation:Enum=Approve;Deny
	Decision ReviewDecision `json:"decision,omitempty"`
	// reviewer who decided (as authenticated), or kubepim:default.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reviewer string `json:"reviewer,omitempty"`
	// reason the reviewer gave.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// decidedAt is when.
	// +optional
	DecidedAt *metav1.Time `json:"decidedAt,omitempty"`
	// applied says the decision was carried out (the assignment removed).
	// +optional
	Applied *bool `json:"applied,omitempty"`
}

// AccessReviewStatus is what kubepim observed of an AccessReview.
type AccessReviewStatus struct {
	// conditions are Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// observedGeneration is the generation last reconciled.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// state is Scheduled, InProgress (from when every item exists),
	// Closing (default decisions being taken and denials applied),
	// Completed (decisions taken, not applied) or Applied (denied
	// assignments removed). A closed instance keeps its state until the
	// next one starts.
	// +optional
	State AccessReviewState `json:"state,omitempty"`
	// instance is the number of the current (or last) instance, from 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Instance int32 `json:"instance,omitempty"`
	// startedAt is when the current instance began.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// dueAt is when the current instance closes.
	// +optional
	DueAt *metav1.Time `json:"dueAt,omitempty"`
	// nextStart is when the next instance begins, if any.
	// +optional
	NextStart *metav1.Time `json:"nextStart,omitempty"`
	// items of an instance started before 0.4. Items are now
	// AccessReviewItems of their own (kubectl get accessreviewitems
	// --field-selector spec.review=<name>); kubepim moves the items found
	// here into them, with their decisions, and empties this list.
	// +optional
	// +listType=map
	// +listMapKey=id
	// +kubebuilder:validation:MaxItems=10000
	Items []ReviewItem `json:"items,omitempty"`
	// approved counts items decided Approve (absent: none).
	// +optional
	// +kubebuilder:validation:Minimum=1
	Approved int32 `json:"approved,omitempty"`
	// denied counts items decided Deny (absent: none).
	// +optional
	// +kubebuilder:validation:Minimum=1
	Denied int32 `json:"denied,omitempty"`
	// removed counts assignments removed by this instance (absent: none).
	// +optional
	// +kubebuilder:validation:Minimum=1
	Removed int32 `json:"removed,omitempty"`
	// reviewed counts decided items (absent: none).
	// +optional
	// +kubebuilder:validation:Minimum=1
	Reviewed int32 `json:"reviewed,omitempty"`
	// total counts all items (absent: none).
	// +optional
	// +kubebuilder:validation:Minimum=1
	Total int32 `json:"total,omitempty"`
	// progress is "reviewed/total", for kubectl get.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	Progress string `json:"progress,omitempty"`
	// decisionsRecorded is, for a review started before 0.4, the sequence
	// number of the last signed decision kubepim recorded from the
	// review's own decisions annotation. Decisions are now numbered and
	// recorded per AccessReviewItem.
	// +optional
	// +kubebuilder:validation:Minimum=1
	DecisionsRecorded int64 `json:"decisionsRecorded,omitempty"`
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
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the AccessReview asks for.
	// +required
	Spec AccessReviewSpec `json:"spec,omitzero"`

	// status is what kubepim observed of the AccessReview.
	// +optional
	Status AccessReviewStatus `json:"status"`
}

// +kubebuilder:object:root=true

// AccessReviewList is a list of AccessReviews.
type AccessReviewList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the AccessReviews.
	// +required
	Items []AccessReview `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AccessReview{}, &AccessReviewList{})
}
