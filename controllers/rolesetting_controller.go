package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// RoleSettingReconciler reports, on each RoleSetting, whether it is the one
// policy of its role. Two RoleSettings for one role both get Conflict=True
// (and activations of that role are refused until one is removed): guessing
// which of two policies a platform team meant is not safe.
type RoleSettingReconciler struct {
	client.Client
	// APIReader reads what the cache does not hold: roles, and bindings
	// kubepim does not manage.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Outside watches every binding, compactly, for the bindings of
	// governed roles (outsideBindings) and to re-evaluate a role's alerts
	// as soon as one of its bindings changes.
	Outside *outsideWatch
	// Keys verifies the deadline kubepim signs on an activation's binding.
	Keys *approval.Keys
	// Clock is the source of "now".
	Clock clock.PassiveClock
	// Audit records every action in the audit trail.
	Audit *audit.Recorder
	// MaxRequeue caps how long a pass waits before looking again, so a
	// missed event heals.
	MaxRequeue time.Duration
	// Controller configures the controller (workers; the tests' queue that
	// follows a fake clock).
	Controller controller.Options

	mu      sync.Mutex
	tracked map[trackKey]*tracked
}

// +kubebuilder:rbac:groups=kubepim.io,resources=rolesettings,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubepim.io,resources=rolesettings/status,verbs=get;update;patch

// Reconcile sets the Ready and Conflict conditions of one RoleSetting.
func (r *RoleSettingReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	instant := r.Clock.Now()
	now := metav1.NewTime(instant)
	rs := &pimv1.RoleSetting{}
	if err := r.Get(ctx, req.NamespacedName, rs); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone: forget what was noted about the bindings of roles no
			// RoleSetting governs any more.
			return reconcile.Result{}, r.forgetUngoverned(ctx)
		}
		return reconcile.Result{}, err
	}
	others, err := r.sameRole(ctx, rs)
	if err != nil {
		return reconcile.Result{}, err
	}
	before := rs.DeepCopy()
	rs.Status.ObservedGeneration = rs.Generation
	conds := conditionsOf(&rs.Status.Conditions, rs.Generation, now.Time)
	if len(others) > 0 {
		msg := fmt.Sprintf("%s is also governed by RoleSetting(s) %s; activations of this role are refused until only one remains",
			describeRole(rs.Spec.RoleRef), strings.Join(others, ", "))
		conds.markFalse(pimv1.ConditionReady, pimv1.ReasonMultipleSettings, msg)
		conds.markTrue(pimv1.ConditionConflict, pimv1.ReasonMultipleSettings, msg)
		conds.stalled(true, pimv1.ReasonMultipleSettings, msg)
	} else {
		conds.stalled(false, "", "")
		conds.markTrue(pimv1.ConditionReady, pimv1.ReasonValid, "policy in force")
		conds.markFalse(pimv1.ConditionConflict, pimv1.ReasonNoConflict, "this is the only RoleSetting of "+describeRole(rs.Spec.RoleRef))
	}
	recheck, err := r.evaluateAlerts(ctx, rs, instant)
	if err != nil {
		return reconcile.Result{}, err
	}
	// A change of any binding of the role triggers a pass at once (the
	// Outside watch); the timer re-evaluates what depends on time alone
	// (unused eligibility, frequent activation), and an Unsettled binding
	// is looked at again when its grace ends.
	again := reconcile.Result{RequeueAfter: policy.RequeueAfter(r.Clock.Now(), recheck, r.MaxRequeue)}
	if before.Status.ObservedGeneration != rs.Generation {
		// A new policy is in force: record who set it.
		e := audit.Entry{Action: pimv1.AuditSettingChanged, Target: rs, TargetKind: "RoleSetting",
			RoleRef: &pimv1.RoleRef{Kind: rs.Spec.RoleRef.Kind, Name: rs.Spec.RoleRef.Name}, Namespace: rs.Spec.RoleRef.Namespace,
			Discriminator: fmt.Sprint(rs.Generation), Details: settingDetails(rs.Spec)}
		if by := rs.Annotations[pimv1.AnnotationChangedBy]; by != "" {
			e.Actor = &pimv1.UserInfo{Username: by}
		}
		if err := r.Audit.Record(ctx, e); err != nil {
			return reconcile.Result{}, err
		}
	}
	if err := writeStatus(ctx, r.Client, before, rs); err != nil {
		return reconcile.Result{}, err
	}
	return again, nil
}

// sameRole lists the names of other RoleSettings governing the same role.
func (r *RoleSettingReconciler) sameRole(ctx context.Context, rs *pimv1.RoleSetting) ([]string, error) {
	var list pimv1.RoleSettingList
	if err := r.List(ctx, &list, client.MatchingFields{lookup.RoleSettingByRole: lookup.SettingKey(rs.Spec.RoleRef)}); err != nil {
		return nil, err
	}
	var names []string
	for _, other := range list.Items {
		if other.Name != rs.Name && other.DeletionTimestamp.IsZero() {
			names = append(names, other.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// settingDetails summarizes a policy for the audit trail.
func settingDetails(s pimv1.RoleSettingSpec) map[string]string {
	a := s.Activation
	return map[string]string{
		"maxDuration":          a.MaxDuration.Duration.String(),
		"requireJustification": fmt.Sprint(a.JustificationRequired()),
		"requireTicket":        fmt.Sprint(a.RequireTicket),
		"requireMFA":           fmt.Sprint(a.RequireMFA),
		"approvalRequired":     fmt.Sprint(a.Approval.Required),
		"requiredApprovals":    fmt.Sprint(a.Approval.RequiredApprovals),
	}
}

func describeRole(ref pimv1.RoleSettingRoleRef) string {
	if ref.Kind == pimv1.RoleKindRole {
		return fmt.Sprintf("Role %s/%s", ref.Namespace, ref.Name)
	}
	return "ClusterRole " + ref.Name
}

// SetupWithManager watches RoleSettings; any change to one re-evaluates every
// RoleSetting of the same role, so a conflict clears on both sides.
func (r *RoleSettingReconciler) SetupWithManager(mgr manager.Manager) error {
	r.tracked = map[trackKey]*tracked{}
	if r.Outside == nil {
		r.Outside = newOutsideWatch(mgr.GetConfig(), r.Client)
	}
	return ctrl.ControllerManagedBy(mgr).
		Named("rolesetting").
		Watches(&pimv1.RoleSetting{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			rs := obj.(*pimv1.RoleSetting)
			var list pimv1.RoleSettingList
			reqs := []reconcile.Request{{NamespacedName: types.NamespacedName{Name: rs.Name}}}
			if err := r.List(ctx, &list, client.MatchingFields{lookup.RoleSettingByRole: lookup.SettingKey(rs.Spec.RoleRef)}); err == nil {
				for _, other := range list.Items {
					if other.Name != rs.Name {
						reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: other.Name}})
					}
				}
			}
			return reqs
		}), ctrl.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(r.Outside).
		WithOptions(r.Controller).
		Complete(r)
}
