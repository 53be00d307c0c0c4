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
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
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
func (r *RoleSettingReconciler) evaluateAlerts(ctx context.Context, rs *pimv1.RoleSetting, now time.Time) error {
	roleRef := pimv1.RoleRef{Kind: rs.Spec.RoleRef.Kind, Name: rs.Spec.RoleRef.Name}
	in := policy.AlertInput{Now: now, Setting: rs.Spec}
	var err error
	if in.Rules, err = r.rulesOf(ctx, rs.Spec.RoleRef); err != nil {
		return err
	}
	outside, err := r.outsideBindings(ctx, rs.Spec.RoleRef)
	if err != nil {
		return err
	}
	for _, b := range outside {
		if !ptr.Deref(rs.Spec.Alerts.RemoveOutsideBindings, false) {
			in.OutsideBindings = append(in.OutsideBindings, bindingName(b))
			continue
		}
		if err := r.removeOutside(ctx, rs, roleRef, b); err != nil {
			return err
		}
	}
	assignments, err := lookup.AssignmentsOf(ctx, r.Client, roleRef)
	if err != nil {
		return err
	}
	in.Assignments = slices.DeleteFunc(assignments, func(ra pimv1.RoleAssignment) bool {
		return roleRef.Kind == pimv1.RoleKindRole && ra.Spec.Namespace != rs.Spec.RoleRef.Namespace
	})
	var activations pimv1.ActivationRequestList
	if err := r.List(ctx, &activations, client.MatchingFields{lookup.ActivationByRole: lookup.RoleKey(roleRef)}); err != nil {
		return err
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
			return err
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
	alerting := metav1.Condition{Type: pimv1.ConditionAlerting, Status: metav1.ConditionFalse, Reason: "NoAlerts",
		Message: "no security alerts", ObservedGeneration: rs.Generation, LastTransitionTime: metav1.NewTime(now)}
	if len(types) > 0 {
		alerting.Status, alerting.Reason, alerting.Message = metav1.ConditionTrue, "AlertsRaised", strings.Join(types, ", ")
	}
	meta.SetStatusCondition(&rs.Status.Conditions, alerting)
	return nil
}

func findAlert(alerts []pimv1.Alert, t string) *pimv1.Alert {
	for i := range alerts {
		if alerts[i].Type == t {
			return &alerts[i]
		}
	}
	return nil
}

// rulesOf reads the role's rules from the API server (roles are not cached).
func (r *RoleSettingReconciler) rulesOf(ctx context.Context, ref pimv1.RoleSettingRoleRef) ([]rbacv1.PolicyRule, error) {
	if ref.Kind == pimv1.RoleKindRole {
		role := &rbacv1.Role{}
		err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, role)
		return role.Rules, client.IgnoreNotFound(err)
	}
	role := &rbacv1.ClusterRole{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Name: ref.Name}, role)
	return role.Rules, client.IgnoreNotFound(err)
}

// outsideBindings lists the bindings of the role that kubepim does not
// manage. kubepim's cache holds only its own bindings, so this reads the
// API server; it runs on each periodic pass of the RoleSetting.
func (r *RoleSettingReconciler) outsideBindings(ctx context.Context, ref pimv1.RoleSettingRoleRef) ([]client.Object, error) {
	var out []client.Object
	notOurs := func(obj client.Object, roleRef rbacv1.RoleRef) bool {
		return roleRef.Kind == ref.Kind && roleRef.Name == ref.Name && obj.GetLabels()[pimv1.LabelManagedBy] != pimv1.ManagedByValue
	}
	if ref.Kind == pimv1.RoleKindClusterRole {
		var crbs rbacv1.ClusterRoleBindingList
		if err := r.APIReader.List(ctx, &crbs); err != nil {
			return nil, err
		}
		for i := range crbs.Items {
			if notOurs(&crbs.Items[i], crbs.Items[i].RoleRef) {
				out = append(out, &crbs.Items[i])
			}
		}
	}
	var rbs rbacv1.RoleBindingList
	if err := r.APIReader.List(ctx, &rbs, client.InNamespace(ref.Namespace)); err != nil {
		return nil, err
	}
	for i := range rbs.Items {
		if notOurs(&rbs.Items[i], rbs.Items[i].RoleRef) {
			out = append(out, &rbs.Items[i])
		}
	}
	return out, nil
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
	return strings.Join(names, ", ")
}
