package policy

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// AlertInput is what a role's security alerts are judged on.
type AlertInput struct {
	Now     time.Time
	Setting pimv1.RoleSettingSpec
	// Rules of the role (nil when the role does not exist).
	Rules []rbacv1.PolicyRule
	// OutsideBindings are bindings of the role kubepim does not manage,
	// as "Kind namespace/name".
	OutsideBindings []string
	// Assignments of the role.
	Assignments []pimv1.RoleAssignment
	// Activations of the role, any state.
	Activations []pimv1.ActivationRequest
}

// MaxAlertMessageLength bounds an alert's message in status (the API
// allows 32 KiB). Each message names at most MaxNamesShown items and
// counts the rest, whatever the number (5,000 outside bindings, 10,000
// frequent activators), but a name may be up to 1 KiB long (a username);
// 4 KiB holds five of them and the words, and keeps RoleSetting status
// readable. The Warning Event that raises an alert is cut further, to the
// 1 KiB an Event allows.
const MaxAlertMessageLength = 4096

// Alert defaults.
const (
	DefaultMaxPermanentActive       = 2
	DefaultUnusedEligibilityDays    = 90
	DefaultFrequentActivations      = 5
	DefaultFrequentActivationWindow = 24 * time.Hour
)

// powerfulVerbs let whoever holds them gain more than the role says.
var powerfulVerbs = []string{"*", "escalate", "bind", "impersonate"}

// IsPowerful reports whether rules grant wildcards or a verb that leads to
// more power (escalate, bind, impersonate).
func IsPowerful(rules []rbacv1.PolicyRule) bool {
	for _, r := range rules {
		if slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") && len(r.Resources) == 0 {
			return true
		}
		for _, v := range r.Verbs {
			if slices.Contains(powerfulVerbs, v) {
				return true
			}
		}
	}
	return false
}

// EvaluateAlerts returns the alerts a role raises now, by type, each with a
// message that says what is wrong and what to do. since is left zero.
func EvaluateAlerts(in AlertInput) []pimv1.Alert {
	a := in.Setting.Alerts
	var out []pimv1.Alert
	raise := func(t, format string, args ...any) {
		out = append(out, pimv1.Alert{Type: t, Message: fmt.Sprintf(format, args...)})
	}
	if n := len(in.OutsideBindings); n > 0 {
		raise(pimv1.AlertAssignedOutsidePIM, "%d binding(s) grant this role outside kubepim: %s; replace them with RoleAssignments, or set spec.alerts.removeOutsideBindings",
			n, Names(in.OutsideBindings))
	}
	if !in.Setting.Activation.RequireMFA && IsPowerful(in.Rules) {
		raise(pimv1.AlertRoleNotRequiringMFA, "the role grants wildcards or escalate/bind/impersonate, and activating it does not require MFA: set spec.activation.requireMFA")
	}
	maxPermanent := int(deref(a.MaxPermanentActive, DefaultMaxPermanentActive))
	var permanent []string
	for _, ra := range in.Assignments {
		if ra.Spec.Type == pimv1.AssignmentActive && ra.Spec.EndTime == nil && ra.DeletionTimestamp.IsZero() {
			permanent = append(permanent, ra.Spec.Subject.Kind+" "+ra.Spec.Subject.Name)
		}
	}
	if len(permanent) > maxPermanent {
		sort.Strings(permanent)
		raise(pimv1.AlertTooManyPermanentActive, "%d permanent active assignments (%s), more than %d: make them eligible or give them an endTime",
			len(permanent), Names(permanent), maxPermanent)
	}
	unusedDays := int(cmp.Or(a.UnusedEligibilityDays, DefaultUnusedEligibilityDays))
	if unused := unusedEligibility(in, time.Duration(unusedDays)*24*time.Hour); len(unused) > 0 {
		raise(pimv1.AlertUnusedEligibility, "eligible but not activated for %d days: %s; remove eligibility that is not needed",
			unusedDays, Names(unused))
	}
	limit := int(cmp.Or(a.FrequentActivations, DefaultFrequentActivations))
	window := DefaultFrequentActivationWindow
	if a.FrequentActivationWindow != nil {
		window = a.FrequentActivationWindow.Duration
	}
	if frequent := frequentActivators(in, limit, window); len(frequent) > 0 {
		raise(pimv1.AlertFrequentActivation, "%d user(s) activated more than %d times within %s: %s; consider an assignment that fits the need",
			len(frequent), limit, window, Names(frequent))
	}
	for i := range out {
		out[i].Message = Truncate(out[i].Message, MaxAlertMessageLength)
	}
	return out
}

// unusedEligibility names eligible assignments in force for longer than
// idle whose subject has not activated the role within idle.
func unusedEligibility(in AlertInput, idle time.Duration) []string {
	var out []string
	for i := range in.Assignments {
		ra := &in.Assignments[i]
		if ra.Spec.Type != pimv1.AssignmentEligible || ra.Status.State != pimv1.AssignmentStateEligible {
			continue
		}
		if in.Now.Sub(AssignmentWindow(ra).Start) < idle {
			continue
		}
		used := slices.ContainsFunc(in.Activations, func(ar pimv1.ActivationRequest) bool {
			return ar.Spec.Requester != nil && SubjectMatches(ra.Spec.Subject, *ar.Spec.Requester) &&
				ar.Status.ActivatedAt != nil && in.Now.Sub(ar.Status.ActivatedAt.Time) < idle
		})
		if !used {
			out = append(out, ra.Name)
		}
	}
	sort.Strings(out)
	return out
}

// frequentActivators names users with more than limit activations that
// started within window.
func frequentActivators(in AlertInput, limit int, window time.Duration) []string {
	counts := map[string]int{}
	for _, ar := range in.Activations {
		if ar.Spec.Requester != nil && ar.Status.ActivatedAt != nil && in.Now.Sub(ar.Status.ActivatedAt.Time) < window {
			counts[ar.Spec.Requester.Username]++
		}
	}
	var out []string
	for user, n := range counts {
		if n > limit {
			out = append(out, fmt.Sprintf("%s (%d)", user, n))
		}
	}
	sort.Strings(out)
	return out
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
