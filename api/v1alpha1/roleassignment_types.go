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

// AssignmentState is where a RoleAssignment stands.
// +kubebuilder:validation:Enum=Scheduled;Eligible;Active;Expired
type AssignmentState string

// RoleAssignment states.
const (
	AssignmentStateScheduled AssignmentState = "Scheduled"
	AssignmentStateEligible  AssignmentState = "Eligible"
	AssignmentStateActive    AssignmentState = "Active"
	AssignmentStateExpired   AssignmentState = "Expired"
)

// RoleAssignmentSpec says who may hold which role, where, and when.
// +kubebuilder:validation:XValidation:rule="self.roleRef.kind == 'ClusterRole' || (has(self.__namespace__) && size(self.__namespace__) > 0)",message="a Role can only be assigned in a namespace: set spec.namespace"
// +kubebuilder:validation:XValidation:rule="!has(self.startTime) || !has(self.endTime) || timestamp(self.endTime) > timestamp(self.startTime)",message="spec.endTime must be after spec.startTime"
type RoleAssignmentSpec struct {
	// subject is the User, Group or ServiceAccount the assignment is for.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="subject is immutable; create a new RoleAssignment instead"
	// +required
	Subject Subject `json:"subject,omitzero"`

	// roleRef is the Role or ClusterRole assigned.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="roleRef is immutable; create a new RoleAssignment instead"
	// +required
	RoleRef RoleRef `json:"roleRef,omitzero"`

	// namespace the role applies in; absent means cluster-wide (ClusterRole
	// only). In a namespace kubepim binds with a RoleBinding.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == '' || !format.dns1123Label().validate(self).hasValue()",message="must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit (a DNS-1123 label)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespace is immutable; create a new RoleAssignment instead"
	Namespace string `json:"namespace,omitempty"`

	// type is Eligible (the subject may activate the role) or Active (the
	// subject holds the role for the whole window).
	// +required
	// +kubebuilder:validation:Enum=Eligible;Active
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="type is immutable; create a new RoleAssignment instead"
	Type string `json:"type,omitempty"`

	// startTime is when the assignment takes effect; absent means when it
	// was created.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// endTime is when the assignment ends; absent means permanent.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`

	// justification for the assignment.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	Justification string `json:"justification,omitempty"`

	// assignedBy is who created the assignment, stamped by kubepim's
	// admission webhook from the authenticated request; whatever a client
	// sends here is replaced.
	// +optional
	AssignedBy *UserInfo `json:"assignedBy,omitempty"`
}

// RoleAssignmentStatus is what kubepim observed of a RoleAssignment.
type RoleAssignmentStatus struct {
	// conditions are Ready and Granted.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation last reconciled.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// state is Scheduled, Eligible, Active or Expired.
	// +optional
	State AssignmentState `json:"state,omitempty"`

	// startTime is when the assignment took or takes effect.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// binding is the RoleBinding or ClusterRoleBinding kubepim keeps for an
	// Active assignment while it is in force.
	// +optional
	Binding *BindingReference `json:"binding,omitempty"`

	// lastUsedAt is, for an Eligible assignment in --access-mode=authorizer,
	// when kubepim's authorizer last allowed a request through an activation
	// that relied on it, to within the rate limit of its status writes (a
	// minute). Written only by kubepim; only moves forward.
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`
}

// RoleAssignment makes a subject Eligible for, or Active in, a Role or
// ClusterRole, cluster-wide or in one namespace, from a start time to an end
// time or permanently.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pimra,categories=pim
// +kubebuilder:selectablefield:JSONPath=`.spec.subject.kind`
// +kubebuilder:selectablefield:JSONPath=`.spec.subject.name`
// +kubebuilder:selectablefield:JSONPath=`.spec.roleRef.name`
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
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the RoleAssignment asks for.
	// +required
	Spec RoleAssignmentSpec `json:"spec,omitzero"`

	// status is what kubepim observed of the RoleAssignment.
	// +optional
	Status RoleAssignmentStatus `json:"status"`
}

// +kubebuilder:object:root=true

// RoleAssignmentList is a list of RoleAssignments.
type RoleAssignmentList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	// items are the RoleAssignments.
	// +required
	Items []RoleAssignment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&RoleAssignment{}, &RoleAssignmentList{})
}
