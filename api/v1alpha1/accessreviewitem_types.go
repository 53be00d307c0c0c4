package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations of AccessReviewItems.
const (
	// LabelReviewUID is the UID of the AccessReview an item belongs to.
	LabelReviewUID = "kubepim.io/review-uid"
	// LabelReviewInstance is the number of the instance an item belongs to.
	LabelReviewInstance = "kubepim.io/review-instance"
	// AnnotationDecision is what a reviewer annotates on an item to decide:
	// "Approve: <reason>" or "Deny: <reason>". kubepim's webhook turns it
	// into a signed record in AnnotationReviewDecisions and removes it.
	AnnotationDecision = "kubepim.io/decision"
)

// AccessReviewItemSpec is the snapshot of one assignment under review,
// taken by kubepim when the instance started. Only kubepim writes it, and
// it never changes.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="an item's spec is kubepim's snapshot of the assignment and never changes"
type AccessReviewItemSpec struct {
	// review is the name of the AccessReview.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Review string `json:"review,omitempty"`
	// reviewUID is the UID of the AccessReview.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	ReviewUID string `json:"reviewUID,omitempty"`
	// instance of the review the item belongs to, from 1.
	// +required
	// +kubebuilder:validation:Minimum=1
	Instance int32 `json:"instance,omitempty"`
	// id identifies the assignment in the review (stable across instances).
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
}

// AccessReviewItemStatus is the decision on the item, as kubepim recorded
// it from the reviewers' signed decisions.
type AccessReviewItemStatus struct {
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
	// decision taken: Approve or Deny; absent while undecided.
	// +optional
	// +kubebuilder:validation:Enum=Approve;Deny
	Decision ReviewDecision `json:"decision,omitempty"`
	// reviewer who decided (as authenticated), or kubepim:default.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reviewer string `json:"reviewer,omitempty"`
	// decidedVia is how the reviewer was entitled to decide: "User <name>",
	// "Group <name>" (the first group that made them a reviewer), or
	// "Subject" in a self-review.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	DecidedVia string `json:"decidedVia,omitempty"`
	// reason the reviewer gave.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
	// decidedAt is when.
	// +optional
	DecidedAt *metav1.Time `json:"decidedAt,omitempty"`
	// decisionsRecorded is the sequence number of the last signed decision
	// on this item that kubepim applied and recorded in the audit trail.
	// +optional
	// +kubebuilder:validation:Minimum=1
	DecisionsRecorded int64 `json:"decisionsRecorded,omitempty"`
	// closed says the instance has ended and this item's final decision
	// (the reviewer's or the review's default) is taken.
	// +optional
	Closed *bool `json:"closed,omitempty"`
	// applied says a Deny was carried out (the assignment removed).
	// +optional
	Applied *bool `json:"applied,omitempty"`
}

// AccessReviewItem is one assignment under review in one instance of an
// AccessReview. kubepim creates one per assignment when an instance
// starts, owned by the review; reviewers decide by annotating it
// (kubepim.io/decision: "Approve: <reason>"), and kubepim records the
// decision in its status and the audit trail. Items of an instance are
// deleted when the next instance starts.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pimitem,categories=pim
// +kubebuilder:selectablefield:JSONPath=`.spec.review`
// +kubebuilder:selectablefield:JSONPath=`.spec.instance`
// +kubebuilder:selectablefield:JSONPath=`.spec.subject.name`
// +kubebuilder:selectablefield:JSONPath=`.status.decision`
// +kubebuilder:printcolumn:name="Review",type=string,JSONPath=`.spec.review`
// +kubebuilder:printcolumn:name="Instance",type=integer,JSONPath=`.spec.instance`
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject.name`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.roleRef.name`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.namespace`
// +kubebuilder:printcolumn:name="Recommendation",type=string,JSONPath=`.spec.recommendation`
// +kubebuilder:printcolumn:name="Decision",type=string,JSONPath=`.status.decision`
// +kubebuilder:printcolumn:name="Reviewer",type=string,JSONPath=`.status.reviewer`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AccessReviewItem struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is kubepim's snapshot of the assignment under review.
	// +required
	Spec AccessReviewItemSpec `json:"spec,omitzero"`

	// status is the decision on it.
	// +optional
	Status AccessReviewItemStatus `json:"status"`
}

// +kubebuilder:object:root=true

// AccessReviewItemList is a list of AccessReviewItems.
type AccessReviewItemList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the AccessReviewItems.
	// +required
	Items []AccessReviewItem `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AccessReviewItem{}, &AccessReviewItemList{})
}
