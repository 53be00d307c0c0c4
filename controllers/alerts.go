package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

var alertsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "kubepim_alerts",
	Help: "Security alerts raised now (1) or not (0), by type and role.",
}, []string{"type", "role"})

var alertTypes = []string{pimv1.AlertAssignedOutsidePIM, pimv1.AlertRoleNotRequiringMFA, pimv1.AlertTooManyPermanentActive,
	pimv1.AlertUnusedEligibility, pimv1.AlertFrequentActivation}

func init() { metrics.Registry.MustRegister(alertsGauge) }

// evaluateAlerts raises and clears the role's security alerts in status,
// removing outside bindings first when the policy enforces it.
// It returns when to look again at a binding that is still Unsettled (zero
// when none is).
func (r *RoleSettingReconciler) evaluateAlerts(ctx context.Context, rs *pimv1.RoleSetting, now time.Time) (time.Time, error) {
	roleRef := pimv1.RoleRef{Kind: rs.Spec.RoleRef.Kind, Name: rs.Spec.RoleRef.Name}
	in := policy.AlertInput{Now: now, Setting: rs.Spec}
	// Roles are not cached: read them from the API server. A missing role
	// has no rules.
	ref := rs.Spec.RoleRef
	rules, _, err := lookup.RoleRules(ctx, r.APIReader, ref.Kind, ref.Name, ref.Namespace)
	if client.IgnoreNotFound(err) != nil {
		return time.Time{}, err
	}
	in.Rules = rules
	outside, recheck, err := r.outsideBindings(ctx, rs.Spec.RoleRef, now)
	if err != nil {
		return time.Time{}, err
	}
	for _, b := range outside {
		if !ptr.Deref(rs.Spec.Alerts.RemoveOutsideBindings, false) {
			in.OutsideBindings = append(in.OutsideBindings, bindingName(b))
			if err := r.reportOutside(ctx, rs, roleRef, b); err != nil {
				return time.Time{}, err
			}
			continue
		}
		if err := r.removeOutside(ctx, rs, roleRef, b); err != nil {
			return time.Time{}, err
		}
	}
	assignments, err := lookup.AssignmentsOf(ctx, r.Client, roleRef)
	if err != nil {
		return time.Time{}, err
	}
	in.Assignments = slices.DeleteFunc(assignments, func(ra pimv1.RoleAssignment) bool {
		return roleRef.Kind == pimv1.RoleKindRole && ra.Spec.Namespace != rs.Spec.RoleRef.Namespace
	})
	var activations pimv1.ActivationRequestList
	if err := r.List(ctx, &activations, client.MatchingFields{lookup.ActivationByRole: lookup.RoleKey(roleRef)}); err != nil {
		return time.Time{}, err
	}
	in.Activations = activations.Items

	raised := policy.EvaluateAlerts(in)
	for i := range raised {
		raised[i].Since = metav1.NewTime(now.Truncate(time.Second))
		if old := findAlert(rs.Status.Alerts, raised[i].Type); old != nil {
			raised[i].Since = old.Since
			continue
		}
		r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, raised[i].Type, "Alert", "%s", raised[i].Message)
		e := audit.Entry{Action: pimv1.AuditAlertRaised, Target: rs, TargetKind: "RoleSetting", RoleRef: &roleRef,
			Namespace: rs.Spec.RoleRef.Namespace, Outcome: pimv1.AuditOutcomeFailure, Reason: raised[i].Type + ": " + raised[i].Message,
			Discriminator: raised[i].Type + "@" + raised[i].Since.UTC().Format(time.RFC3339)}
		if err := r.Audit.Record(ctx, e); err != nil {
			return time.Time{}, err
		}
	}
	for _, old := range rs.Status.Alerts {
		if findAlert(raised, old.Type) == nil {
			r.Recorder.Eventf(rs, nil, corev1.EventTypeNormal, old.Type+"Cleared", "Alert", "alert %s cleared", old.Type)
		}
	}
	rs.Status.Alerts = raised
	var types []string
	for _, t := range alertTypes {
		v := 0.0
		if findAlert(raised, t) != nil {
			v = 1
			types = append(types, t)
		}
		alertsGauge.WithLabelValues(t, describeRole(rs.Spec.RoleRef)).Set(v)
	}
	rs.Status.AlertSummary = strings.Join(types, ",")
	if len(types) > 0 {
		conditionsOf(&rs.Status.Conditions, rs.Generation, now).markTrue(pimv1.ConditionAlerting, "AlertsRaised", strings.Join(types, ", "))
	} else {
		conditionsOf(&rs.Status.Conditions, rs.Generation, now).markFalse(pimv1.ConditionAlerting, "NoAlerts", "no security alerts")
	}
	return recheck, nil
}

func findAlert(alerts []pimv1.Alert, t string) *pimv1.Alert {
	for i := range alerts {
		if alerts[i].Type == t {
			return &alerts[i]
		}
	}
	return nil
}

// unsettledGrace is how long a binding may stay Unsettled (the binding a
// live owner is being granted, or was granted and drifted from) before it
// counts as made outside kubepim. kubepim's own controllers settle it in
// milliseconds (the granting pass stores the owner's status right after
// creating the binding; drift is repaired on the binding's watch event);
// the grace only keeps a slow pass from being taken for an intruder, and
// bounds how long an exact copy of a not-yet-granted binding can last.
const unsettledGrace = 5 * time.Second

// outsideBindings returns the bindings of the setting's role that kubepim
// does not account for (grant.Judge), read through the bindings watch,
// and the time to look again when some binding is still Unsettled.
func (r *RoleSettingReconciler) outsideBindings(ctx context.Context, ref pimv1.RoleSettingRoleRef, now time.Time) ([]client.Object, time.Time, error) {
	crbs, rbs := r.Outside.lookup(ref)
	role := roleKeyOf(ref)
	var out []client.Object
	var recheck time.Time
	seen := map[trackKey]bool{}
	judge := func(role string, crbs, rbs []bindingEntry) error {
		for _, kb := range []struct {
			kind    string
			entries []bindingEntry
		}{{"ClusterRoleBinding", crbs}, {"RoleBinding", rbs}} {
			for _, e := range kb.entries {
				tk := trackKey{kind: kb.kind, bindingKey: e.bindingKey}
				b, err := r.bindingFor(ctx, tk, e.ResourceVersion, role)
				if err != nil {
					return err
				}
				if b == nil {
					continue // gone since
				}
				claim, err := r.claimFor(ctx, b, now)
				if err != nil {
					return err
				}
				seen[tk] = true
				verdict := grant.Judge(b, claim)
				if verdict == grant.Unsettled {
					since := r.unsettledSince(tk, role, now)
					if now.Sub(since) < unsettledGrace {
						recheck = policy.Earliest(recheck, since.Add(unsettledGrace))
						continue
					}
					verdict = grant.Outside
				} else {
					r.unsettledSince(tk, role, time.Time{})
				}
				if verdict == grant.Outside {
					out = append(out, b)
				}
			}
		}
		return nil
	}
	if err := judge(role, crbs, rbs); err != nil {
		return nil, time.Time{}, err
	}
	// The roles kubepim generated for reduced-scope activations of this
	// role are part of it: a binding to one that is not the activation's
	// own is an outside binding of the role (issue #19).
	generated, err := r.generatedRoleKeys(ctx, ref)
	if err != nil {
		return nil, time.Time{}, err
	}
	for _, key := range generated {
		if err := judge(key, r.Outside.crbs.bindingsOf(key, ""), r.Outside.rbs.bindingsOf(key, "")); err != nil {
			return nil, time.Time{}, err
		}
	}
	r.forget(role, seen)
	// In a stable order, as the list from the API server was: the alert's
	// message names them, and a message that changed would be a new status.
	slices.SortFunc(out, func(a, b client.Object) int { return strings.Compare(bindingName(a), bindingName(b)) })
	return out, recheck, nil
}

// generatedRoleKeys are the RoleSetting index keys of the roles kubepim
// generated for the reduced-scope activations of the setting's role that
// have not ended (bindings of them are judged with the role's).
func (r *RoleSettingReconciler) generatedRoleKeys(ctx context.Context, ref pimv1.RoleSettingRoleRef) ([]string, error) {
	var list pimv1.ActivationRequestList
	if err := r.List(ctx, &list, client.MatchingFields{lookup.ActivationByRole: lookup.RoleKey(pimv1.RoleRef{Kind: ref.Kind, Name: ref.Name})}); err != nil {
		return nil, err
	}
	var keys []string
	for i := range list.Items {
		ar := &list.Items[i]
		if !policy.IsReduced(ar) || policy.IsFinal(ar.Status.State) || (ref.Namespace != "" && ar.Spec.Namespace != ref.Namespace) {
			continue
		}
		keys = append(keys, lookup.SettingKey(policy.SettingRoleRef(grant.ScopedRoleRef(ar), ar.Spec.Namespace)))
	}
	return keys, nil
}

// trackKey names a binding of a kind.
type trackKey struct {
	kind string
	bindingKey
}

// tracked is what the reconciler remembers of a binding of a governed role
// between passes.
type tracked struct {
	role string // its RoleSetting index key
	// read is a stripped copy of the binding as last read from the API
	// server (nil when it came from the manager's cache): an outside
	// binding left in place (alert-only mode) is read once per version,
	// not on every pass.
	read client.Object
	// unsettled is when it was first seen Unsettled (zero: it is not).
	unsettled time.Time
	// reported is the UID of the outside binding under this name that is
	// in the audit trail (alert-only mode), so it is recorded once.
	reported types.UID
}

// reportOutside records an outside binding left in place (alert-only mode)
// in the audit trail and as a Warning Event, once per binding: the alert
// itself is raised once per type, and its message names only a few, so a
// binding made while the alert is up would otherwise leave no trace.
func (r *RoleSettingReconciler) reportOutside(ctx context.Context, rs *pimv1.RoleSetting, roleRef pimv1.RoleRef, b client.Object) error {
	tk := trackKey{kind: grant.Reference(b).Kind, bindingKey: bindingKey{Namespace: b.GetNamespace(), Name: b.GetName()}}
	r.mu.Lock()
	t := r.tracked[tk]
	done := t != nil && t.reported == b.GetUID()
	r.mu.Unlock()
	if done {
		return nil
	}
	e := audit.Entry{Action: pimv1.AuditAlertRaised, Target: rs, TargetKind: "RoleSetting", RoleRef: &roleRef,
		Namespace: b.GetNamespace(), Outcome: pimv1.AuditOutcomeFailure, Discriminator: "outside/" + string(b.GetUID()),
		Reason:  fmt.Sprintf("%s: %s grants the role outside kubepim", pimv1.AlertAssignedOutsidePIM, bindingName(b)),
		Details: map[string]string{"binding": bindingName(b), "subjects": subjectNames(b)}}
	if err := r.Audit.Record(ctx, e); err != nil {
		return err
	}
	r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, pimv1.AlertAssignedOutsidePIM, "Alert", "%s", e.Reason)
	r.mu.Lock()
	if t = r.tracked[tk]; t == nil {
		t = &tracked{role: roleKeyOf(rs.Spec.RoleRef)}
		r.tracked[tk] = t
	}
	t.reported = b.GetUID()
	r.mu.Unlock()
	return nil
}

// bindingFor returns the binding the watch saw at resourceVersion, or a
// newer version, in full; nil when it is gone. kubepim-labelled bindings
// are in the manager's cache; others (and a cached version that is not the
// watch's) are read from the API server.
func (r *RoleSettingReconciler) bindingFor(ctx context.Context, tk trackKey, resourceVersion, role string) (client.Object, error) {
	var cached, fresh client.Object = &rbacv1.ClusterRoleBinding{}, &rbacv1.ClusterRoleBinding{}
	if tk.kind == "RoleBinding" {
		cached, fresh = &rbacv1.RoleBinding{}, &rbacv1.RoleBinding{}
	}
	key := client.ObjectKey{Namespace: tk.Namespace, Name: tk.Name}
	err := r.Get(ctx, key, cached)
	if err == nil && cached.GetResourceVersion() == resourceVersion {
		return cached, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	r.mu.Lock()
	t := r.tracked[tk]
	if t != nil && t.read != nil && t.read.GetResourceVersion() == resourceVersion {
		b := t.read.DeepCopyObject().(client.Object)
		r.mu.Unlock()
		return b, nil
	}
	r.mu.Unlock()
	if err := r.APIReader.Get(ctx, key, fresh); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	b := stripBinding(fresh)
	r.mu.Lock()
	if t = r.tracked[tk]; t == nil {
		t = &tracked{role: role}
		r.tracked[tk] = t
	}
	t.read = b.DeepCopyObject().(client.Object)
	r.mu.Unlock()
	return b, nil
}

// unsettledSince returns when tk was first seen Unsettled, noting now if
// it was not; a zero now clears it.
func (r *RoleSettingReconciler) unsettledSince(tk trackKey, role string, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tracked[tk]
	if t == nil {
		if now.IsZero() {
			return now
		}
		t = &tracked{role: role}
		r.tracked[tk] = t
	}
	if now.IsZero() && t.read == nil {
		delete(r.tracked, tk) // nothing left to remember
		return now
	}
	if now.IsZero() || t.unsettled.IsZero() {
		t.unsettled = now
	}
	return t.unsettled
}

// forget drops what is remembered of the role's bindings that are gone.
func (r *RoleSettingReconciler) forget(role string, seen map[trackKey]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for tk, t := range r.tracked {
		if t.role == role && !seen[tk] {
			delete(r.tracked, tk)
		}
	}
}

// forgetUngoverned drops what is remembered about bindings of roles that
// no RoleSetting governs any more.
func (r *RoleSettingReconciler) forgetUngoverned(ctx context.Context) error {
	r.mu.Lock()
	roles := map[string]bool{}
	for _, t := range r.tracked {
		roles[t.role] = true
	}
	r.mu.Unlock()
	for role := range roles {
		var list pimv1.RoleSettingList
		if err := r.List(ctx, &list, client.MatchingFields{lookup.RoleSettingByRole: role}); err != nil {
			return err
		}
		if len(list.Items) == 0 {
			r.forget(role, nil)
		}
	}
	return nil
}

// stripBinding keeps of a binding what judging and removing it need.
func stripBinding(obj client.Object) client.Object {
	// Deletion state and finalizers stay: a binding held by a finalizer
	// still grants, and must be finished off (grant.EndDeletion).
	meta := metav1.ObjectMeta{Name: obj.GetName(), Namespace: obj.GetNamespace(), UID: obj.GetUID(),
		ResourceVersion: obj.GetResourceVersion(), Labels: obj.GetLabels(),
		DeletionTimestamp: obj.GetDeletionTimestamp(), Finalizers: obj.GetFinalizers()}
	for _, k := range []string{pimv1.AnnotationOwnerName, pimv1.AnnotationActivatedAt, pimv1.AnnotationExpiresAt, pimv1.AnnotationTimingSignature} {
		if v, ok := obj.GetAnnotations()[k]; ok {
			if meta.Annotations == nil {
				meta.Annotations = map[string]string{}
			}
			meta.Annotations[k] = v
		}
	}
	switch b := obj.(type) {
	case *rbacv1.ClusterRoleBinding:
		return &rbacv1.ClusterRoleBinding{ObjectMeta: meta, RoleRef: b.RoleRef, Subjects: b.Subjects}
	case *rbacv1.RoleBinding:
		return &rbacv1.RoleBinding{ObjectMeta: meta, RoleRef: b.RoleRef, Subjects: b.Subjects}
	}
	return obj
}

// claimFor looks up the kubepim object a binding's labels name (in the
// manager's cache) and says which binding it should have. The labels and
// the owner-name annotation only say where to look: grant.Judge
// compares the binding with what the owner's spec and status say.
//
// An owner claims a binding only while it may hold one now: an Active
// assignment in its window; an activation whose status shows it in force,
// or — in the moment between the grant and the status write — whose
// binding carries kubepim's own signature of a window in force now (only
// kubepim can sign). So a copy made for a request still waiting for
// approval, or for a scheduled assignment, is outside at once, however
// often it is recreated.
func (r *RoleSettingReconciler) claimFor(ctx context.Context, b client.Object, now time.Time) (*grant.Claim, error) {
	name := b.GetAnnotations()[pimv1.AnnotationOwnerName]
	if name == "" {
		return nil, nil
	}
	switch b.GetLabels()[pimv1.LabelOwnerKind] {
	case "ActivationRequest":
		ar := &pimv1.ActivationRequest{}
		if err := r.Get(ctx, client.ObjectKey{Name: name}, ar); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		claim := &grant.Claim{Owner: grant.OwnerOfActivation(ar), Granted: ar.Status.Binding}
		if ar.Spec.Requester != nil && !policy.IsFinal(ar.Status.State) {
			inForce, err := r.activationInForce(ctx, ar, b, now)
			if err != nil {
				return nil, err
			}
			if inForce {
				claim.Want = grant.ForActivation(ar, nil)
			}
		}
		return claim, nil
	case "RoleAssignment":
		ra := &pimv1.RoleAssignment{}
		if err := r.Get(ctx, client.ObjectKey{Name: name}, ra); err != nil {
			return nil, client.IgnoreNotFound(err)
		}
		claim := &grant.Claim{Owner: grant.OwnerOfAssignment(ra), Granted: ra.Status.Binding}
		// As the RoleAssignment controller decides: Active, in its window.
		if _, bound, _ := policy.AssignmentState(ra, now); bound && ra.DeletionTimestamp.IsZero() {
			claim.Want = grant.ForAssignment(ra)
		}
		return claim, nil
	}
	return nil, nil
}

// activationInForce reports whether ar may hold a binding now: its status
// shows a window in force, or b carries kubepim's signature of such a
// window for ar and b (the grant's pass has not stored its status yet).
func (r *RoleSettingReconciler) activationInForce(ctx context.Context, ar *pimv1.ActivationRequest, b client.Object, now time.Time) (bool, error) {
	inForce := func(start, end time.Time) bool { return !now.Before(start) && now.Before(end) }
	if s := ar.Status; s.State == pimv1.ActivationStateActive ||
		(s.ActivatedAt != nil && s.ExpiresAt != nil && inForce(s.ActivatedAt.Time, s.ExpiresAt.Time)) {
		// Active until its controller ends it (at expiresAt, to the
		// second): its own binding is never taken for an outside one.
		return true, nil
	}
	if b.GetAnnotations()[pimv1.AnnotationTimingSignature] == "" {
		return false, nil
	}
	key, err := r.Keys.Key(ctx)
	if err != nil {
		return false, err
	}
	start, end, _, signed := grant.StampedTiming(key, ar.UID, b)
	return signed && inForce(start, end), nil
}

// removeOutside records and deletes a binding made outside kubepim.
func (r *RoleSettingReconciler) removeOutside(ctx context.Context, rs *pimv1.RoleSetting, roleRef pimv1.RoleRef, b client.Object) error {
	e := audit.Entry{Action: pimv1.AuditOutsideBindingRemoved, Target: rs, TargetKind: "RoleSetting", RoleRef: &roleRef,
		Namespace: b.GetNamespace(), Discriminator: string(b.GetUID()),
		Reason:  fmt.Sprintf("removed %s, which granted the role outside kubepim (enforce mode)", bindingName(b)),
		Details: map[string]string{"binding": bindingName(b), "subjects": subjectNames(b)}}
	if err := r.Audit.Record(ctx, e); err != nil {
		return err
	}
	if b.GetDeletionTimestamp() != nil {
		// Deleted already, and held by a finalizer: RBAC still honours it.
		_, err := grant.EndDeletion(ctx, r.Client, b)
		return err
	}
	uid := b.GetUID()
	if err := r.Delete(ctx, b, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, pimv1.AuditOutsideBindingRemoved, "Enforce", "%s", e.Reason)
	return nil
}

func bindingName(b client.Object) string {
	if b.GetNamespace() == "" {
		return "ClusterRoleBinding " + b.GetName()
	}
	return "RoleBinding " + b.GetNamespace() + "/" + b.GetName()
}

// MaxSubjectsShown is how many of a binding's subjects the audit trail
// names for an outside binding, followed by how many more: a binding may
// list thousands of subjects (a hostile one, to keep itself from being
// recorded, and so in enforce mode from being removed: kubepim records
// before it deletes).
const MaxSubjectsShown = 20

func subjectNames(b client.Object) string {
	var subjects []rbacv1.Subject
	switch x := b.(type) {
	case *rbacv1.ClusterRoleBinding:
		subjects = x.Subjects
	case *rbacv1.RoleBinding:
		subjects = x.Subjects
	}
	var names []string
	for _, s := range subjects {
		names = append(names, s.Kind+" "+s.Name)
	}
	return policy.JoinBounded(names, ", ", MaxSubjectsShown, audit.MaxDetailLength)
}
