package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// FinalActivationStates are the states an ActivationRequest never leaves.
var FinalActivationStates = []pimv1.ActivationState{
	pimv1.ActivationStateExpired, pimv1.ActivationStateDenied, pimv1.ActivationStateCancelled,
	pimv1.ActivationStateDeactivated, pimv1.ActivationStateFailed, pimv1.ActivationStateTimedOut,
}

// IsFinal reports whether an ActivationRequest state is final.
func IsFinal(state pimv1.ActivationState) bool { return slices.Contains(FinalActivationStates, state) }

// RoleDescription names a role grant in messages: "ClusterRole admin in
// namespace prod" or "ClusterRole admin cluster-wide".
func RoleDescription(roleRef pimv1.RoleRef, namespace string) string {
	if namespace == "" {
		return fmt.Sprintf("%s %s cluster-wide", roleRef.Kind, roleRef.Name)
	}
	return fmt.Sprintf("%s %s in namespace %s", roleRef.Kind, roleRef.Name, namespace)
}

// SubjectMatches reports whether an assignment's subject is the user: by
// name, by one of the user's groups, or as the user a ServiceAccount
// authenticates as.
func SubjectMatches(s pimv1.Subject, user pimv1.UserInfo) bool {
	switch s.Kind {
	case pimv1.SubjectKindUser:
		return s.Name == user.Username
	case pimv1.SubjectKindGroup:
		return slices.Contains(user.Groups, s.Name)
	case pimv1.SubjectKindServiceAccount:
		return user.Username == "system:serviceaccount:"+s.Namespace+":"+s.Name
	}
	return false
}

// Covers reports whether an assignment of roleRef in assignedNamespace lets
// its subject activate roleRef in namespace: a cluster-wide assignment covers
// every namespace; a namespaced one covers its namespace only.
func Covers(ra *pimv1.RoleAssignment, roleRef pimv1.RoleRef, namespace string) bool {
	return ra.Spec.RoleRef == roleRef && (ra.Spec.Namespace == "" || ra.Spec.Namespace == namespace)
}

// EligibilityFor returns the eligible assignment that lets user hold
// roleRef in namespace for the whole of want, or an error that says why
// none does. Among several it picks the one that lasts longest.
func EligibilityFor(user pimv1.UserInfo, roleRef pimv1.RoleRef, namespace string, want Window, now time.Time, assignments []pimv1.RoleAssignment) (*pimv1.RoleAssignment, error) {
	var best *pimv1.RoleAssignment
	var endsTooSoon *pimv1.RoleAssignment
	for i := range assignments {
		ra := &assignments[i]
		if ra.Spec.Type != pimv1.AssignmentEligible || !ra.DeletionTimestamp.IsZero() ||
			!SubjectMatches(ra.Spec.Subject, user) || !Covers(ra, roleRef, namespace) {
			continue
		}
		w := AssignmentWindow(ra)
		if phase, _ := w.PhaseAt(now); phase != InForce {
			continue
		}
		if w.Start.After(want.Start) {
			continue
		}
		if w.End != nil && want.End != nil && w.End.Before(*want.End) {
			if endsTooSoon == nil || endsTooSoon.Spec.EndTime.Before(ra.Spec.EndTime) {
				endsTooSoon = ra
			}
			continue
		}
		if best == nil || (best.Spec.EndTime != nil && (ra.Spec.EndTime == nil || best.Spec.EndTime.Before(ra.Spec.EndTime))) {
			best = ra
		}
	}
	switch {
	case best != nil:
		return best, nil
	case endsTooSoon != nil && !endsTooSoon.Spec.EndTime.After(want.Start):
		return nil, fmt.Errorf("your eligibility for %s (RoleAssignment %s) ends at %s, before the requested start at %s; choose an earlier start, or ask for your eligibility to be extended",
			RoleDescription(roleRef, namespace), endsTooSoon.Name, endsTooSoon.Spec.EndTime.UTC().Format(time.RFC3339), want.Start.UTC().Format(time.RFC3339))
	case endsTooSoon != nil:
		// Counted from when access would really begin (now, or a later
		// start), not the rounded-down start: asked for, this duration's
		// rounded-up end still fits.
		begin := want.Start
		if now.After(begin) {
			begin = now
		}
		left := endsTooSoon.Spec.EndTime.Sub(begin).Truncate(time.Minute)
		return nil, fmt.Errorf("your eligibility for %s (RoleAssignment %s) ends at %s, before the requested activation would end at %s; request a duration of at most %s, or ask for your eligibility to be extended",
			RoleDescription(roleRef, namespace), endsTooSoon.Name, endsTooSoon.Spec.EndTime.UTC().Format(time.RFC3339), want.End.UTC().Format(time.RFC3339), left)
	}
	return nil, fmt.Errorf("%s is not eligible for %s now: ask a platform admin for an Eligible RoleAssignment (kubectl get roleassignments shows yours)",
		user.Username, RoleDescription(roleRef, namespace))
}

// ActivationCheck is everything the policy of an activation is judged on.
type ActivationCheck struct {
	Request   *pimv1.ActivationRequest
	Requester pimv1.UserInfo
	Now       time.Time
	// Setting is the role's effective policy.
	Setting pimv1.RoleSettingSpec
	// MFASatisfied is true when the requester proved a second factor.
	MFASatisfied bool
	// Assignments include the requester's RoleAssignments (whose subject
	// is the requester by name, group or ServiceAccount); others, and
	// those of other roles, count for nothing.
	Assignments []pimv1.RoleAssignment
	// OpenRequests are the requester's other requests for the same role and
	// namespace that are not final.
	OpenRequests []pimv1.ActivationRequest
	// Extended is the request spec.extends names, if it exists.
	Extended *pimv1.ActivationRequest
}

// RequestedWindow is when a request asks to hold the role: from its start
// (now, or its startTime when that is later) for its duration.
//
// Both ends are whole seconds (metav1.Time keeps no more), rounded so that
// access never lasts less than asked: Start, when access is recorded as
// beginning, is rounded down; End is the instant access really begins plus
// the duration, rounded up. Rounding End down from a truncated Start
// instead once ended activations up to a second early. Access so lasts at
// least the duration and less than a second more; End-Start is the
// duration, or a second more when the activation began mid-second.
func RequestedWindow(ar *pimv1.ActivationRequest, now time.Time) Window {
	begin := now
	if ar.Spec.StartTime != nil && ar.Spec.StartTime.After(now) {
		begin = ar.Spec.StartTime.Time
	}
	start := begin.Truncate(time.Second)
	if ar.Spec.StartTime != nil && start.Before(ar.Spec.StartTime.Time) {
		// Never recorded as starting before the requested start (one with
		// a sub-second part; the API server keeps whole seconds).
		start = ar.Spec.StartTime.Time
	}
	end := ActivationEnd(begin, ar.Spec.Duration.Duration)
	return Window{Start: start, End: &end}
}

// ActivationEnd is when an activation that began at the instant begin
// ends: begin+d rounded up to a whole second, never earlier.
func ActivationEnd(begin time.Time, d time.Duration) time.Time {
	return CeilSecond(begin.Add(d))
}

// CeilSecond rounds t up to a whole second; a whole second stays as it is.
func CeilSecond(t time.Time) time.Time {
	if down := t.Truncate(time.Second); !down.Equal(t) {
		return down.Add(time.Second)
	}
	return t
}

// RecoveredWindowFits says whether a window found stamped on a binding may
// stand for the request's activation: it must be the request's own shape
// — as RequestedWindow makes it for an activation that began within the
// stamped start's second, so from spec.duration to spec.duration plus the
// rounding (at most a second) long — not before spec.startTime, and
// already begun (a binding exists only once the activation started).
// Whatever vouches for the stamp, an activation never lasts longer than
// asked and rounded.
func RecoveredWindowFits(ar *pimv1.ActivationRequest, w Window, now time.Time) error {
	d := ar.Spec.Duration.Duration
	switch {
	case w.End == nil:
		return errors.New("no end")
	case w.End.Before(ActivationEnd(w.Start, d)):
		return fmt.Errorf("lasts %s, less than the %s asked", w.End.Sub(w.Start), d)
	case w.End.After(ActivationEnd(w.Start.Add(time.Second-time.Nanosecond), d)):
		return fmt.Errorf("lasts %s, more than the %s asked (rounded up to a whole second)", w.End.Sub(w.Start), d)
	case ar.Spec.StartTime != nil && w.Start.Before(ar.Spec.StartTime.Time):
		return fmt.Errorf("starts at %s, before the requested start %s", w.Start.UTC().Format(time.RFC3339), ar.Spec.StartTime.UTC().Format(time.RFC3339))
	case w.Start.After(now):
		return fmt.Errorf("starts at %s, in the future", w.Start.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckActivation judges a new ActivationRequest against its role's policy.
// It returns every reason to refuse, joined, so a user fixes them at once.
func CheckActivation(c ActivationCheck) (*pimv1.RoleAssignment, error) {
	ar, act := c.Request, c.Setting.Activation
	role := RoleDescription(ar.Spec.RoleRef, ar.Spec.Namespace)
	var errs []error

	d := ar.Spec.Duration.Duration
	switch {
	case d <= 0:
		errs = append(errs, fmt.Errorf("spec.duration must be positive, for example \"1h\" (at most %s for %s)", act.MaxDuration.Duration, role))
	case d > act.MaxDuration.Duration:
		errs = append(errs, fmt.Errorf("spec.duration %s exceeds the maximum activation of %s for %s; request at most %s", d, act.MaxDuration.Duration, role, act.MaxDuration.Duration))
	}
	if act.JustificationRequired() && strings.TrimSpace(ar.Spec.Justification) == "" {
		errs = append(errs, fmt.Errorf("%s requires a justification: set spec.justification", role))
	}
	if act.RequireTicket && (ar.Spec.Ticket == nil || strings.TrimSpace(ar.Spec.Ticket.System) == "" || strings.TrimSpace(ar.Spec.Ticket.Number) == "") {
		errs = append(errs, fmt.Errorf("%s requires a ticket: set spec.ticket.system and spec.ticket.number", role))
	}
	if act.RequireMFA && !c.MFASatisfied {
		errs = append(errs, fmt.Errorf("%s requires multi-factor authentication: sign in with MFA, or give a one-time code in the %s annotation", role, pimv1.AnnotationTOTP))
	}
	if ar.Spec.StartTime != nil && ar.Spec.StartTime.Time.Before(c.Now.Add(-time.Minute)) {
		errs = append(errs, fmt.Errorf("spec.startTime %s is in the past; leave it out to start now", ar.Spec.StartTime.UTC().Format(time.RFC3339)))
	}

	if ar.Spec.Extends != "" {
		errs = append(errs, checkExtends(c)...)
	}
	for _, open := range c.OpenRequests {
		if open.Name == ar.Spec.Extends || open.Name == ar.Name {
			continue
		}
		errs = append(errs, fmt.Errorf("you already have an open request for %s: ActivationRequest %s (%s); cancel it, or extend it with spec.extends",
			role, open.Name, stateOrPending(open.Status.State)))
	}

	var eligible *pimv1.RoleAssignment
	if d > 0 {
		var err error
		eligible, err = EligibilityFor(c.Requester, ar.Spec.RoleRef, ar.Spec.Namespace, RequestedWindow(ar, c.Now), c.Now, c.Assignments)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return eligible, errors.Join(errs...)
}

func checkExtends(c ActivationCheck) []error {
	ar, old := c.Request, c.Extended
	if old == nil {
		return []error{fmt.Errorf("spec.extends names ActivationRequest %q, which does not exist", ar.Spec.Extends)}
	}
	var errs []error
	if old.Spec.Requester == nil || old.Spec.Requester.Username != c.Requester.Username {
		errs = append(errs, fmt.Errorf("spec.extends names ActivationRequest %s, which is not yours", old.Name))
	}
	if old.Spec.RoleRef != ar.Spec.RoleRef || old.Spec.Namespace != ar.Spec.Namespace {
		errs = append(errs, fmt.Errorf("spec.extends names ActivationRequest %s, which is for %s, not %s", old.Name,
			RoleDescription(old.Spec.RoleRef, old.Spec.Namespace), RoleDescription(ar.Spec.RoleRef, ar.Spec.Namespace)))
	}
	if old.Status.State != pimv1.ActivationStateActive {
		errs = append(errs, fmt.Errorf("spec.extends names ActivationRequest %s, which is %s; only an Active request can be extended", old.Name, stateOrPending(old.Status.State)))
	}
	if ar.Spec.StartTime != nil {
		errs = append(errs, errors.New("an extension starts at once: leave spec.startTime out"))
	}
	return errs
}

func stateOrPending(s pimv1.ActivationState) pimv1.ActivationState {
	if s == "" {
		return pimv1.ActivationStatePending
	}
	return s
}

// IdleDeadline is when an Active activation unused for idleTimeout ends
// (RoleSetting activation.idleTimeout, authorizer mode): LastActivity plus
// idleTimeout. Zero when no idle timeout applies.
func IdleDeadline(ar *pimv1.ActivationRequest, idleTimeout *metav1.Duration) time.Time {
	if idleTimeout == nil || idleTimeout.Duration <= 0 || ar.Status.ActivatedAt == nil {
		return time.Time{}
	}
	return LastActivity(ar).Add(idleTimeout.Duration)
}

// LastActivity is what an idle timeout counts from: the activation's last
// recorded use, or its start when never used since (or when the recorded
// use is older); zero before it starts.
func LastActivity(ar *pimv1.ActivationRequest) time.Time {
	if ar.Status.ActivatedAt == nil {
		return time.Time{}
	}
	last := ar.Status.ActivatedAt.Time
	if u := ar.Status.LastUsedAt; u != nil && u.After(last) {
		last = u.Time
	}
	return last
}
