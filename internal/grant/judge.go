package grant

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// Verdict is what kubepim makes of a binding that grants a governed role.
type Verdict int

const (
	// Outside: no live kubepim owner accounts for the binding. It raises
	// AssignedOutsidePIM, and enforce mode removes it.
	Outside Verdict = iota
	// Ours: exactly the binding a live owner was granted, and its status
	// says so (same UID).
	Ours
	// Unsettled: the binding a live owner is being granted (the pass that
	// created it has not stored its status yet), or one it was granted that
	// has drifted (its controller repairs it). The owner's controller
	// settles it within moments; the caller looks again after a grace
	// period and counts it as Outside if it is still unsettled then.
	Unsettled
)

func (v Verdict) String() string {
	switch v {
	case Ours:
		return "Ours"
	case Unsettled:
		return "Unsettled"
	}
	return "Outside"
}

// Claim is what the kubepim object a binding's labels name says about the
// binding it should have. The caller builds it from that object's spec and
// status (kubepim's controllers and admission decide those, not the
// binding's author); it is nil when the labels name no existing object.
type Claim struct {
	// Owner is the object found: its kind, name and UID.
	Owner Owner
	// Want is the binding the owner's spec asks for (Desired, with
	// Name(prefix, owner name)); nil when the owner may hold none (an
	// ended activation, an eligible or expired assignment).
	Want client.Object
	// Granted is the owner's status.binding: the binding kubepim's
	// controller created or adopted for it, with its UID.
	Granted *pimv1.BindingReference
}

// Judge decides whether obj, a RoleBinding or ClusterRoleBinding, is
// kubepim's. Its labels (managed-by, owner kind, owner UID) and the
// owner-name annotation are written by whoever creates the binding, so
// they only say which owner to ask; they never decide on their own. The
// binding is kubepim's only if it is, in kind, namespace, name, role and
// subjects, the binding that owner's spec asks for, and the owner's
// status (written by kubepim's controller only) names this very binding
// by UID. Anyone who can create bindings can copy labels and UIDs; what
// they cannot do is create a second object under the deterministic name
// the real binding holds, or write the owner's status.
func Judge(obj client.Object, claim *Claim) Verdict {
	labels := obj.GetLabels()
	if claim == nil || claim.Want == nil || claim.Owner.UID == "" ||
		labels[pimv1.LabelManagedBy] != pimv1.ManagedByValue ||
		labels[pimv1.LabelOwnerKind] != claim.Owner.Kind ||
		labels[pimv1.LabelOwnerUID] != string(claim.Owner.UID) {
		return Outside
	}
	want := claim.Want
	if !SameBinding(obj, want) || !equality.Semantic.DeepEqual(roleRefOf(obj), roleRefOf(want)) {
		return Outside
	}
	g := claim.Granted
	granted := g != nil && obj.GetUID() != "" && g.UID == string(obj.GetUID()) &&
		g.Kind == Reference(obj).Kind && g.Namespace == obj.GetNamespace() && g.Name == obj.GetName()
	exact := equality.Semantic.DeepEqual(subjectsOf(obj), subjectsOf(want))
	switch {
	case granted && exact:
		return Ours
	case granted, exact:
		// Granted but drifted (repaired by the owner's controller), or
		// exactly what the owner is about to record as granted.
		return Unsettled
	}
	return Outside
}
