// Package policy holds kubepim's policy decisions as pure functions: what
// state an assignment or activation is in at a given instant, when it next
// changes, and what a RoleSetting allows. Nothing here talks to the API
// server or reads a clock, so every rule is table-tested.
package policy

import (
	"time"
)

// Window is when a grant is in force: from Start (inclusive) to End
// (exclusive). A nil End means it never ends.
type Window struct {
	Start time.Time
	End   *time.Time
}

// Phase says where an instant falls relative to a Window.
type Phase int

const (
	// BeforeStart: the window has not opened yet.
	BeforeStart Phase = iota
	// InForce: the window is open.
	InForce
	// Ended: the window has closed.
	Ended
)

// PhaseAt returns the phase of w at now and the next instant the phase
// changes (zero when it never will).
func (w Window) PhaseAt(now time.Time) (Phase, time.Time) {
	switch {
	case now.Before(w.Start):
		return BeforeStart, w.Start
	case w.End != nil && !now.Before(*w.End):
		return Ended, time.Time{}
	case w.End != nil:
		return InForce, *w.End
	default:
		return InForce, time.Time{}
	}
}

// RequeueAfter turns the next deadline into a controller-runtime requeue
// delay: exactly the time left to the deadline, capped so that a missed
// event is healed within maxWait, and never negative. A zero deadline means
// there is none, and only the cap applies.
func RequeueAfter(now, deadline time.Time, maxWait time.Duration) time.Duration {
	if deadline.IsZero() {
		return maxWait
	}
	d := deadline.Sub(now)
	if d > maxWait {
		return maxWait
	}
	if d <= 0 {
		// Due already: come back at once (a zero RequeueAfter would mean
		// "do not requeue").
		return time.Nanosecond
	}
	return d
}

// Earliest returns the earliest non-zero instant, or zero if all are zero.
func Earliest(instants ...time.Time) time.Time {
	var earliest time.Time
	for _, t := range instants {
		if t.IsZero() {
			continue
		}
		if earliest.IsZero() || t.Before(earliest) {
			earliest = t
		}
	}
	return earliest
}
