package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/internal/policy"
)

// nameTakenRetry is how often an assignment whose binding name is taken by
// an unmanaged binding looks again (kubepim does not watch unmanaged bindings).
const nameTakenRetry = 30 * time.Second

// RoleAssignmentReconciler keeps, for each Active RoleAssignment, exactly one
// binding of its subject to its role from startTime to endTime, and none
// outside that window. Eligible assignments bind nothing; they are what
// ActivationRequests are checked against.
type RoleAssignmentReconciler struct {
	client.Client
	Bindings *grant.Syncer
	Recorder events.EventRecorder
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
}

// +kubebuilder:rbac:groups=kubepim.io,resources=roleassignments;roleassignments/finalizers,verbs=update;patch

// +kubebuilder:rbac:groups=kubepim.io,resources=roleassignments,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubepim.io,resources=roleassignments/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings;rolebindings,verbs=get;list;watch;create;update;patch;delete
// kubepim binds whichever role an assignment or activation names; the
// escalation guard in the webhooks decides who may make it do so.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;roles,verbs=bind
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one RoleAssignment's binding in line with its window at
// this instant, and asks to be called again at the next deadline.
func (r *RoleAssignmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	now := r.Clock.Now()
	ra := &pimv1.RoleAssignment{}
	if err := r.Get(ctx, req.NamespacedName, ra); err != nil {
		if apierrors.IsNotFound(err) {
			// Gone: whatever it granted goes too.
			_, err := r.Bindings.Sync(ctx, grant.Owner{Kind: "RoleAssignment", Name: req.Name}, nil)
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, err
	}
	owner := grant.OwnerOfAssignment(ra)
	if !ra.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, ra, owner)
	}
	if orig := ra.DeepCopy(); controllerutil.AddFinalizer(ra, pimv1.FinalizerRevoke) {
		// The finalizer lets kubepim revoke and record a deletion even if
		// it happens while the manager is down.
		if err := r.Patch(ctx, ra, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	before := ra.DeepCopy()
	state, bound, next := policy.AssignmentState(ra, now)
	var want client.Object
	if bound {
		want = grant.ForAssignment(ra)
	}
	outcome, syncErr := r.Bindings.Sync(ctx, owner, want)
	if ref := ra.Status.Binding; syncErr == nil && want == nil && outcome.Removed == 0 && ref != nil {
		// The cache may not hold the binding yet (a lagging watch; its late
		// create event is taken for the grant's echo): revoke what status
		// says was granted, read from the API server.
		removed, err := r.Bindings.RevokeRef(ctx, ref)
		if removed {
			outcome.Removed++
		}
		syncErr = err
	}

	r.summarize(ra, now, state, outcome, syncErr)
	if err := r.announce(ctx, before, ra, outcome); err != nil {
		return ctrl.Result{}, err
	}
	if err := writeStatus(ctx, r.Client, before, ra); err != nil {
		return ctrl.Result{}, err
	}

	var taken *grant.ErrNameTaken
	switch {
	case errors.As(syncErr, &taken):
		return ctrl.Result{RequeueAfter: nameTakenRetry}, nil
	case syncErr != nil:
		return ctrl.Result{}, syncErr
	}
	// Counted from the end of this pass, not from its start: the queue
	// starts the delay now, and a deadline (an expiry) must not be missed
	// by the time the pass took.
	return ctrl.Result{RequeueAfter: policy.RequeueAfter(r.Clock.Now(), next, r.MaxRequeue)}, nil
}

// summarize writes the state, binding and conditions into status.
func (r *RoleAssignmentReconciler) summarize(ra *pimv1.RoleAssignment, now time.Time, state pimv1.AssignmentState, outcome grant.Outcome, syncErr error) {
	ra.Status.ObservedGeneration = ra.Generation
	ra.Status.State = state
	start := metav1.NewTime(policy.AssignmentWindow(ra).Start)
	ra.Status.StartTime = &start
	ra.Status.Binding = outcome.Binding

	conds := conditionsOf(&ra.Status.Conditions, ra.Generation, now)
	var taken *grant.ErrNameTaken
	switch {
	case errors.As(syncErr, &taken):
		conds.markFalse(pimv1.ConditionReady, pimv1.ReasonBindingConflict, syncErr.Error())
	case syncErr != nil:
		conds.markFalse(pimv1.ConditionReady, pimv1.ReasonReconcileError, syncErr.Error())
	default:
		conds.markTrue(pimv1.ConditionReady, string(state), stateMessage(ra, state))
	}
	conds.stalled(taken != nil, pimv1.ReasonBindingConflict, errString(syncErr))
	if outcome.Binding != nil {
		conds.markTrue(pimv1.ConditionGranted, pimv1.ReasonActivated, "bound by "+outcome.Binding.Kind+" "+outcome.Binding.Name)
	} else {
		conds.markFalse(pimv1.ConditionGranted, string(state), "")
	}
}

func stateMessage(ra *pimv1.RoleAssignment, state pimv1.AssignmentState) string {
	switch state {
	case pimv1.AssignmentStateScheduled:
		return "takes effect at " + ra.Status.StartTime.UTC().Format(time.RFC3339)
	case pimv1.AssignmentStateExpired:
		return "ended at " + ra.Spec.EndTime.UTC().Format(time.RFC3339)
	case pimv1.AssignmentStateEligible:
		return "the subject may activate the role"
	}
	if ra.Spec.EndTime == nil {
		return "the subject holds the role permanently"
	}
	return "the subject holds the role until " + ra.Spec.EndTime.UTC().Format(time.RFC3339)
}

// finalize revokes what a deleted assignment granted, records the removal,
// and lets the deletion finish.
func (r *RoleAssignmentReconciler) finalize(ctx context.Context, ra *pimv1.RoleAssignment, owner grant.Owner) error {
	if !controllerutil.ContainsFinalizer(ra, pimv1.FinalizerRevoke) {
		return nil
	}
	outcome, err := r.Bindings.Sync(ctx, owner, nil)
	if err != nil {
		return err
	}
	e := r.auditEntry(ra, pimv1.AuditAssignmentRemoved)
	e.Reason = fmt.Sprintf("RoleAssignment deleted; %d binding(s) removed", outcome.Removed)
	if err := r.Audit.Record(ctx, e); err != nil {
		return err
	}
	orig := ra.DeepCopy()
	controllerutil.RemoveFinalizer(ra, pimv1.FinalizerRevoke)
	return client.IgnoreNotFound(r.Patch(ctx, ra, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})))
}

// announce records each transition in the audit trail and as an Event,
// never a pass that changed nothing.
func (r *RoleAssignmentReconciler) announce(ctx context.Context, before, after *pimv1.RoleAssignment, outcome grant.Outcome) error {
	from, to := before.Status.State, after.Status.State
	var records []audit.Entry
	if from == "" {
		e := r.auditEntry(after, pimv1.AuditAssignmentCreated)
		e.Actor, e.Justification = after.Spec.AssignedBy, after.Spec.Justification
		records = append(records, e)
	} else if before.Status.ObservedGeneration != after.Generation {
		// The spec changed (endTime moved, justification edited).
		e := r.auditEntry(after, pimv1.AuditAssignmentChanged)
		e.Discriminator = fmt.Sprint(after.Generation)
		if by := after.Annotations[pimv1.AnnotationChangedBy]; by != "" {
			e.Actor = &pimv1.UserInfo{Username: by}
		}
		records = append(records, e)
	}
	switch {
	case from != to && to == pimv1.AssignmentStateActive:
		records = append(records, r.auditEntry(after, pimv1.AuditAssignmentActivated))
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, pimv1.ReasonActivated, "Grant", "%s %s holds %s %s", after.Spec.Subject.Kind, after.Spec.Subject.Name, after.Spec.RoleRef.Kind, after.Spec.RoleRef.Name)
	case from != to && to == pimv1.AssignmentStateExpired:
		records = append(records, r.auditEntry(after, pimv1.AuditAssignmentExpired))
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, pimv1.ReasonExpired, "Revoke", "assignment ended; %d binding(s) removed", outcome.Removed)
	case from != to:
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, string(to), "Reconcile", "%s", stateMessage(after, to))
	case to == pimv1.AssignmentStateActive && (outcome.Created || outcome.Repaired):
		e := r.auditEntry(after, pimv1.AuditBindingRepaired)
		e.Discriminator = outcome.Binding.UID
		e.Reason = "binding " + outcome.Binding.Name + " had been changed or removed and was put back"
		records = append(records, e)
		r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, pimv1.ReasonRepaired, "Repair", "binding %s had been changed or removed and was put back", outcome.Binding.Name)
	case to != pimv1.AssignmentStateActive && outcome.Removed > 0:
		r.Recorder.Eventf(after, nil, corev1.EventTypeWarning, pimv1.ReasonRepaired, "Repair", "removed %d binding(s) that should not exist", outcome.Removed)
	}
	for _, e := range records {
		if err := r.Audit.Record(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

func (r *RoleAssignmentReconciler) auditEntry(ra *pimv1.RoleAssignment, action string) audit.Entry {
	e := audit.Entry{
		Action: action, Target: ra, TargetKind: "RoleAssignment",
		Subject: &ra.Spec.Subject, RoleRef: &ra.Spec.RoleRef, Namespace: ra.Spec.Namespace,
		Details: map[string]string{"type": ra.Spec.Type},
	}
	if ra.Status.StartTime != nil {
		e.Details["startTime"] = ra.Status.StartTime.UTC().Format(time.RFC3339)
	}
	if ra.Spec.EndTime != nil {
		e.Details["endTime"] = ra.Spec.EndTime.UTC().Format(time.RFC3339)
	}
	return e
}

// SetupWithManager watches RoleAssignments and the bindings they own.
func (r *RoleAssignmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	ownerRequests := enqueueBindingOwner("RoleAssignment", r.Bindings)
	return ctrl.NewControllerManagedBy(mgr).
		For(&pimv1.RoleAssignment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&rbacv1.ClusterRoleBinding{}, ownerRequests).
		Watches(&rbacv1.RoleBinding{}, ownerRequests).
		WithOptions(r.Controller).
		Named("roleassignment").
		Complete(r)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
