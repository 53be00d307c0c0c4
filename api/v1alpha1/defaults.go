package v1alpha1

// The switches whose default is true are *bool, so that a client that
// leaves them out (a Go client's zero value included) gets the default the
// API server fills in. These read them, absent meaning the default.

// JustificationRequired reports spec.activation.requireJustification
// (default true).
func (p ActivationPolicy) JustificationRequired() bool { return boolOr(p.RequireJustification, true) }

// PermanentAllowed reports spec.assignment.eligible.allowPermanent (default
// true).
func (p EligibleAssignmentPolicy) PermanentAllowed() bool { return boolOr(p.AllowPermanent, true) }

// PermanentAllowed reports spec.assignment.active.allowPermanent (default
// true).
func (p ActiveAssignmentPolicy) PermanentAllowed() bool { return boolOr(p.AllowPermanent, true) }

// AutoApplies reports spec.settings.autoApply (default true).
func (s AccessReviewSettings) AutoApplies() bool { return boolOr(s.AutoApply, true) }

// JustificationRequired reports spec.settings.requireJustification
// (default true).
func (s AccessReviewSettings) JustificationRequired() bool {
	return boolOr(s.RequireJustification, true)
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
