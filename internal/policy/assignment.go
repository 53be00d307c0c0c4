package policy

import (
	"time"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// AssignmentWindow is when an assignment is in force: from spec.startTime
// (or its creation, when absent) to spec.endTime (or forever).
func AssignmentWindow(ra *pimv1.RoleAssignment) Window {
	w := Window{Start: ra.CreationTimestamp.Time}
	if ra.Spec.StartTime != nil {
		w.Start = ra.Spec.StartTime.Time
	}
	if ra.Spec.EndTime != nil {
		end := ra.Spec.EndTime.Time
		w.End = &end
	}
	return w
}

// AssignmentState is the state an assignment is in at now, whether it
// should hold a binding, and the next instant that changes.
func AssignmentState(ra *pimv1.RoleAssignment, now time.Time) (state pimv1.AssignmentState, bound bool, next time.Time) {
	phase, next := AssignmentWindow(ra).PhaseAt(now)
	switch phase {
	case BeforeStart:
		return pimv1.AssignmentStateScheduled, false, next
	case Ended:
		return pimv1.AssignmentStateExpired, false, next
	}
	if ra.Spec.Type == pimv1.AssignmentActive {
		return pimv1.AssignmentStateActive, true, next
	}
	return pimv1.AssignmentStateEligible, false, next
}
