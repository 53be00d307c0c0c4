package controllers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
// assignments in scope as AccessReviewItems (one object per assignment, so
// no review outgrows the API server's object size), each with a
// recommendation; reviewers decide on the items and the
// AccessReviewItemReconciler records and, when the instance ends, applies
// their decisions. This reconciler starts instances, keeps the counts and
// the state, and schedules the next instance.
type AccessReviewReconciler struct {
	client.Client
	// APIReader reads the API server directly, where a stale cache would
	// start an instance twice.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Keys      *approval.Keys
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
	// UsageTracked: kubepim's authorizer records every use of an activation
	// (--access-mode=authorizer), so an activation never used counts as
	// unused in recommendations (policy.Recommend).
	UsageTracked bool
}

// itemCreators is how many items of a starting instance are created at
// once (the manager's client rate limit still applies).
const itemCreators = 16

// +kubebuilder:rbac:groups=kubepim.io,resources=accessreviews,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubepim.io,resources=accessreviews/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kubepim.io,resources=accessreviewitems,verbs=get;list;watch;create;delete;deletecollection
// +kubebuilder:rbac:groups=kubepim.io,resources=accessreviewitems/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kubepim.io,resources=roleassignments,verbs=delete

// Reconcile advances one AccessReview at this instant.
func (r *AccessReviewReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	now := r.Clock.Now()
	rev := &pimv1.AccessReview{}
	if err := r.Get(ctx, req.NamespacedName, rev); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := rev.DeepCopy()
	migrating := len(rev.Status.Items) > 0
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
	// No optimistic lock: everything the status holds is derived from the
	// clock and the items (the decisions live on the items), so a pass that
	// read a stale copy writes what a fresh one would. But a migration
	// empties status.items once: a 0.3 decision admitted meanwhile by a
	// 0.3 replica must not be closed over.
	var lock []client.MergeFromOption
	if migrating {
		lock = append(lock, client.MergeFromWithOptimisticLock{})
	}
	if err := writeStatus(ctx, r.Client, before, rev, lock...); err != nil {
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
	if rev.Status.Instance == 0 {
		rev.Status.Instance = 1
	}
	if len(rev.Status.Items) > 0 {
		// An instance started before 0.4 keeps its items in status: move
		// them into AccessReviewItems, decisions and all.
		if err := r.migrate(ctx, rev); err != nil {
			return time.Time{}, err
		}
	}
	if closed(rev.Status.State) {
		if err := r.count(ctx, rev); err != nil {
			return time.Time{}, err
		}
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
		rev.Status.StartedAt, rev.Status.NextStart = nil, nil
		rev.Status.Total, rev.Status.Reviewed, rev.Status.Approved, rev.Status.Denied, rev.Status.Removed = 0, 0, 0, 0, 0
	}
	start, due := policy.ReviewInstance(rev.Spec, first, rev.Status.Instance)
	rev.Status.DueAt = &metav1.Time{Time: due}
	if now.Before(start) {
		rev.Status.State = pimv1.ReviewStateScheduled
		return start, nil
	}
	if rev.Status.StartedAt == nil {
		if err := r.start(ctx, rev, now); err != nil {
			return time.Time{}, err
		}
		rev.Status.StartedAt, rev.Status.State = &metav1.Time{Time: start}, pimv1.ReviewStateInProgress
	}
	tally, err := r.tally(ctx, rev)
	if err != nil {
		return time.Time{}, err
	}
	rev.Status.Reviewed, rev.Status.Approved, rev.Status.Denied, rev.Status.Removed = tally.decided, tally.approved, tally.denied, tally.removed
	if now.Before(due) {
		rev.Status.State = pimv1.ReviewStateInProgress
		return due, nil
	}
	// The instance is over: each item takes its final decision and applies
	// it (AccessReviewItemReconciler); the review is closed when all have —
	// every item it created, not only those the cache shows yet.
	if tally.closed < max(tally.items, rev.Status.Total) || tally.removing > 0 {
		rev.Status.State = pimv1.ReviewStateClosing
		return time.Time{}, nil
	}
	rev.Status.State = pimv1.ReviewStateCompleted
	if rev.Spec.Settings.AutoApplies() {
		rev.Status.State = pimv1.ReviewStateApplied
	}
	if !policy.HasInstance(rev.Spec, first, rev.Status.Instance+1) {
		rev.Status.NextStart = nil
		return time.Time{}, nil
	}
	nextStart, _ := policy.ReviewInstance(rev.Spec, first, rev.Status.Instance+1)
	rev.Status.NextStart = &metav1.Time{Time: nextStart}
	return nextStart, nil
}

func closed(state pimv1.AccessReviewState) bool {
	return state == pimv1.ReviewStateApplied || state == pimv1.ReviewStateCompleted
}

func firstStart(rev *pimv1.AccessReview) time.Time {
	if rev.Spec.StartTime != nil {
		return rev.Spec.StartTime.Time
	}
	return rev.CreationTimestamp.Time
}

// start begins an instance: it removes the items of earlier instances and
// creates one item per assignment in scope. Creating is idempotent (names
// are deterministic), so a pass cut short is finished by the next; the
// instance is InProgress, and takes decisions, only once every item
// exists.
func (r *AccessReviewReconciler) start(ctx context.Context, rev *pimv1.AccessReview, now time.Time) error {
	// The cache may not show yet that an earlier pass started this
	// instance: the API server says.
	stored := &pimv1.AccessReview{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(rev), stored); err != nil {
		return err
	}
	if stored.ResourceVersion != rev.ResourceVersion {
		// The cache is behind: decide on the stored review, next pass (an
		// error, so the retry follows at once, on the wall clock).
		return fmt.Errorf("AccessReview %s changed since the cache saw it; starting its instance on the next pass", rev.Name)
	}
	earlier, err := labels.Parse(fmt.Sprintf("%s=%s,%s!=%d", pimv1.LabelReviewUID, rev.UID, pimv1.LabelReviewInstance, rev.Status.Instance))
	if err != nil {
		return err
	}
	if err := r.DeleteAllOf(ctx, &pimv1.AccessReviewItem{}, client.MatchingLabelsSelector{Selector: earlier}); err != nil {
		return fmt.Errorf("removing the items of earlier instances: %w", err)
	}
	items, err := r.snapshot(ctx, rev, now)
	if err != nil {
		return err
	}
	work := make(chan *pimv1.AccessReviewItem)
	errs := make(chan error, itemCreators)
	var wg sync.WaitGroup
	for range itemCreators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for item := range work {
				if err := r.createItem(ctx, item); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() {
		defer close(work)
		for _, item := range items {
			select {
			case work <- item:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		// Drain the feeder: the workers that failed no longer take items.
		for range work {
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		// Cancelled: the feeder stopped early, some items are missing.
		return err
	}
	rev.Status.Total = int32(len(items))
	return nil
}

// createItem creates one item, or finds it created by an earlier pass;
// either way item is then as stored.
func (r *AccessReviewReconciler) createItem(ctx context.Context, item *pimv1.AccessReviewItem) error {
	err := r.Create(ctx, item)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	// From the API server: the cache may not have it yet.
	existing := &pimv1.AccessReviewItem{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(item), existing); err != nil {
		return err
	}
	if s := existing.Spec; s.ReviewUID != item.Spec.ReviewUID || s.Instance != item.Spec.Instance || s.AssignmentUID != item.Spec.AssignmentUID {
		return fmt.Errorf("AccessReviewItem %s exists and is not this review's item for assignment %s", item.Name, item.Spec.Assignment)
	}
	*item = *existing
	return nil
}

// snapshot lists the assignments in scope from the cache, each as an item
// with a recommendation.
func (r *AccessReviewReconciler) snapshot(ctx context.Context, rev *pimv1.AccessReview, now time.Time) ([]*pimv1.AccessReviewItem, error) {
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
	owner := metav1.NewControllerRef(rev, pimv1.GroupVersion.WithKind("AccessReview"))
	owner.BlockOwnerDeletion = nil
	var items []*pimv1.AccessReviewItem
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
			decision, reason, last := policy.Recommend(ra, activations.Items, now, rev.Spec.Settings.Recommendation.InactiveDays, r.UsageTracked)
			id := policy.ReviewItemID(string(ra.UID))
			items = append(items, &pimv1.AccessReviewItem{
				ObjectMeta: metav1.ObjectMeta{
					Name:            policy.ReviewItemName(rev.Name, string(rev.UID), rev.Status.Instance, id),
					Labels:          map[string]string{pimv1.LabelReviewUID: string(rev.UID), pimv1.LabelReviewInstance: fmt.Sprint(rev.Status.Instance)},
					OwnerReferences: []metav1.OwnerReference{*owner},
				},
				Spec: pimv1.AccessReviewItemSpec{
					Review: rev.Name, ReviewUID: string(rev.UID), Instance: rev.Status.Instance, ID: id,
					Assignment: ra.Name, AssignmentUID: string(ra.UID), Subject: ra.Spec.Subject, RoleRef: ra.Spec.RoleRef,
					Namespace: ra.Spec.Namespace, Type: ra.Spec.Type, LastActivation: last, Recommendation: decision, RecommendationReason: reason,
				},
			})
		}
	}
	slices.SortFunc(items, func(a, b *pimv1.AccessReviewItem) int { return cmp.Compare(a.Spec.Assignment, b.Spec.Assignment) })
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

// itemTally counts the items of the current instance by where they stand.
type itemTally struct {
	items, decided, approved, denied, removed, closed int32
	// removing counts closed denials not carried out yet (autoApply).
	removing int32
}

// count refreshes the counts of a closed instance (its last removals may
// have landed after it closed).
func (r *AccessReviewReconciler) count(ctx context.Context, rev *pimv1.AccessReview) error {
	tally, err := r.tally(ctx, rev)
	if err != nil {
		return err
	}
	rev.Status.Reviewed, rev.Status.Approved, rev.Status.Denied, rev.Status.Removed = tally.decided, tally.approved, tally.denied, tally.removed
	return nil
}

// tally counts the current instance's items from the cache (without deep
// copies: a review of 10,000 items is counted in a few milliseconds).
func (r *AccessReviewReconciler) tally(ctx context.Context, rev *pimv1.AccessReview) (itemTally, error) {
	var list pimv1.AccessReviewItemList
	if err := r.List(ctx, &list, client.MatchingFields{lookup.ItemByReviewInstance: lookup.ReviewInstanceKey(string(rev.UID), rev.Status.Instance)},
		client.UnsafeDisableDeepCopy); err != nil {
		return itemTally{}, err
	}
	var t itemTally
	autoApply := rev.Spec.Settings.AutoApplies()
	for i := range list.Items {
		if !list.Items[i].DeletionTimestamp.IsZero() {
			continue
		}
		st := &list.Items[i].Status
		t.items++
		switch st.Decision {
		case pimv1.ReviewDecisionApprove:
			t.decided++
			t.approved++
		case pimv1.ReviewDecisionDeny:
			t.decided++
			t.denied++
		}
		if ptr.Deref(st.Applied, false) {
			t.removed++
		}
		if ptr.Deref(st.Closed, false) {
			t.closed++
			if autoApply && st.Decision == pimv1.ReviewDecisionDeny && !ptr.Deref(st.Applied, false) {
				t.removing++
			}
		}
	}
	return t, nil
}

// itemEntry is the audit entry of an action on an item: its target is the
// review (the trail of a review is found by its UID), the item named in the
// details.
func itemEntry(rev *pimv1.AccessReview, item *pimv1.AccessReviewItem, decision pimv1.ReviewDecision, reason, action string, actor *pimv1.UserInfo, disc string) audit.Entry {
	subject, role := item.Spec.Subject, item.Spec.RoleRef
	return audit.Entry{Action: action, Actor: actor, Target: rev, TargetKind: "AccessReview", Subject: &subject, RoleRef: &role,
		Namespace: item.Spec.Namespace, Reason: string(decision) + ": " + reason, Discriminator: disc,
		Details: map[string]string{"assignment": item.Spec.Assignment, "item": item.Spec.ID, "itemName": item.Name,
			"instance": fmt.Sprint(item.Spec.Instance), "recommendation": string(item.Spec.Recommendation)}}
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

// SetupWithManager watches AccessReviews and the status of their items
// (the counts; a closing instance ends when its last item has closed).
// Many item changes at once coalesce into one pass in the work queue.
func (r *AccessReviewReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&pimv1.AccessReview{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&pimv1.AccessReviewItem{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.(*pimv1.AccessReviewItem).Spec.Review}}}
		}), builder.WithPredicates(itemStatusChanged)).
		WithOptions(r.Controller).
		Named("accessreview").
		Complete(r)
}
