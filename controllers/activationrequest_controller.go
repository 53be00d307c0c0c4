package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// DefaultActivationRetention is how long ended ActivationRequests are kept.
const DefaultActivationRetention = 90 * 24 * time.Hour

// ActivationRequestReconciler carries an ActivationRequest through its
// lifecycle: Pending, Scheduled, Active, then Expired (or Cancelled,
// Deactivated, Failed). While Active it keeps one binding of the requester,
// as a User, to the role; it removes it at expiresAt exactly.
type ActivationRequestReconciler struct {
	client.Client
	Bindings *grant.Syncer
	// Keys verifies approval records.
	Keys     *approval.Keys
	Recorder events.EventRecorder
	// Retention is how long ended requests are kept as history.
	Retention time.Duration
	// AccessMode: in authorizer mode an activation in force gets no
	// binding; its status is the grant (kubepim's authorization webhook
	// reads it at each request).
	AccessMode grant.AccessMode
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

// +kubebuilder:rbac:groups=kubepim.io,resources=activationrequests,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=kubepim.io,resources=activationrequests/status,verbs=get;update;patch
// A reduced-scope activation is granted, in bindings mode, with a Role or
// ClusterRole kubepim generates: creating a role with rules the manager
// does not hold itself takes the escalate verb (docs/threat-model.md).
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;roles,verbs=get;list;watch;create;update;delete;escalate

// Reconcile advances one ActivationRequest at this instant and asks to be
// called again at its next deadline.
func (r *ActivationRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	now := r.Clock.Now()
	ar := &pimv1.ActivationRequest{}
	if err := r.Get(ctx, req.NamespacedName, ar); err != nil {
		if apierrors.IsNotFound(err) {
			_, err := r.Bindings.Sync(ctx, grant.Owner{Kind: "ActivationRequest", Name: req.Name}, nil)
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, err
	}
	if !ar.DeletionTimestamp.IsZero() {
		if _, err := r.Bindings.Sync(ctx, r.owner(ar), nil); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, r.revokeScopedRole(ctx, ar, true)
	}

	before := ar.DeepCopy()
	next, err := r.advance(ctx, ar, now)
	if err != nil {
		conditionsOf(&ar.Status.Conditions, ar.Generation, now).markFalse(pimv1.ConditionReady, pimv1.ReasonReconcileError, err.Error())
	}
	// The audit trail is written before the new state is stored: a crash
	// in between repeats the pass, and the record, exactly once.
	if aerr := r.announce(ctx, before, ar); aerr != nil {
		return ctrl.Result{}, aerr
	}
	if perr := writeStatus(ctx, r.Client, before, ar); perr != nil {
		return ctrl.Result{}, perr
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if next.IsZero() {
		return ctrl.Result{}, nil
	}
	// Counted from the end of this pass, not from its start: the queue
	// starts the delay now, and a deadline (an expiry) must not be missed
	// by the time the pass took.
	return ctrl.Result{RequeueAfter: policy.RequeueAfter(r.Clock.Now(), next, r.MaxRequeue)}, nil
}

// advance runs the lifecycle, in order: history of ended requests, the
// requester's own ending, the end of what it extended, the policy still
// holding, the timing, and finally the grant itself. It returns the next
// deadline.
func (r *ActivationRequestReconciler) advance(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time) (time.Time, error) {
	if policy.IsFinal(ar.Status.State) {
		return r.keepHistory(ctx, ar, now)
	}
	if ar.Status.State == "" {
		r.setState(ar, now, pimv1.ActivationStatePending, "Requested", "waiting to be activated")
	}
	ar.Status.Scope = pimv1.ScopeRole
	if policy.IsReduced(ar) {
		ar.Status.Scope = pimv1.ScopeReduced
	}

	if reason, ok := ar.Annotations[pimv1.AnnotationDeactivate]; ok && ar.Status.State == pimv1.ActivationStateActive {
		return r.end(ctx, ar, now, pimv1.ActivationStateDeactivated, "Deactivated", fmt.Sprintf("deactivated by %s: %s", ar.Annotations[pimv1.AnnotationDeactivatedBy], reason))
	}
	_, cancel := ar.Annotations[pimv1.AnnotationCancel]
	_, deactivate := ar.Annotations[pimv1.AnnotationDeactivate]
	if cancel || deactivate {
		by := ar.Annotations[pimv1.AnnotationCancelledBy]
		if by == "" {
			by = ar.Annotations[pimv1.AnnotationDeactivatedBy]
		}
		if ar.Status.State == pimv1.ActivationStateActive {
			return r.end(ctx, ar, now, pimv1.ActivationStateDeactivated, "Deactivated", "cancelled by "+by+" while active")
		}
		return r.end(ctx, ar, now, pimv1.ActivationStateCancelled, "Cancelled", "cancelled by "+by+" before it was active")
	}

	if ar.Status.State == pimv1.ActivationStateActive {
		if successor, err := r.activeSuccessor(ctx, ar); err != nil {
			return time.Time{}, err
		} else if successor != "" {
			return r.end(ctx, ar, now, pimv1.ActivationStateExpired, "Extended", "extended by ActivationRequest "+successor)
		}
	}

	eligible, err := r.eligibility(ctx, ar, now)
	if err != nil {
		var policyErr *policyError
		if errors.As(err, &policyErr) {
			return r.end(ctx, ar, now, pimv1.ActivationStateFailed, "EligibilityEnded", policyErr.Error())
		}
		return time.Time{}, err
	}

	if ar.Status.ActivatedAt == nil {
		// Not started yet: the approvers have their say first.
		if next, proceed, err := r.approval(ctx, ar, now); err != nil || !proceed {
			return next, err
		}
		if err := r.fixTiming(ctx, ar, now); err != nil {
			return time.Time{}, err
		}
	}
	window := policy.Window{Start: ar.Status.ActivatedAt.Time, End: &ar.Status.ExpiresAt.Time}
	phase, _ := window.PhaseAt(now)
	switch phase {
	case policy.BeforeStart:
		r.setState(ar, now, pimv1.ActivationStateScheduled, pimv1.ReasonScheduled, "activates at "+ar.Status.ActivatedAt.UTC().Format(time.RFC3339))
		if _, err := r.Bindings.Sync(ctx, r.owner(ar), nil); err != nil {
			return time.Time{}, err
		}
		return ar.Status.ActivatedAt.Time, r.revokeScopedRole(ctx, ar, false)
	case policy.Ended:
		return r.end(ctx, ar, now, pimv1.ActivationStateExpired, pimv1.ReasonExpired, "expired at "+ar.Status.ExpiresAt.UTC().Format(time.RFC3339))
	}
	idle, err := r.idleDeadline(ctx, ar)
	if err != nil {
		return time.Time{}, err
	}
	if !idle.IsZero() && !now.Before(idle) {
		last := "never used"
		if ar.Status.LastUsedAt != nil && !ar.Status.LastUsedAt.Before(ar.Status.ActivatedAt) {
			last = "last used " + ar.Status.LastUsedAt.UTC().Format(time.RFC3339)
		}
		return r.end(ctx, ar, now, pimv1.ActivationStateDeactivated, ReasonIdleTimeout,
			fmt.Sprintf("deactivated by kubepim: unused for the role's idle timeout of %s (%s)", idle.Sub(policy.LastActivity(ar)), last))
	}
	next, err := r.grant(ctx, ar, now, eligible)
	return policy.Earliest(next, idle), err
}

// ReasonIdleTimeout: an activation ended by its role's
// activation.idleTimeout (authorizer mode).
const ReasonIdleTimeout = "IdleTimeout"

// idleDeadline is when ar ends for want of use (activation.idleTimeout of
// its role), zero when none applies (in bindings mode uses are not seen).
// Called for a request in force, which this pass makes (or keeps) Active.
func (r *ActivationRequestReconciler) idleDeadline(ctx context.Context, ar *pimv1.ActivationRequest) (time.Time, error) {
	if r.AccessMode.BindsActivations() {
		return time.Time{}, nil
	}
	setting, _, err := lookup.EffectiveSetting(ctx, r.Client, ar.Spec.RoleRef, ar.Spec.Namespace)
	if err != nil {
		// Conflicting settings are judged (and end the request) by the
		// eligibility check; here they just set no idle deadline.
		var conflict *policy.ErrConflictingSettings
		if errors.As(err, &conflict) {
			return time.Time{}, nil
		}
		return time.Time{}, err
	}
	return policy.IdleDeadline(ar, setting.Activation.IdleTimeout), nil
}

// approval applies the role's approval policy to a request that has not
// started: it waits (PendingApproval) until enough approvers approved, and
// ends it as Denied on a denial or TimedOut after the policy's timeout. It
// returns the next deadline and whether the request may proceed to its
// activation; anything but an approval (or no need for one) stops it.
func (r *ActivationRequestReconciler) approval(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time) (time.Time, bool, error) {
	setting, _, err := lookup.EffectiveSetting(ctx, r.Client, ar.Spec.RoleRef, ar.Spec.Namespace)
	if err != nil {
		var conflict *policy.ErrConflictingSettings
		if errors.As(err, &conflict) {
			next, err := r.end(ctx, ar, now, pimv1.ActivationStateFailed, pimv1.ReasonMultipleSettings, err.Error())
			return next, false, err
		}
		return time.Time{}, false, err
	}
	p := setting.Activation.Approval
	if !p.Required {
		return time.Time{}, true, nil
	}
	records, err := r.verifiedRecords(ctx, ar, now)
	if err != nil {
		return time.Time{}, false, err
	}
	ar.Status.Approvals = records
	outcome, approvals := policy.CountApprovals(p, ar.RequesterName(), records)
	switch outcome {
	case policy.Approved:
		conditionsOf(&ar.Status.Conditions, ar.Generation, now).markTrue(pimv1.ConditionApproved, "Approved", "approved by "+approverNames(records, pimv1.DecisionApprove))
		return time.Time{}, true, nil
	case policy.Denied:
		msg := "denied by " + approverNames(records, pimv1.DecisionDeny)
		conditionsOf(&ar.Status.Conditions, ar.Generation, now).markFalse(pimv1.ConditionApproved, "Denied", msg)
		next, err := r.end(ctx, ar, now, pimv1.ActivationStateDenied, "Denied", msg)
		return next, false, err
	}
	if ar.Status.ApprovalDeadline == nil {
		ar.Status.ApprovalDeadline = &metav1.Time{Time: now.Add(p.Timeout.Duration).Truncate(time.Second)}
	}
	deadline := ar.Status.ApprovalDeadline.Time
	if !now.Before(deadline) {
		next, err := r.end(ctx, ar, now, pimv1.ActivationStateTimedOut, "TimedOut", fmt.Sprintf("no decision within %s", p.Timeout.Duration))
		return next, false, err
	}
	msg := fmt.Sprintf("waiting for approval: %d of %d", approvals, max(p.RequiredApprovals, 1))
	r.setState(ar, now, pimv1.ActivationStatePendingApproval, "PendingApproval", msg)
	conditionsOf(&ar.Status.Conditions, ar.Generation, now).markFalse(pimv1.ConditionApproved, "PendingApproval", msg)
	return deadline, false, nil
}

// verifiedRecords returns the approval records whose signature verifies.
// A record that does not verify was written around kubepim's webhook: it
// counts for nothing, and is raised as a Warning and in the audit trail.
func (r *ActivationRequestReconciler) verifiedRecords(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time) ([]pimv1.ApprovalRecord, error) {
	signed, err := approval.Parse(ar)
	if err != nil {
		r.Recorder.Eventf(ar, nil, corev1.EventTypeWarning, "ForgedApproval", "Approval", "%s", err.Error())
		return nil, nil
	}
	key, err := r.Keys.Key(ctx)
	if err != nil {
		return nil, err
	}
	var records []pimv1.ApprovalRecord
	for _, s := range signed {
		if approval.Verify(key, ar.UID, s) {
			records = append(records, s.Record)
			continue
		}
		msg := fmt.Sprintf("ignored an approval record by %q that kubepim did not sign", s.Record.Approver.Username)
		r.Recorder.Eventf(ar, nil, corev1.EventTypeWarning, "ForgedApproval", "Approval", "%s", msg)
		alert := r.auditEntry(ar, "")
		alert.Action, alert.Actor, alert.Outcome, alert.Reason, alert.Discriminator = pimv1.AuditAlertRaised, nil, pimv1.AuditOutcomeFailure, msg, s.Signature
		if err := r.Audit.Record(ctx, alert); err != nil {
			return nil, err
		}
	}
	return records, nil
}

func approverNames(records []pimv1.ApprovalRecord, decision pimv1.ApprovalDecision) string {
	var names []string
	for _, r := range records {
		if r.Decision == decision {
			names = append(names, r.Approver.Username+" ("+r.Reason+")")
		}
	}
	return strings.Join(names, ", ")
}

// grant keeps the binding while the request is in force (in authorizer
// mode none: the Active status with its window is the grant, and any
// binding left from bindings mode goes).
func (r *ActivationRequestReconciler) grant(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time, eligible *pimv1.RoleAssignment) (time.Time, error) {
	if problems, err := r.scopeProblems(ctx, ar); err != nil {
		return time.Time{}, err
	} else if len(problems) > 0 {
		// Deny by default: a subset the role no longer covers is not
		// granted (nor kept) at all.
		return r.end(ctx, ar, now, pimv1.ActivationStateFailed, ReasonScopeNotCovered,
			"the role no longer allows the reduced scope this request asked for: "+policy.ScopeError(problems).Error())
	}
	var want client.Object
	if r.AccessMode.BindsActivations() {
		key, err := r.Keys.Key(ctx)
		if err != nil {
			return time.Time{}, err
		}
		want = grant.ForActivation(ar, grant.TimingAnnotations(key, ar, ar.Status.ActivatedAt.Time, ar.Status.ExpiresAt.Time))
		if role := grant.ForScope(ar); role != nil {
			// The role first, then the binding to it.
			known, err := r.knownGeneratedRole(ctx, ar)
			if err != nil {
				return time.Time{}, err
			}
			ref, err := r.Bindings.EnsureRole(ctx, r.owner(ar), role, known, want)
			var unsafe *grant.ErrScopedRoleUnsafe
			if errors.As(err, &unsafe) {
				// Deny by default: a role others could have bound while
				// narrower (or under its name) is never (re)written wider.
				return r.end(ctx, ar, now, pimv1.ActivationStateFailed, ReasonGeneratedRoleUnsafe, unsafe.Error())
			}
			if err != nil {
				return time.Time{}, err
			}
			ar.Status.GeneratedRole = ref
		}
	}
	outcome, err := r.Bindings.Sync(ctx, r.owner(ar), want)
	if err != nil {
		return time.Time{}, err
	}
	ar.Status.Binding = outcome.Binding
	if !r.AccessMode.BindsActivations() {
		// A role generated in bindings mode goes with its binding.
		if err := r.revokeScopedRole(ctx, ar, false); err != nil {
			return time.Time{}, err
		}
	}
	grantedBy := "granted by kubepim's authorizer (no binding)"
	if outcome.Binding != nil {
		grantedBy = "bound by " + outcome.Binding.Kind + " " + outcome.Binding.Name
	}
	if policy.IsReduced(ar) {
		grantedBy += "; reduced scope: " + policy.ScopeSummary(ar.Spec.Permissions)
		if ar.Status.GeneratedRole != nil {
			grantedBy += " (" + ar.Status.GeneratedRole.Kind + " " + ar.Status.GeneratedRole.Name + ")"
		}
	}
	if ar.Status.State != pimv1.ActivationStateActive {
		activationGrantSeconds.Observe(now.Sub(latest(ar.CreationTimestamp.Time, ar.Status.ActivatedAt.Time)).Seconds())
		activationsTotal.WithLabelValues(ar.Spec.RoleRef.Name, "Activated").Inc()
	}
	r.setState(ar, now, pimv1.ActivationStateActive, pimv1.ReasonActivated, "active until "+ar.Status.ExpiresAt.UTC().Format(time.RFC3339))
	conditionsOf(&ar.Status.Conditions, ar.Generation, now).markTrue(pimv1.ConditionGranted, pimv1.ReasonActivated, grantedBy)
	var eligibleEnd time.Time
	if eligible != nil && eligible.Spec.EndTime != nil {
		eligibleEnd = eligible.Spec.EndTime.Time
	}
	return policy.Earliest(ar.Status.ExpiresAt.Time, eligibleEnd), nil
}

// ReasonScopeNotCovered: a reduced-scope activation whose role no longer
// allows all it asked for is ended (it is never granted more than the
// role).
const ReasonScopeNotCovered = "ScopeNotCovered"

// ReasonGeneratedRoleUnsafe: the role generated for a reduced scope was
// deleted, replaced or narrowed by someone else, or a binding someone
// else made already refers to its name; writing it would widen what
// that binding grants (grant.ErrScopedRoleUnsafe), so the request ends.
const ReasonGeneratedRoleUnsafe = "GeneratedRoleUnsafe"

// scopeProblems checks a reduced-scope request against its role's
// current rules (none for a request of the whole role).
func (r *ActivationRequestReconciler) scopeProblems(ctx context.Context, ar *pimv1.ActivationRequest) ([]policy.ScopeProblem, error) {
	if !policy.IsReduced(ar) {
		return nil, nil
	}
	rs, _, err := lookup.RoleRules(ctx, r.Client, ar.Spec.RoleRef.Kind, ar.Spec.RoleRef.Name, ar.Spec.Namespace)
	if client.IgnoreNotFound(err) != nil {
		return nil, err
	}
	return policy.CheckScope(ar.Spec.RoleRef, ar.Spec.Namespace, rs, err == nil, ar.Spec.Permissions), nil
}

// knownGeneratedRole is the generated role ar's status records. When the
// cached status records none, it is read again from the API server: the
// pass after the one that created the role may see a cache behind that
// status write, and an unrecorded role is judged strictly (any binding
// others made to it ends the request; EnsureRole).
func (r *ActivationRequestReconciler) knownGeneratedRole(ctx context.Context, ar *pimv1.ActivationRequest) (*pimv1.GeneratedRoleReference, error) {
	if ar.Status.GeneratedRole != nil {
		return ar.Status.GeneratedRole, nil
	}
	fresh := &pimv1.ActivationRequest{}
	if err := r.Bindings.APIReader.Get(ctx, client.ObjectKeyFromObject(ar), fresh); err != nil {
		return nil, err
	}
	if fresh.UID != ar.UID {
		return nil, nil
	}
	return fresh.Status.GeneratedRole, nil
}

// revokeScopedRole deletes the role generated for a reduced-scope request
// (after its binding: callers revoke that first), read from the API
// server: always when the request ends or goes, otherwise only while its
// status records one (no read per pass for nothing).
func (r *ActivationRequestReconciler) revokeScopedRole(ctx context.Context, ar *pimv1.ActivationRequest, always bool) error {
	role := grant.ForScope(ar)
	if role == nil || (!always && ar.Status.GeneratedRole == nil) {
		return nil
	}
	if _, err := r.Bindings.RevokeRole(ctx, r.owner(ar), role, ar.Status.GeneratedRole); err != nil {
		return err
	}
	ar.Status.GeneratedRole = nil
	return nil
}

// fixTiming sets activatedAt and expiresAt, in whole seconds. They are
// stored with this pass's status; a grant in this pass also stamps them,
// signed, on the binding (in the binding's own create), so the deadline is
// on record wherever access exists: a manager that dies after granting and
// before storing the status finds them there, and revokes on time.
func (r *ActivationRequestReconciler) fixTiming(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time) error {
	w := policy.RequestedWindow(ar, now)
	granted, err := r.grantedTiming(ctx, ar, now)
	if err != nil {
		return err
	}
	if granted != nil {
		w = *granted
	}
	ar.Status.ActivatedAt = &metav1.Time{Time: w.Start}
	ar.Status.ExpiresAt = &metav1.Time{Time: *w.End}
	return nil
}

// grantedTiming reads the timing kubepim stamped on the binding it granted
// this very request with, if any. Anyone who may create a binding
// anywhere can dress one up with kubepim's labels and annotations, so a
// timing counts only on the binding this request is granted with (its
// deterministic name, kind and namespace), signed by kubepim for this
// request's UID and that binding, and of the request's own length.
// Anything else is ignored, with a Warning: the request then runs on the
// window computed now, and the forged binding is revoked by the grant's
// Sync like any other binding that is not the wanted one.
func (r *ActivationRequestReconciler) grantedTiming(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time) (*policy.Window, error) {
	owned, err := r.Bindings.Owned(ctx, r.owner(ar))
	if err != nil {
		return nil, err
	}
	want := grant.ForActivation(ar, nil)
	for _, b := range owned {
		if !grant.SameBinding(b, want) || b.GetLabels()[pimv1.LabelOwnerUID] != string(ar.UID) {
			continue
		}
		key, err := r.Keys.Key(ctx)
		if err != nil {
			return nil, err
		}
		start, end, stamped, signed := grant.StampedTiming(key, ar.UID, b)
		if !stamped {
			continue
		}
		w := policy.Window{Start: start, End: &end}
		if !signed {
			r.Recorder.Eventf(ar, nil, corev1.EventTypeWarning, "ForgedTiming", "Activation",
				"ignored the timing on %s: kubepim did not sign it", grant.Reference(b).Kind+" "+b.GetName())
			continue
		}
		if err := policy.RecoveredWindowFits(ar, w, now); err != nil {
			r.Recorder.Eventf(ar, nil, corev1.EventTypeWarning, "ForgedTiming", "Activation",
				"ignored the timing on %s: %s", grant.Reference(b).Kind+" "+b.GetName(), err.Error())
			continue
		}
		return &w, nil
	}
	return nil, nil
}

// end moves the request to a final state and removes its binding.
func (r *ActivationRequestReconciler) end(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time, state pimv1.ActivationState, reason, message string) (time.Time, error) {
	outcome, err := r.Bindings.Sync(ctx, r.owner(ar), nil)
	if err != nil {
		return time.Time{}, err
	}
	if ref := ar.Status.Binding; outcome.Removed == 0 && ref != nil {
		// The cache may not hold the binding yet (its watch lagging after
		// an API server restart, say), and the binding's late create event
		// is taken for the echo of the grant: revoke what status says was
		// granted, read from the API server.
		removed, err := r.Bindings.RevokeRef(ctx, ref)
		if err != nil {
			return time.Time{}, err
		}
		if removed {
			outcome.Removed++
		}
	}
	if outcome.Removed > 0 && state == pimv1.ActivationStateExpired && ar.Status.ExpiresAt != nil {
		// Until the DELETE returned, not the pass's start.
		revocationLagSeconds.Observe(r.Clock.Now().Sub(ar.Status.ExpiresAt.Time).Seconds())
	}
	// The binding first, then the role it refers to.
	if err := r.revokeScopedRole(ctx, ar, true); err != nil {
		return time.Time{}, err
	}
	ar.Status.Binding = nil
	ar.Status.EndedAt = &metav1.Time{Time: now.Truncate(time.Second)}
	activationsTotal.WithLabelValues(ar.Spec.RoleRef.Name, string(state)).Inc()
	r.setState(ar, now, state, reason, message)
	conditionsOf(&ar.Status.Conditions, ar.Generation, now).markFalse(pimv1.ConditionGranted, reason, message)
	return ar.Status.EndedAt.Add(r.Retention), nil
}

// keepHistory makes sure an ended request grants nothing, and deletes it
// once its retention has passed.
func (r *ActivationRequestReconciler) keepHistory(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time) (time.Time, error) {
	if _, err := r.Bindings.Sync(ctx, r.owner(ar), nil); err != nil {
		return time.Time{}, err
	}
	if err := r.revokeScopedRole(ctx, ar, false); err != nil {
		return time.Time{}, err
	}
	if ar.Status.EndedAt == nil {
		return time.Time{}, nil
	}
	pruneAt := ar.Status.EndedAt.Add(r.Retention)
	if now.Before(pruneAt) {
		return pruneAt, nil
	}
	uid := ar.UID
	return time.Time{}, client.IgnoreNotFound(r.Delete(ctx, ar, client.Preconditions{UID: &uid}))
}

// policyError is a reason the policy no longer holds: the request fails.
type policyError struct{ error }

// eligibility finds the eligible assignment that still lets the requester
// hold the role now.
func (r *ActivationRequestReconciler) eligibility(ctx context.Context, ar *pimv1.ActivationRequest, now time.Time) (*pimv1.RoleAssignment, error) {
	if ar.Spec.Requester == nil || ar.Spec.Requester.Username == "" {
		return nil, &policyError{errors.New("the request has no requester: it was not admitted by kubepim's webhook")}
	}
	// The requester's own assignments, not every assignment of the role
	// (thousands may be eligible for one role; see the admission webhook).
	assignments, err := lookup.AssignmentsFor(ctx, r.Client, *ar.Spec.Requester)
	if err != nil {
		return nil, err
	}
	instant := policy.Window{Start: now, End: &now}
	eligible, err := policy.EligibilityFor(*ar.Spec.Requester, ar.Spec.RoleRef, ar.Spec.Namespace, instant, now, assignments)
	if err != nil {
		return nil, &policyError{fmt.Errorf("the eligibility this request relied on has ended or was removed: %w", err)}
	}
	return eligible, nil
}

// activeSuccessor names an Active request that extends ar, if any.
func (r *ActivationRequestReconciler) activeSuccessor(ctx context.Context, ar *pimv1.ActivationRequest) (string, error) {
	var list pimv1.ActivationRequestList
	if err := r.List(ctx, &list, client.MatchingFields{lookup.ActivationByExtends: ar.Name}); err != nil {
		return "", err
	}
	for _, s := range list.Items {
		if s.Status.State == pimv1.ActivationStateActive && s.Spec.Requester != nil && ar.Spec.Requester != nil &&
			s.Spec.Requester.Username == ar.Spec.Requester.Username {
			return s.Name, nil
		}
	}
	return "", nil
}

func (r *ActivationRequestReconciler) setState(ar *pimv1.ActivationRequest, now time.Time, state pimv1.ActivationState, reason, message string) {
	ar.Status.State = state
	// The same bound as a condition's: the message quotes reasons.
	ar.Status.Message = policy.Truncate(message, MaxConditionMessageLength)
	ar.Status.ObservedGeneration = ar.Generation
	conds := conditionsOf(&ar.Status.Conditions, ar.Generation, now)
	conds.mark(pimv1.ConditionReady, state != pimv1.ActivationStateFailed, reason, message)
	conds.stalled(state == pimv1.ActivationStateFailed, reason, message)
}

// announce records each state change in the audit trail and as an Event
// (but for the scheduled expiry of an activation).
// A pass can take a new request straight to Active: its request is
// recorded too.
func (r *ActivationRequestReconciler) announce(ctx context.Context, before, after *pimv1.ActivationRequest) error {
	if err := r.announceDecisions(ctx, before, after); err != nil {
		return err
	}
	from, to := before.Status.State, after.Status.State
	if from == to {
		return nil
	}
	if from == "" {
		if err := r.Audit.Record(ctx, r.auditEntry(after, pimv1.ActivationStatePending)); err != nil {
			return err
		}
	}
	if to != pimv1.ActivationStatePending {
		if err := r.Audit.Record(ctx, r.auditEntry(after, to)); err != nil {
			return err
		}
	}
	if ready := meta.FindStatusCondition(after.Status.Conditions, pimv1.ConditionReady); from == pimv1.ActivationStateActive &&
		to == pimv1.ActivationStateExpired && ready != nil && ready.Reason == pimv1.ReasonExpired {
		// An expiry at the instant the Activated Event announced ("active
		// until ...") tells nothing new: status and the audit trail record
		// it, and the Event would be one more write per activation.
		return nil
	}
	kind := corev1.EventTypeNormal
	if to == pimv1.ActivationStateFailed {
		kind = corev1.EventTypeWarning
	}
	reason := string(to)
	switch to {
	case pimv1.ActivationStatePending:
		reason = "Requested"
	case pimv1.ActivationStateActive:
		reason = pimv1.ReasonActivated
	}
	r.Recorder.Eventf(after, nil, kind, reason, "Activation", "%s for %s: %s", after.RequesterName(),
		policy.RoleDescription(after.Spec.RoleRef, after.Spec.Namespace), after.Status.Message)
	return nil
}

// announceDecisions records each approver's decision once.
func (r *ActivationRequestReconciler) announceDecisions(ctx context.Context, before, after *pimv1.ActivationRequest) error {
	for _, rec := range after.Status.Approvals[min(len(before.Status.Approvals), len(after.Status.Approvals)):] {
		e := r.auditEntry(after, "")
		e.Action, e.Actor, e.Reason, e.Discriminator = pimv1.AuditApproved, &rec.Approver, rec.Reason, rec.Approver.Username
		if rec.Decision == pimv1.DecisionDeny {
			e.Action = pimv1.AuditDenied
		}
		e.Details = map[string]string{"decidedAt": rec.Time.UTC().Format(time.RFC3339)}
		if err := r.Audit.Record(ctx, e); err != nil {
			return err
		}
		approvalsTotal.WithLabelValues(string(rec.Decision)).Inc()
		r.Recorder.Eventf(after, nil, corev1.EventTypeNormal, string(rec.Decision), "Approval", "%s: %s (%s)", rec.Approver.Username, rec.Decision, rec.Reason)
	}
	if before.Status.State == pimv1.ActivationStatePendingApproval && after.Status.State != pimv1.ActivationStatePendingApproval {
		decisionSeconds.Observe(after.Status.EndedAtOr(r.Clock.Now()).Sub(after.CreationTimestamp.Time).Seconds())
	}
	return nil
}

// auditEntry describes the move of ar into state for the audit trail.
func (r *ActivationRequestReconciler) auditEntry(ar *pimv1.ActivationRequest, state pimv1.ActivationState) audit.Entry {
	e := audit.Entry{
		Target: ar, TargetKind: "ActivationRequest",
		RoleRef: &ar.Spec.RoleRef, Namespace: ar.Spec.Namespace,
		Reason: ar.Status.Message,
	}
	if ar.Spec.Requester != nil {
		e.Subject = &pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: ar.Spec.Requester.Username}
	}
	byAnnotation := func(key string) *pimv1.UserInfo {
		if name := ar.Annotations[key]; name != "" {
			return &pimv1.UserInfo{Username: name}
		}
		return nil
	}
	switch state {
	case pimv1.ActivationStatePending:
		e.Action, e.Actor = pimv1.AuditActivationRequested, ar.Spec.Requester
		e.Justification, e.Ticket, e.Reason = ar.Spec.Justification, ar.Spec.Ticket, ""
		e.Details = map[string]string{"duration": ar.Spec.Duration.Duration.String()}
		if ar.Spec.StartTime != nil {
			e.Details["startTime"] = ar.Spec.StartTime.UTC().Format(time.RFC3339)
		}
		if ar.Spec.MFA != nil {
			e.Details["mfa"] = ar.Spec.MFA.Method
		}
		if ar.Spec.Extends != "" {
			e.Details["extends"] = ar.Spec.Extends
		}
		if policy.IsReduced(ar) {
			e.Details["scope"] = policy.ScopeSummary(ar.Spec.Permissions)
		}
	case pimv1.ActivationStateActive:
		e.Action = pimv1.AuditActivated
		e.Details = map[string]string{"activatedAt": ar.Status.ActivatedAt.UTC().Format(time.RFC3339), "expiresAt": ar.Status.ExpiresAt.UTC().Format(time.RFC3339)}
		if ar.Status.Binding != nil {
			e.Details["binding"] = ar.Status.Binding.Kind + "/" + ar.Status.Binding.Name
		}
		if policy.IsReduced(ar) {
			e.Details["scope"] = policy.ScopeSummary(ar.Spec.Permissions)
		}
		if ar.Status.GeneratedRole != nil {
			e.Details["generatedRole"] = ar.Status.GeneratedRole.Kind + "/" + ar.Status.GeneratedRole.Name
		}
	case pimv1.ActivationStateExpired:
		e.Action = pimv1.AuditExpired
		if c := meta.FindStatusCondition(ar.Status.Conditions, pimv1.ConditionReady); c != nil && c.Reason == "Extended" {
			e.Action = pimv1.AuditExtended
		}
	case pimv1.ActivationStateDeactivated:
		e.Action, e.Actor = pimv1.AuditDeactivated, byAnnotation(pimv1.AnnotationDeactivatedBy)
		if e.Actor == nil {
			e.Actor = byAnnotation(pimv1.AnnotationCancelledBy)
		}
	case pimv1.ActivationStateCancelled:
		e.Action, e.Actor = pimv1.AuditCancelled, byAnnotation(pimv1.AnnotationCancelledBy)
		if e.Actor == nil {
			e.Actor = byAnnotation(pimv1.AnnotationDeactivatedBy)
		}
	case pimv1.ActivationStateDenied:
		// Each denial is recorded with its approver; this is the request's end.
		e.Action, e.Outcome, e.Discriminator = pimv1.AuditDenied, pimv1.AuditOutcomeFailure, "request"
	case pimv1.ActivationStateTimedOut:
		e.Action, e.Outcome = pimv1.AuditTimedOut, pimv1.AuditOutcomeFailure
	case pimv1.ActivationStateFailed:
		e.Action, e.Outcome = pimv1.AuditFailed, pimv1.AuditOutcomeFailure
	default:
		e.Action = string(state)
	}
	return e
}

func (r *ActivationRequestReconciler) owner(ar *pimv1.ActivationRequest) grant.Owner {
	return grant.OwnerOfActivation(ar)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// SetupWithManager watches ActivationRequests, the assignments they rely on,
// the requests they extend and the bindings they own.
func (r *ActivationRequestReconciler) SetupWithManager(mgr ctrl.Manager) error {
	activeCollector.reader = mgr.GetClient()
	ownedBindings := enqueueBindingOwner("ActivationRequest", r.Bindings)
	// An eligible assignment that changes or goes may end activations at once.
	byAssignment := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		ra := obj.(*pimv1.RoleAssignment)
		var list pimv1.ActivationRequestList
		if err := r.List(ctx, &list, client.MatchingFields{lookup.ActivationByRole: lookup.RoleKey(ra.Spec.RoleRef)}); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, ar := range list.Items {
			if !policy.IsFinal(ar.Status.State) {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: ar.Name}})
			}
		}
		return reqs
	})
	// A request that becomes Active ends the one it extends.
	extended := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		if ext := obj.(*pimv1.ActivationRequest).Spec.Extends; ext != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: ext}}}
		}
		return nil
	})
	// A role that changes may no longer cover a reduced scope granted
	// from it; a generated role that changes (or goes) is repaired by its
	// request.
	byRole := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		if name := grant.OwnerName(obj, "ActivationRequest"); name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
		}
		kind := pimv1.RoleKindClusterRole
		if _, ok := obj.(*rbacv1.Role); ok {
			kind = pimv1.RoleKindRole
		}
		var list pimv1.ActivationRequestList
		if err := r.List(ctx, &list, client.MatchingFields{lookup.ActivationByRole: lookup.RoleKey(pimv1.RoleRef{Kind: kind, Name: obj.GetName()})}); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, ar := range list.Items {
			if policy.IsReduced(&ar) && !policy.IsFinal(ar.Status.State) && (kind == pimv1.RoleKindClusterRole || ar.Spec.Namespace == obj.GetNamespace()) {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: ar.Name}})
			}
		}
		return reqs
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&pimv1.ActivationRequest{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&pimv1.ActivationRequest{}, extended).
		Watches(&pimv1.RoleAssignment{}, byAssignment).
		Watches(&rbacv1.ClusterRole{}, byRole).
		Watches(&rbacv1.Role{}, byRole).
		Watches(&rbacv1.ClusterRoleBinding{}, ownedBindings).
		Watches(&rbacv1.RoleBinding{}, ownedBindings).
		WithOptions(r.Controller).
		Named("activationrequest").
		Complete(r)
}
