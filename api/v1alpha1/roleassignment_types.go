package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Assignment types.
const (
	// AssignmentEligible lets the subject activate the role just in time.
	AssignmentEligible = "Eligible"
	// AssignmentActive binds the subject to the role for the whole window.
	AssignmentActive = "Active"
)

// RoleAssignment states.
const (
	AssignmentStateScheduled = "Scheduled"
	AssignmentStateEligible  = "Eligible"
	AssignmentStateActive    = "Active"
	AssignmentStateExpired   = "Expired"
)

// RoleAssignmentSpec says who may hold which role, where, and when.
// +kubebuilder:validation:XValidation:rule="self.roleRef.kind == 'ClusterRole' || (has(self.__namespace__) && size(self.__namespace__) > 0)",message="a Role can only be assigned in a namespace: set spec.namespace"
// +kubebuilder:validation:XValidation:rule="!has(self.startTime) || !has(self.endTime) || timestamp(self.endTime) > timestamp(self.startTime)",message="spec.endTime must be after spec.startTime"
type RoleAssignmentSpec struct {
	// Subject is the User, Group or ServiceAccount the assignment is for.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="subject is immutable; create a new RoleAssignment instead"
	Subject Subject `json:"subject"`

	// RoleRef is the Role or ClusterRole assigned.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="roleRef is immutable; create a new RoleAssignment instead"
	RoleRef RoleRef `json:"roleRef"`

	// Namespace the role applies in; empty means cluster-wide (ClusterRole
	// only). In a namespace kubepim binds with a RoleBinding.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == '' || !format.dns1123Label().validate(self).hasValue()",message="must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit (a DNS-1123 label)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespace is immutable; create a new RoleAssignment instead"
	Namespace string `json:"namespace,omitempty"`

	// Type is Eligible (the subject may activate the role) or Active (the
	// subject holds the role for the whole window).
	// +kubebuilder:validation:Enum=Eligible;Active
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type is immutable; create a new RoleAssignment instead"
	Type string `json:"type"`

	// StartTime is when the assignment takes effect; absent means when it
	// was created.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// EndTime is when the assignment ends; absent means permanent.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`

	// Justification for the assignment.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Justification string `json:"justification,omitempty"`

	// AssignedBy is who created the assignment, stamped by kubepim's
	// admission webhook from the authenticated request; whatever a client
	// sends here is replaced.
	// +optional
	AssignedBy *UserInfo `json:"assignedBy,omitempty"`
}

// RoleAssignmentStatus is what kubepim observed of a RoleAssignment.
type RoleAssignmentStatus struct {
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// State is Scheduled, Eligible, Active or Expired.
	// +optional
	State string `json:"state,omitempty"`

	// StartTime is when the assignment took or takes effect.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// Binding is the RoleBinding or ClusterRoleBinding kubepim keeps for an
	// Active assignment while it is in force.
	// +optional
	Binding *BindingReference `json:"binding,omitempty"`

	// Conditions: Ready, Granted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RoleAssignment makes a subject Eligible for, or Active in, a Role or
// ClusterRole, cluster-wide or in one namespace, from a start time to an end
// time or permanently.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pimra,categories=pim
// +kubebuilder:printcolumn:name="Subject-Kind",type=string,JSONPath=`.spec.subject.kind`,priority=1
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject.name`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.roleRef.name`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.namespace`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Start",type=string,JSONPath=`.status.startTime`,priority=1
// +kubebuilder:printcolumn:name="End",type=string,JSONPath=`.spec.endTime`
// +kubebuilder:printcolumn:name="Assigned-By",type=string,JSONPath=`.spec.assignedBy.username`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RoleAssignment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RoleAssignmentSpec   `json:"spec"`
	Status RoleAssignmentStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// RoleAssignmentList is a list of RoleAssignments.
type RoleAssignmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RoleAssignment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RoleAssignment{}, &RoleAssignmentList{})
}
