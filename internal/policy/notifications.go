package policy

import (
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// DefaultEmailChannel is the NotificationChannel that mails people when a
// RoleSetting names none.
const DefaultEmailChannel = "email"

// Default expiry reminders, as in Azure PIM: 14 days and 1 day before an
// assignment ends, 15 minutes before an activation ends.
var (
	DefaultAssignmentReminders = []time.Duration{14 * 24 * time.Hour, 24 * time.Hour}
	DefaultActivationReminders = []time.Duration{15 * time.Minute}
)

// criticalEvents need their reader's attention: someone must approve, a
// standing grant bypassed just-in-time activation, a request was refused,
// or access is about to end.
var criticalEvents = []string{pimv1.EventApprovalNeeded, pimv1.EventActiveAssigned, pimv1.EventDenied, pimv1.EventExpiringSoon}

// IsCriticalEvent reports whether notifications of event are critical.
func IsCriticalEvent(event string) bool { return slices.Contains(criticalEvents, event) }

// defaultOn says which audiences hear of each event when a RoleSetting
// says nothing: admins of what changes access, the requester or assignee
// of everything about their own access, approvers of what they must decide.
var defaultOn = map[string]map[string]bool{
	pimv1.EventEligibleAssigned: {pimv1.AudienceAdmins: true, pimv1.AudienceRequester: true},
	pimv1.EventActiveAssigned:   {pimv1.AudienceAdmins: true, pimv1.AudienceRequester: true},
	pimv1.EventApprovalNeeded:   {pimv1.AudienceAdmins: true, pimv1.AudienceRequester: true, pimv1.AudienceApprovers: true},
	pimv1.EventActivated:        {pimv1.AudienceAdmins: true, pimv1.AudienceRequester: true},
	pimv1.EventApproved:         {pimv1.AudienceRequester: true},
	pimv1.EventDenied:           {pimv1.AudienceRequester: true},
	pimv1.EventExpiringSoon:     {pimv1.AudienceRequester: true},
	pimv1.EventExpired:          {pimv1.AudienceAdmins: true, pimv1.AudienceRequester: true},
}

// NotificationEvents lists every event, in the order of the README's table.
var NotificationEvents = []string{
	pimv1.EventEligibleAssigned, pimv1.EventActiveAssigned, pimv1.EventApprovalNeeded, pimv1.EventActivated,
	pimv1.EventApproved, pimv1.EventDenied, pimv1.EventExpiringSoon, pimv1.EventExpired,
}

// NotificationAudiences lists every audience.
var NotificationAudiences = []string{pimv1.AudienceAdmins, pimv1.AudienceRequester, pimv1.AudienceApprovers}

// DefaultNotified reports whether audience hears of event by default.
func DefaultNotified(event, audience string) bool { return defaultOn[event][audience] }

// Notified returns the audiences the policy sends event to: each switch's
// Enabled when set, else the default; CriticalOnly drops events that are
// not critical.
func Notified(p pimv1.NotificationPolicy, event string) []string {
	switches := eventSwitches(p.Events, event)
	var out []string
	for _, audience := range NotificationAudiences {
		s := audienceSwitch(switches, audience)
		on := DefaultNotified(event, audience)
		if s.Enabled != nil {
			on = *s.Enabled
		}
		if on && ptr.Deref(s.CriticalOnly, false) && !IsCriticalEvent(event) {
			on = false
		}
		if on {
			out = append(out, audience)
		}
	}
	return out
}

func eventSwitches(e pimv1.NotificationEvents, event string) pimv1.NotificationSwitches {
	switch event {
	case pimv1.EventEligibleAssigned:
		return e.EligibleAssigned
	case pimv1.EventActiveAssigned:
		return e.ActiveAssigned
	case pimv1.EventApprovalNeeded:
		return e.ApprovalNeeded
	case pimv1.EventActivated:
		return e.Activated
	case pimv1.EventApproved:
		return e.Approved
	case pimv1.EventDenied:
		return e.Denied
	case pimv1.EventExpiringSoon:
		return e.ExpiringSoon
	case pimv1.EventExpired:
		return e.Expired
	}
	return pimv1.NotificationSwitches{}
}

func audienceSwitch(s pimv1.NotificationSwitches, audience string) pimv1.NotificationSwitch {
	switch audience {
	case pimv1.AudienceAdmins:
		return s.Admins
	case pimv1.AudienceRequester:
		return s.Requester
	case pimv1.AudienceApprovers:
		return s.Approvers
	}
	return pimv1.NotificationSwitch{}
}

// EmailChannel is the policy's mail channel.
func EmailChannel(p pimv1.NotificationPolicy) string {
	if p.EmailChannel == "" {
		return DefaultEmailChannel
	}
	return p.EmailChannel
}

// Reminders returns the policy's expiry reminders, or the defaults.
func Reminders(p pimv1.NotificationPolicy) (assignment, activation []time.Duration) {
	assignment, activation = durations(p.Reminders.Assignment), durations(p.Reminders.Activation)
	if assignment == nil {
		assignment = DefaultAssignmentReminders
	}
	if activation == nil {
		activation = DefaultActivationReminders
	}
	return assignment, activation
}

func durations(ds []metav1.Duration) []time.Duration {
	var out []time.Duration
	for _, d := range ds {
		if d.Duration > 0 {
			out = append(out, d.Duration)
		}
	}
	return out
}

// Occurrence is an event that has happened to an object, as its status
// tells it.
type Occurrence struct {
	Event string
	At    time.Time
	// Key tells repeats of one event apart: which reminder of which end.
	Key string
}

// ActivationOccurrences returns the events that have happened to an
// ActivationRequest by now, and when the next reminder falls due (zero when
// none will). A request is only said to need approval while it waits for
// one: an approval request for a decided request helps nobody.
func ActivationOccurrences(ar *pimv1.ActivationRequest, reminders []time.Duration, now time.Time) ([]Occurrence, time.Time) {
	s := ar.Status
	var out []Occurrence
	approvedCond := meta.FindStatusCondition(s.Conditions, pimv1.ConditionApproved)
	if s.State == pimv1.ActivationStatePendingApproval && approvedCond != nil {
		out = append(out, Occurrence{Event: pimv1.EventApprovalNeeded, At: approvedCond.LastTransitionTime.Time})
	}
	if approvedCond != nil && approvedCond.Status == metav1.ConditionTrue {
		out = append(out, Occurrence{Event: pimv1.EventApproved, At: approvedCond.LastTransitionTime.Time})
	}
	if s.State == pimv1.ActivationStateDenied {
		out = append(out, Occurrence{Event: pimv1.EventDenied, At: s.EndedAtOr(now)})
	}
	started := s.ActivatedAt != nil && !s.ActivatedAt.After(now) &&
		slices.Contains([]pimv1.ActivationState{pimv1.ActivationStateActive, pimv1.ActivationStateExpired, pimv1.ActivationStateDeactivated}, s.State)
	if started {
		out = append(out, Occurrence{Event: pimv1.EventActivated, At: s.ActivatedAt.Time})
	}
	// An activation superseded by its extension goes on: no "expired".
	if ready := meta.FindStatusCondition(s.Conditions, pimv1.ConditionReady); s.State == pimv1.ActivationStateExpired && started &&
		ready != nil && ready.Reason == pimv1.ReasonExpired {
		out = append(out, Occurrence{Event: pimv1.EventExpired, At: s.EndedAtOr(now)})
	}
	var next time.Time
	if s.State == pimv1.ActivationStateActive && s.ActivatedAt != nil && s.ExpiresAt != nil {
		var due []Occurrence
		due, next = remindersDue(s.ActivatedAt.Time, s.ExpiresAt.Time, reminders, now)
		out = append(out, due...)
	}
	return out, next
}

// AssignmentOccurrences returns the events that have happened to a
// RoleAssignment by now, and when the next reminder falls due. An
// assignment is announced when it takes effect.
func AssignmentOccurrences(ra *pimv1.RoleAssignment, reminders []time.Duration, now time.Time) ([]Occurrence, time.Time) {
	s := ra.Status
	var out []Occurrence
	inForce := s.State == pimv1.AssignmentStateEligible || s.State == pimv1.AssignmentStateActive
	if (inForce || s.State == pimv1.AssignmentStateExpired) && s.StartTime != nil {
		event := pimv1.EventEligibleAssigned
		if ra.Spec.Type == pimv1.AssignmentActive {
			event = pimv1.EventActiveAssigned
		}
		out = append(out, Occurrence{Event: event, At: s.StartTime.Time})
	}
	if s.State == pimv1.AssignmentStateExpired && ra.Spec.EndTime != nil {
		out = append(out, Occurrence{Event: pimv1.EventExpired, At: ra.Spec.EndTime.Time})
	}
	var next time.Time
	if inForce && s.StartTime != nil && ra.Spec.EndTime != nil {
		var due []Occurrence
		due, next = remindersDue(s.StartTime.Time, ra.Spec.EndTime.Time, reminders, now)
		out = append(out, due...)
	}
	return out, next
}

// remindersDue returns the reminders of an end that are due by now, and
// when the next one is. A reminder that would fall before the start (a
// 14-day reminder of a week-long assignment) is never sent.
func remindersDue(start, end time.Time, reminders []time.Duration, now time.Time) ([]Occurrence, time.Time) {
	var due []Occurrence
	var next time.Time
	if !now.Before(end) {
		return nil, time.Time{}
	}
	for _, before := range reminders {
		at := end.Add(-before)
		if !at.After(start) {
			continue
		}
		if !now.Before(at) {
			due = append(due, Occurrence{Event: pimv1.EventExpiringSoon, At: at,
				Key: strconv.FormatInt(end.Unix(), 10) + "-" + before.String()})
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return due, next
}
