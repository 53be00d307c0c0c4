package controllers

import (
	"cmp"
	"context"
	"fmt"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// AccessReviewReconciler runs access reviews: each instance snapshots the
// assignments in scope with a recommendation, folds in the reviewers'
// signed decisions, and when it closes applies the decisions (removing
// denied assignments when autoApply is set) and schedules the next one.
type AccessReviewReconciler struct {
	client.Client
	Recorder events.EventRecorder
	Keys     *approval.Keys
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

// +kubebuilder:rbac:groups=kubepim.io,resources=accessreviews,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubepim.io,resources=accessreviews/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kubepim.io,resources=roleassignments,verbs=delete

// Reconcile advances one AccessReview at this instant.
func (r *AccessReviewReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	now := r.Clock.Now()
	rev := &pimv1.AccessReview{}
	if err := r.Get(ctx, req.NamespacedName, rev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := rev.DeepCopy()
	next, err := r.advance(ctx, rev, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	rev.Status.ObservedGeneration = rev.Generation
	rev.Status.Progress = fmt.Sprintf("%d/%d", rev.Status.Reviewed, rev.Status.Total)
	conditionsOf(&rev.Status.Conditions, rev.Generation, now).markTrue(pimv1.ConditionReady, string(rev.Status.State), "instance "+fmt.Sprint(rev.Status.Instance))
	if before.Status.ObservedGeneration != rev.Generation {
		if err := r.Audit.Record(ctx, reviewChangeEntry(rev, before.Status.ObservedGeneration == 0)); err != nil {
			return ctrl.Result{}, err
		}
	}
	if before.Status.State != rev.Status.State {
		r.Recorder.Eventf(rev, nil, corev1.EventTypeNormal, string(rev.Status.State), "Review", "instance %d is %s (%s reviewed)", rev.Status.Instance, rev.Status.State, rev.Status.Progress)
	}
	// Optimistic lock: a decision admitted since this pass read the review
	// must be folded in by the next pass, not closed over.
	if err := writeStatus(ctx, r.Client, before, rev, client.MergeFromWithOptimisticLock{}); err != nil {
		return ctrl.Result{}, err
	}
	if next.IsZero() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{RequeueAfter: policy.RequeueAfter(now, next, r.MaxRequeue)}, nil
}

// advance runs the instance lifecycle and returns the next deadline.
func (r *AccessReviewReconciler) advance(ctx context.Context, rev *pimv1.AccessReview, now time.Time) (time.Time, error) {
	first := firstStart(rev)
	if rev.Spec.StartTime != nil {
		first = rev.Spec.StartTime.Time
	}
	if rev.Status.Instance == 0 {
		rev.Status.Instance = 1
	}
	closed := rev.Status.State == pimv1.ReviewStateApplied || rev.Status.State == pimv1.ReviewStateCompleted
	if closed {
		if !policy.HasInstance(rev.Spec, first, rev.Status.Instance+1) {
			// The last instance is over: the review stays as its record.
			rev.Status.NextStart = nil
			return time.Time{}, nil
		}
		nextStart, _ := policy.ReviewInstance(rev.Spec, first, rev.Status.Instance+1)
		rev.Status.NextStart = &metav1.Time{Time: nextStart}
		if now.Before(nextStart) {
			return nextStart, nil
		}
		rev.Status.Instance++
		rev.Status.Items, rev.Status.StartedAt, rev.Status.NextStart = nil, nil, nil
	}
	start, due := policy.ReviewInstance(rev.Spec, first, rev.Status.Instance)
	rev.Status.DueAt = &metav1.Time{Time: due}
	if now.Before(start) {
		rev.Status.State = pimv1.ReviewStateScheduled
		return start, nil
	}
	if rev.Status.StartedAt == nil {
		items, err := r.snapshot(ctx, rev, now)
		if err != nil {
			return time.Time{}, err
		}
		rev.Status.Items, rev.Status.StartedAt, rev.Status.State = items, &metav1.Time{Time: start}, pimv1.ReviewStateInProgress
	}
	if err := r.foldDecisions(ctx, rev); err != nil {
		return time.Time{}, err
	}
	if now.Before(due) {
		rev.Status.State = pimv1.ReviewStateInProgress
		return due, nil
	}
	if err := r.close(ctx, rev, now); err != nil {
		return time.Time{}, err
	}
	if !policy.HasInstance(rev.Spec, first, rev.Status.Instance+1) {
		rev.Status.NextStart = nil
		return time.Time{}, nil
	}
	nextStart, _ := policy.ReviewInstance(rev.Spec, first, rev.Status.Instance+1)
	rev.Status.NextStart = &metav1.Time{Time: nextStart}
	return nextStart, nil
}

func firstStart(rev *pimv1.AccessReview) time.Time {
	if rev.Spec.StartTime != nil {
		return rev.Spec.StartTime.Time
	}
	return rev.CreationTimestamp.Time
}

// snapshot lists the assignments in scope, each with a recommendation.
func (r *AccessReviewReconciler) snapshot(ctx context.Context, rev *pimv1.AccessReview, now time.Time) ([]pimv1.ReviewItem, error) {
	roles := slices.Clone(rev.Spec.Scope.RoleRefs)
	if sel := rev.Spec.Scope.RoleSettingSelector; sel != nil {
		selector, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return nil, err
		}
		var settings pimv1.RoleSettingList
		if err := r.List(ctx, &settings, client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return nil, err
		}
		for _, rs := range settings.Items {
			roles = append(roles, pimv1.RoleRef{Kind: rs.Spec.RoleRef.Kind, Name: rs.Spec.RoleRef.Name})
		}
	}
	var items []pimv1.ReviewItem
	seen := map[types.UID]bool{}
	for _, role := range roles {
		assignments, err := lookup.AssignmentsOf(ctx, r.Client, role)
		if err != nil {
			return nil, err
		}
		var activations pimv1.ActivationRequestList
		if err := r.List(ctx, &activations, client.MatchingFields{lookup.ActivationByRole: lookup.RoleKey(role)}); err != nil {
			return nil, err
		}
		for i := range assignments {
			ra := &assignments[i]
			if seen[ra.UID] || !inReviewScope(rev.Spec.Scope, ra) {
				continue
			}
			seen[ra.UID] = true
			decision, reason, last := policy.Recommend(ra, activations.Items, now, rev.Spec.Settings.Recommendation.InactiveDays)
			items = append(items, pimv1.ReviewItem{
				ID: policy.ReviewItemID(string(ra.UID)), Assignment: ra.Name, AssignmentUID: string(ra.UID),
				Subject: ra.Spec.Subject, RoleRef: ra.Spec.RoleRef, Namespace: ra.Spec.Namespace, Type: ra.Spec.Type,
				LastActivation: last, Recommendation: decision, RecommendationReason: reason,
			})
		}
	}
	slices.SortFunc(items, func(a, b pimv1.ReviewItem) int { return compareStrings(a.Assignment, b.Assignment) })
	return items, nil
}

func inReviewScope(scope pimv1.AccessReviewScope, ra *pimv1.RoleAssignment) bool {
	if !ra.DeletionTimestamp.IsZero() || ra.Status.State == pimv1.AssignmentStateExpired {
		return false
	}
	if t := scope.AssignmentTypes; t != "" && t != "Both" && t != ra.Spec.Type {
		return false
	}
	return len(scope.Namespaces) == 0 || slices.Contains(scope.Namespaces, ra.Spec.Namespace)
}

// foldDecisions applies the verified decisions of this instance to its
// items, in the order the webhook numbered them (a later decision on an
// item stands), and records each decision not recorded yet in the audit
// trail, exactly once and in order: status.decisionsRecorded is the last
// one recorded, and the webhook keeps a superseded decision in the
// annotation until then.
func (r *AccessReviewReconciler) foldDecisions(ctx context.Context, rev *pimv1.AccessReview) error {
	signed, err := approval.ParseReview(rev.Annotations[pimv1.AnnotationReviewDecisions])
	if err != nil {
		r.Recorder.Eventf(rev, nil, corev1.EventTypeWarning, "ForgedDecision", "Review", "%s", err.Error())
		return nil
	}
	defer countReviewed(rev)
	if len(signed) == 0 {
		return nil
	}
	key, err := r.Keys.Key(ctx)
	if err != nil {
		return err
	}
	// Records signed before decisions were numbered (seq 0) come first,
	// by time.
	slices.SortStableFunc(signed, func(a, b approval.SignedReviewRecord) int {
		if a.Record.Seq != b.Record.Seq {
			return cmp.Compare(a.Record.Seq, b.Record.Seq)
		}
		return a.Record.Time.Time.Compare(b.Record.Time.Time)
	})
	for _, s := range signed {
		if s.Record.Instance != rev.Status.Instance {
			continue
		}
		if !approval.VerifyReview(key, rev.UID, s) {
			r.Recorder.Eventf(rev, nil, corev1.EventTypeWarning, "ForgedDecision", "Review", "ignored a decision by %q that kubepim did not sign", s.Record.Reviewer.Username)
			continue
		}
		item := policy.ReviewItemByID(rev.Status.Items, s.Record.Item)
		if item == nil || ptr.Deref(item.Applied, false) {
			// Moot: the assignment is gone already.
			rev.Status.DecisionsRecorded = max(rev.Status.DecisionsRecorded, s.Record.Seq)
			continue
		}
		fresh := s.Record.Seq > rev.Status.DecisionsRecorded
		if s.Record.Seq == 0 {
			// Unnumbered: recorded when it changes what the item shows.
			if item.DecidedAt != nil && item.DecidedAt.After(s.Record.Time.Time) {
				continue
			}
			fresh = item.Decision != s.Record.Decision || item.Reviewer != s.Record.Reviewer.Username || item.Reason != s.Record.Reason
		}
		item.Decision, item.Reviewer, item.Reason, item.DecidedAt = s.Record.Decision, s.Record.Reviewer.Username, s.Record.Reason, s.Record.Time.DeepCopy()
		if !fresh {
			continue
		}
		reviewDecisionsTotal.WithLabelValues(string(s.Record.Decision), "reviewer").Inc()
		reviewer := s.Record.Reviewer
		disc := fmt.Sprintf("%d/%s/%s/seq-%d", rev.Status.Instance, item.ID, reviewer.Username, s.Record.Seq)
		if s.Record.Seq == 0 {
			disc = fmt.Sprintf("%d/%s/%s/%d", rev.Status.Instance, item.ID, reviewer.Username, s.Record.Time.Unix())
		}
		e := r.itemEntry(rev, item, pimv1.AuditReviewDecision, &reviewer, disc)
		e.Details["decidedAt"] = s.Record.Time.UTC().Format(time.RFC3339)
		if s.Record.Seq > 0 {
			e.Details["seq"] = fmt.Sprint(s.Record.Seq)
		}
		if err := r.Audit.Record(ctx, e); err != nil {
			return err
		}
		rev.Status.DecisionsRecorded = max(rev.Status.DecisionsRecorded, s.Record.Seq)
	}
	return nil
}

func countReviewed(rev *pimv1.AccessReview) {
	reviewed := int32(0)
	for _, item := range rev.Status.Items {
		if item.Decision != "" {
			reviewed++
		}
	}
	rev.Status.Reviewed, rev.Status.Total = reviewed, int32(len(rev.Status.Items))
}

// close applies the final decisions of an instance that has ended.
func (r *AccessReviewReconciler) close(ctx context.Context, rev *pimv1.AccessReview, now time.Time) error {
	rev.Status.State = pimv1.ReviewStateCompleted
	for i := range rev.Status.Items {
		item := &rev.Status.Items[i]
		if item.Decision == "" {
			if d := policy.FinalReviewDecision(*item, rev.Spec.Settings.DefaultDecision); d != "" {
				item.Decision, item.Reviewer, item.Reason = d, "kubepim:default", "default decision ("+string(rev.Spec.Settings.DefaultDecision)+")"
				item.DecidedAt = &metav1.Time{Time: now.Truncate(time.Second)}
				reviewDecisionsTotal.WithLabelValues(string(d), "default").Inc()
			}
		}
		if !rev.Spec.Settings.AutoApplies() || item.Decision != pimv1.ReviewDecisionDeny || ptr.Deref(item.Applied, false) {
			continue
		}
		rev.Status.State = pimv1.ReviewStateApplying
		applied := r.itemEntry(rev, item, pimv1.AuditReviewApplied, nil, fmt.Sprintf("%d/%s", rev.Status.Instance, item.ID))
		applied.Details["decidedBy"] = item.Reviewer
		applied.Details["reviewSetBy"] = rev.Annotations[pimv1.AnnotationChangedBy]
		if err := r.Audit.Record(ctx, applied); err != nil {
			return err
		}
		uid := types.UID(item.AssignmentUID)
		ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: item.Assignment}}
		if err := r.Delete(ctx, ra, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		item.Applied = ptr.To(true)
		reviewRemovalsTotal.Inc()
		r.Recorder.Eventf(rev, nil, corev1.EventTypeNormal, "Removed", "Review", "removed RoleAssignment %s (%s %s): denied by %s", item.Assignment, item.Subject.Kind, item.Subject.Name, item.Reviewer)
	}
	countReviewed(rev)
	if rev.Spec.Settings.AutoApplies() {
		rev.Status.State = pimv1.ReviewStateApplied
	}
	return nil
}

func (r *AccessReviewReconciler) itemEntry(rev *pimv1.AccessReview, item *pimv1.ReviewItem, action string, actor *pimv1.UserInfo, disc string) audit.Entry {
	subject, role := item.Subject, item.RoleRef
	return audit.Entry{Action: action, Actor: actor, Target: rev, TargetKind: "AccessReview", Subject: &subject, RoleRef: &role,
		Namespace: item.Namespace, Reason: string(item.Decision) + ": " + item.Reason, Discriminator: disc,
		Details: map[string]string{"assignment": item.Assignment, "item": item.ID, "instance": fmt.Sprint(rev.Status.Instance), "recommendation": string(item.Recommendation)}}
}

// reviewChangeEntry records who created or changed a review, and what it
// now decides with: a review removes access, so its settings are part of
// the trail (the admission webhook stamped the changer).
func reviewChangeEntry(rev *pimv1.AccessReview, created bool) audit.Entry {
	spec := rev.Spec
	reviewers := make([]string, 0, len(spec.Reviewers))
	for _, p := range spec.Reviewers {
		reviewers = append(reviewers, p.Kind+" "+p.Name)
	}
	roles := make([]string, 0, len(spec.Scope.RoleRefs))
	for _, ref := range spec.Scope.RoleRefs {
		roles = append(roles, ref.Kind+"/"+ref.Name)
	}
	e := audit.Entry{Action: pimv1.AuditReviewChanged, Target: rev, TargetKind: "AccessReview", Discriminator: fmt.Sprint(rev.Generation),
		Details: map[string]string{
			"generation": fmt.Sprint(rev.Generation), "reviewerType": spec.ReviewerType, "reviewers": strings.Join(reviewers, ", "),
			"duration": spec.Duration.Duration.String(), "recurrence": spec.Recurrence.Type, "roles": strings.Join(roles, ", "),
			"namespaces": strings.Join(spec.Scope.Namespaces, ","), "defaultDecision": string(spec.Settings.DefaultDecision),
			"autoApply": fmt.Sprint(spec.Settings.AutoApplies()),
		}}
	if created {
		e.Action = pimv1.AuditReviewCreated
	}
	if by := rev.Annotations[pimv1.AnnotationChangedBy]; by != "" {
		e.Actor = &pimv1.UserInfo{Username: by}
	}
	return e
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SetupWithManager watches AccessReviews (their decisions arrive as
// annotation changes).
func (r *AccessReviewReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&pimv1.AccessReview{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		WithOptions(r.Controller).
		Named("accessreview").
		Complete(r)
}
