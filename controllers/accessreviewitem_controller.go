package controllers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// AccessReviewItemReconciler carries one reviewed assignment through its
// instance: it records each signed decision on the item (in order, each
// once, in the audit trail) and, when the instance has ended, takes the
// final decision (the reviewer's, or the review's default) and applies a
// denial. Work on one item never touches another, so 10,000 items are
// decided and closed by parallel workers, and nothing grows with the size
// of the review.
type AccessReviewItemReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Keys     *approval.Keys
	// Clock is the source of "now".
	Clock clock.PassiveClock
	// Audit records every action in the audit trail.
	Audit *audit.Recorder
	// Controller configures the controller.
	Controller controller.Options
}

// Reconcile records and applies the decisions on one item at this instant.
func (r *AccessReviewItemReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	now := r.Clock.Now()
	item := &pimv1.AccessReviewItem{}
	if err := r.Get(ctx, req.NamespacedName, item); err != nil || !item.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	rev := &pimv1.AccessReview{}
	if err := r.Get(ctx, client.ObjectKey{Name: item.Spec.Review}, rev); err != nil {
		// The garbage collector removes the items of a deleted review.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if rev.UID != types.UID(item.Spec.ReviewUID) || len(rev.Status.Items) > 0 {
		// Not this review's; or a 0.3 review whose items are being moved
		// here: the migration writes this item's first status (the
		// decision 0.3 recorded), and the review wakes the item after.
		return ctrl.Result{}, nil
	}
	before := item.DeepCopy()
	if err := r.recordDecisions(ctx, rev, item); err != nil {
		return ctrl.Result{}, err
	}
	if instanceOver(rev, item, now) {
		r.close(rev, item, now)
	}
	// Optimistic lock: a decision admitted since this pass read the item
	// must be recorded by the next pass, not closed over — and the final
	// decision is stored before it is carried out.
	r.markReady(item, now)
	if err := writeStatus(ctx, r.Client, before, item, client.MergeFromWithOptimisticLock{}); err != nil {
		return ctrl.Result{}, err
	}
	if !r.mustRemove(rev, item) {
		return ctrl.Result{}, nil
	}
	before = item.DeepCopy()
	if err := r.remove(ctx, rev, item); err != nil {
		return ctrl.Result{}, err
	}
	r.markReady(item, now)
	return ctrl.Result{}, writeStatus(ctx, r.Client, before, item, client.MergeFromWithOptimisticLock{})
}

func (r *AccessReviewItemReconciler) markReady(item *pimv1.AccessReviewItem, now time.Time) {
	item.Status.ObservedGeneration = item.Generation
	reason, message := "Open", "awaiting a decision"
	switch {
	case ptr.Deref(item.Status.Applied, false):
		reason, message = "Applied", "denied by "+item.Status.Reviewer+"; the assignment was removed"
	case ptr.Deref(item.Status.Closed, false):
		reason, message = "Closed", "final decision: "+orDash(string(item.Status.Decision))
	case item.Status.Decision != "":
		reason, message = "Decided", string(item.Status.Decision)+" by "+item.Status.Reviewer
	}
	conditionsOf(&item.Status.Conditions, item.Generation, now).markTrue(pimv1.ConditionReady, reason, message)
}

// instanceOver reports whether the item's instance has ended.
func instanceOver(rev *pimv1.AccessReview, item *pimv1.AccessReviewItem, now time.Time) bool {
	if rev.Status.Instance != item.Spec.Instance {
		return rev.Status.Instance > item.Spec.Instance
	}
	return rev.Status.DueAt != nil && !now.Before(rev.Status.DueAt.Time)
}

// recordDecisions applies the verified decisions on the item not yet
// recorded, in the order the webhook numbered them (a later one stands),
// and records each in the audit trail, exactly once and in order:
// status.decisionsRecorded is the last one recorded, and the webhook keeps
// a decision in the annotation until then.
func (r *AccessReviewItemReconciler) recordDecisions(ctx context.Context, rev *pimv1.AccessReview, item *pimv1.AccessReviewItem) error {
	signed, err := approval.ParseReview(item.Annotations[pimv1.AnnotationReviewDecisions])
	if err != nil {
		r.Recorder.Eventf(item, rev, corev1.EventTypeWarning, "ForgedDecision", "Review", "%s", err.Error())
		return nil
	}
	signed = slices.DeleteFunc(signed, func(s approval.SignedReviewRecord) bool { return s.Record.Seq <= item.Status.DecisionsRecorded })
	if len(signed) == 0 {
		return nil
	}
	key, err := r.Keys.Key(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(signed, func(a, b approval.SignedReviewRecord) int { return cmp.Compare(a.Record.Seq, b.Record.Seq) })
	for _, s := range signed {
		rec := s.Record
		switch {
		case !approval.VerifyReview(key, item.UID, s) || rec.Instance != item.Spec.Instance || rec.Item != item.Spec.ID:
			// Not kubepim's (its webhook was bypassed): it counts for
			// nothing, not even the sequence.
			r.Recorder.Eventf(item, rev, corev1.EventTypeWarning, "ForgedDecision", "Review", "ignored a decision by %q that kubepim did not sign for this item", clip(rec.Reviewer.Username, 253))
			continue
		case ptr.Deref(item.Status.Closed, false):
			// Admitted by a replica whose clock or cache was behind, after
			// this item closed: too late to count, and said so.
			r.Recorder.Eventf(item, rev, corev1.EventTypeWarning, "LateDecision", "Review", "ignored %s by %s: the item closed before it was recorded", rec.Decision, clip(rec.Reviewer.Username, 253))
		default:
			st := &item.Status
			st.Decision, st.Reviewer, st.DecidedVia, st.Reason, st.DecidedAt = rec.Decision, clip(rec.Reviewer.Username, maxStatusText), clip(rec.Via, maxStatusText), rec.Reason, rec.Time.DeepCopy()
			reviewDecisionsTotal.WithLabelValues(string(rec.Decision), "reviewer").Inc()
			reviewer := rec.Reviewer
			e := itemEntry(rev, item, rec.Decision, rec.Reason, pimv1.AuditReviewDecision, &reviewer, fmt.Sprintf("%d/%s/seq-%d", item.Spec.Instance, item.Spec.ID, rec.Seq))
			e.Details["decidedAt"] = rec.Time.UTC().Format(time.RFC3339)
			e.Details["seq"] = fmt.Sprint(rec.Seq)
			if rec.Via != "" {
				e.Details["decidedVia"] = rec.Via
			}
			if err := r.Audit.Record(ctx, e); err != nil {
				return err
			}
		}
		item.Status.DecisionsRecorded = max(item.Status.DecisionsRecorded, rec.Seq)
	}
	return nil
}

// close takes the item's final decision — the reviewer's, or the
// review's default for an undecided item — and marks it closed. It is
// stored before it is carried out (mustRemove, remove).
func (r *AccessReviewItemReconciler) close(rev *pimv1.AccessReview, item *pimv1.AccessReviewItem, now time.Time) {
	st := &item.Status
	if ptr.Deref(st.Closed, false) {
		return
	}
	if st.Decision == "" {
		if d := policy.FinalReviewDecision("", item.Spec.Recommendation, rev.Spec.Settings.DefaultDecision); d != "" {
			st.Decision, st.Reviewer, st.Reason = d, "kubepim:default", "default decision ("+string(rev.Spec.Settings.DefaultDecision)+")"
			st.DecidedAt = &metav1.Time{Time: now.Truncate(time.Second)}
			reviewDecisionsTotal.WithLabelValues(string(d), "default").Inc()
		}
	}
	st.Closed = ptr.To(true)
}

// mustRemove reports whether the item's stored final decision removes its
// assignment and that is not done yet.
func (r *AccessReviewItemReconciler) mustRemove(rev *pimv1.AccessReview, item *pimv1.AccessReviewItem) bool {
	st := item.Status
	return ptr.Deref(st.Closed, false) && st.Decision == pimv1.ReviewDecisionDeny && !ptr.Deref(st.Applied, false) && rev.Spec.Settings.AutoApplies()
}

// remove carries out a stored denial: it deletes the assignment reviewed
// (its UID is a precondition of the delete, so one created since under the
// same name stays) and records it.
func (r *AccessReviewItemReconciler) remove(ctx context.Context, rev *pimv1.AccessReview, item *pimv1.AccessReviewItem) error {
	st := &item.Status
	applied := itemEntry(rev, item, st.Decision, st.Reason, pimv1.AuditReviewApplied, nil, fmt.Sprintf("%d/%s", item.Spec.Instance, item.Spec.ID))
	applied.Details["decidedBy"] = st.Reviewer
	applied.Details["reviewSetBy"] = rev.Annotations[pimv1.AnnotationChangedBy]
	if err := r.Audit.Record(ctx, applied); err != nil {
		return err
	}
	uid := types.UID(item.Spec.AssignmentUID)
	ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: item.Spec.Assignment}}
	if err := r.Delete(ctx, ra, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	st.Applied = ptr.To(true)
	reviewRemovalsTotal.Inc()
	r.Recorder.Eventf(item, rev, corev1.EventTypeNormal, "Removed", "Review", "removed RoleAssignment %s (%s %s): denied by %s",
		item.Spec.Assignment, item.Spec.Subject.Kind, item.Spec.Subject.Name, clip(st.Reviewer, 253))
	return nil
}

// maxStatusText is the longest a reviewer's name or decidedVia may be in
// an item's status (the CRD's limit); longer ones are cut, so that the
// status write never fails on them.
const maxStatusText = 1024

// clip cuts s to at most n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// itemStatusChanged passes item events that change what a review counts.
var itemStatusChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*pimv1.AccessReviewItem), e.ObjectNew.(*pimv1.AccessReviewItem)
		return o.Status.Decision != n.Status.Decision || !ptr.Equal(o.Status.Closed, n.Status.Closed) || !ptr.Equal(o.Status.Applied, n.Status.Applied)
	},
	CreateFunc:  func(event.CreateEvent) bool { return true },
	DeleteFunc:  func(event.DeleteEvent) bool { return true },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// reviewMoved passes review events that change what its items do: a new
// instance, a new due time, a new state (closing), a migration done.
var reviewMoved = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld.(*pimv1.AccessReview), e.ObjectNew.(*pimv1.AccessReview)
		return o.Status.State != n.Status.State || o.Status.Instance != n.Status.Instance || !o.Status.DueAt.Equal(n.Status.DueAt) ||
			len(o.Status.Items) != len(n.Status.Items)
	},
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}

// SetupWithManager watches items (decisions arrive as annotation changes)
// and their reviews (an instance closing wakes each of its items).
func (r *AccessReviewItemReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&pimv1.AccessReviewItem{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&pimv1.AccessReview{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			rev := obj.(*pimv1.AccessReview)
			var items pimv1.AccessReviewItemList
			if err := mgr.GetClient().List(ctx, &items, client.MatchingFields{lookup.ItemByReviewInstance: lookup.ReviewInstanceKey(string(rev.UID), rev.Status.Instance)},
				client.UnsafeDisableDeepCopy); err != nil {
				return nil
			}
			reqs := make([]reconcile.Request, 0, len(items.Items))
			for i := range items.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: items.Items[i].Name}})
			}
			return reqs
		}), builder.WithPredicates(reviewMoved)).
		WithOptions(r.Controller).
		Named("accessreviewitem").
		Complete(r)
}
