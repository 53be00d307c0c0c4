package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Review decisions.
const (
	ReviewDecisionKeep   = "Keep"
	ReviewDecisionRemove = "Remove"
	ReviewDecisionNone   = "None"
)

// AccessReview states.
const (
	ReviewStateScheduled  = "Scheduled"
	ReviewStateInProgress = "InProgress"
	ReviewStateCompleted  = "Completed"
)

// AccessReviewScope selects the assignments under review.
type AccessReviewScope struct {
	// RoleRef limits the review to one role; absent means every role.
	// +optional
	RoleRef *RoleRef `json:"roleRef,omitempty"`

	// Namespace limits the review to assignments in one namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// AssignmentType limits the review to Eligible or Active assignments.
	// +optional
	// +kubebuilder:validation:Enum=Eligible;Active
	AssignmentType string `json:"assignmentType,omitempty"`
}

// AccessReviewSchedule says when reviews run.
type AccessReviewSchedule struct {
	// StartTime of the first review; absent means when created.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// Duration each review stays open.
	// +kubebuilder:default="168h"
	// +optional
	Duration metav1.Duration `json:"duration"`

	// Recurrence repeats the review: Once, Weekly, Monthly, Quarterly,
	// SemiAnnually or Annually.
	// +kubebuilder:validation:Enum=Once;Weekly;Monthly;Quarterly;SemiAnnually;Annually
	// +kubebuilder:default=Once
	// +optional
	Recurrence string `json:"recurrence"`
}

// AccessReviewSpec is a one-off or recurring review of assignments.
// +kubebuilder:validation:XValidation:rule="self.selfReview || (has(self.reviewers) && size(self.reviewers) > 0)",message="name reviewers or set selfReview"
type AccessReviewSpec struct {
	// Scope of assignments under review.
	// +kubebuilder:default={}
	// +optional
	Scope AccessReviewScope `json:"scope"`

	// Reviewers who decide; a reviewer never decides about their own access
	// unless selfReview is set.
	// +optional
	// +listType=atomic
	Reviewers []Principal `json:"reviewers,omitempty"`

	// SelfReview lets each subject review their own assignments.
	// +optional
	SelfReview bool `json:"selfReview,omitempty"`

	// Schedule of the review.
	// +kubebuilder:default={}
	// +optional
	Schedule AccessReviewSchedule `json:"schedule"`

	// DefaultDecision applies to assignments nobody decided on.
	// +kubebuilder:validation:Enum=Keep;Remove;None
	// +kubebuilder:default=None
	// +optional
	DefaultDecision string `json:"defaultDecision"`

	// AutoApply removes assignments decided Remove when the review ends.
	// +optional
	AutoApply bool `json:"autoApply,omitempty"`
}

// ReviewDecision is a reviewer's decision about one assignment.
type ReviewDecision struct {
	// Assignment is the RoleAssignment's name.
	Assignment string `json:"assignment"`
	// Decision is Keep or Remove.
	Decision string `json:"decision"`
	// Reviewer who decided, as authenticated.
	// +optional
	Reviewer *UserInfo `json:"reviewer,omitempty"`
	// Reason given.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Time of the decision.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
	// Applied says whether the decision was carried out.
	// +optional
	Applied bool `json:"applied,omitempty"`
}

// AccessReviewStatus is what kubepim observed of an AccessReview.
type AccessReviewStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// State is Scheduled, InProgress or Completed.
	// +optional
	State string `json:"state,omitempty"`
	// CurrentInstanceStart is when the open review began.
	// +optional
	CurrentInstanceStart *metav1.Time `json:"currentInstanceStart,omitempty"`
	// CurrentInstanceEnd is when the open review closes.
	// +optional
	CurrentInstanceEnd *metav1.Time `json:"currentInstanceEnd,omitempty"`
	// NextStart is when the next review begins.
	// +optional
	NextStart *metav1.Time `json:"nextStart,omitempty"`
	// Decisions of the open (or last) review.
	// +optional
	// +listType=map
	// +listMapKey=assignment
	Decisions []ReviewDecision `json:"decisions,omitempty"`
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
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.scope.roleRef.name`
// +kubebuilder:printcolumn:name="Recurrence",type=string,JSONPath=`.spec.schedule.recurrence`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Ends",type=string,JSONPath=`.status.currentInstanceEnd`
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
