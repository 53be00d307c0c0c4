package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

const (
	// reviewers decide at once, each in reviewerGroups groups (one of
	// which makes them a reviewer).
	reviewers      = 10
	reviewerGroups = 200
	// denyEvery: one item in denyEvery is denied (and removed on apply).
	denyEvery = 10
)

// review runs an AccessReview over the scale step's assignments (10,000 by
// default) on the manager process: the instance starts (one
// AccessReviewItem per assignment), ten reviewers in 200 groups each
// decide on every item at once, then the instance is closed and applied.
// It checks the outcome (every decision recorded exactly once, the denied
// assignments removed and audited) and reports the times, the rates and
// the manager's memory.
func (b *bench) review(ctx context.Context, res *results) error {
	const role = "bench-scale"
	if !enabled("scale") {
		if err := b.ensureAssignments(ctx, role, *flagScale); err != nil {
			return err
		}
	}
	if err := b.admin.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bench-reviewer"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{pimv1.GroupVersion.Group}, Resources: []string{"accessreviews", "accessreviewitems"}, Verbs: []string{"get", "list", "watch", "patch"}},
	}}); err != nil {
		return err
	}
	if err := b.admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bench-reviewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "bench-reviewer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "bench-reviewers"}}}); err != nil {
		return err
	}
	m := b.proc
	m.resetPeakRSS()
	cpu0 := m.cpu()
	rev := &pimv1.AccessReview{ObjectMeta: metav1.ObjectMeta{Name: "bench-review"}, Spec: pimv1.AccessReviewSpec{
		Scope:        pimv1.AccessReviewScope{RoleRefs: []pimv1.RoleRef{{Kind: pimv1.RoleKindClusterRole, Name: role}}},
		ReviewerType: pimv1.ReviewerTypeNamed, Reviewers: []pimv1.Principal{{Kind: pimv1.SubjectKindGroup, Name: "bench-reviewers"}},
		Duration: metav1.Duration{Duration: 24 * time.Hour},
		Settings: pimv1.AccessReviewSettings{AutoApply: ptr.To(true), DefaultDecision: pimv1.ReviewDecisionNone, RequireJustification: ptr.To(true)},
	}}
	t0 := time.Now()
	if err := b.admin.Create(ctx, rev); err != nil {
		return err
	}
	logf("review: created; waiting for the instance to start")
	if err := b.waitReview(ctx, rev, 15*time.Minute, func(s pimv1.AccessReviewStatus) bool { return s.State == pimv1.ReviewStateInProgress }); err != nil {
		return fmt.Errorf("starting the instance: %w", err)
	}
	started := time.Since(t0)
	total := int(rev.Status.Total)
	size, _ := json.Marshal(rev)
	logf("review: %d items in %s (review object %d bytes)", total, secs(started), len(size))

	// The items, page by page, as kubectl pim reviews reads them.
	var items []pimv1.AccessReviewItem
	for cont := ""; ; {
		var page pimv1.AccessReviewItemList
		if err := b.admin.List(ctx, &page, client.MatchingLabels{pimv1.LabelReviewUID: string(rev.UID)}, client.Limit(500), client.Continue(cont)); err != nil {
			return err
		}
		items = append(items, page.Items...)
		if cont = page.Continue; cont == "" {
			break
		}
	}
	if len(items) != total {
		return fmt.Errorf("the review counts %d items, %d exist", total, len(items))
	}

	// Ten reviewers, each in 200 groups, decide at once: reviewer r takes
	// the items i with i % 10 == r, one after another, as a person (or a
	// script) working down a list would.
	denied := 0
	for i := range items {
		if (i/reviewers)%denyEvery == 0 {
			denied++
		}
	}
	var admitted atomic.Int64
	t1 := time.Now()
	err := parallel(ctx, reviewers, reviewers, func(ctx context.Context, r int) error {
		user := fmt.Sprintf("reviewer-%d", r)
		groups := make([]string, 0, reviewerGroups)
		for g := range reviewerGroups - 1 {
			groups = append(groups, fmt.Sprintf("org-%d-team-%d", r, g))
		}
		groups = append(groups, "bench-reviewers")
		for i := r; i < len(items); i += reviewers {
			decision := "Approve: still needed"
			if (i/reviewers)%denyEvery == 0 {
				decision = "Deny: not used"
			}
			patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, pimv1.AnnotationDecision, decision)
			if err := b.pim.Patch(types.MergePatchType).Resource("accessreviewitems").Name(items[i].Name).
				SetHeader("Impersonate-User", user).SetHeader("Impersonate-Group", groups...).Body([]byte(patch)).Do(ctx).Error(); err != nil {
				return fmt.Errorf("%s deciding on %s: %w", user, items[i].Name, err)
			}
			admitted.Add(1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	decided := time.Since(t1)
	logf("review: %d decisions admitted in %s; waiting for kubepim to record them", admitted.Load(), secs(decided))
	if err := b.waitReview(ctx, rev, 15*time.Minute, func(s pimv1.AccessReviewStatus) bool { return int(s.Reviewed) == total }); err != nil {
		return fmt.Errorf("recording the decisions: %w", err)
	}
	recorded := time.Since(t1)

	// Close it: the administrator shortens the instance; each item takes
	// its final decision and the denied assignments are removed.
	t2 := time.Now()
	patch := client.MergeFrom(rev.DeepCopy())
	rev.Spec.Duration = metav1.Duration{Duration: time.Second}
	if err := b.admin.Patch(ctx, rev, patch); err != nil {
		return err
	}
	if err := b.waitReview(ctx, rev, 15*time.Minute, func(s pimv1.AccessReviewStatus) bool { return s.State == pimv1.ReviewStateApplied }); err != nil {
		return fmt.Errorf("applying: %w", err)
	}
	applied := time.Since(t2)
	peak, cpu := m.peakRSS(), m.cpu()-cpu0
	size, _ = json.Marshal(rev)

	// The outcome: every decision recorded once, each denial applied and
	// audited, the assignments gone.
	counts, err := b.auditCounts(ctx, string(rev.UID))
	if err != nil {
		return err
	}
	if counts[pimv1.AuditReviewDecision] != total || counts[pimv1.AuditReviewApplied] != denied || int(rev.Status.Removed) != denied {
		return fmt.Errorf("audit trail: %d ReviewDecision (want %d), %d ReviewApplied and %d removed (want %d)",
			counts[pimv1.AuditReviewDecision], total, counts[pimv1.AuditReviewApplied], rev.Status.Removed, denied)
	}
	res.add(row{Metric: fmt.Sprintf("Review of %d assignments: instance start (create → InProgress, %d AccessReviewItems)", total, total), P50: "—", P99: "—",
		Max: fmt.Sprintf("%s (%.0f items/s)", secs(started), float64(total)/started.Seconds()), Target: "—", Verdict: "reported"})
	res.add(row{Metric: fmt.Sprintf("Review: %d decisions by %d reviewers in %d groups each, at once → admitted / all recorded", total, reviewers, reviewerGroups), P50: "—", P99: "—",
		Max: fmt.Sprintf("%s (%.0f/s) / %s (%.0f/s)", secs(decided), float64(total)/decided.Seconds(), secs(recorded), float64(total)/recorded.Seconds()), Target: "—", Verdict: "reported"})
	res.add(row{Metric: fmt.Sprintf("Review: close and apply (%d denied assignments removed and audited) → Applied", denied), P50: "—", P99: "—",
		Max: secs(applied), Target: "—", Verdict: "reported"})
	res.add(row{Metric: "Review: peak RSS of the manager process / its CPU time, start to applied", P50: "—", P99: "—",
		Max: fmt.Sprintf("%s / %s", mib(peak), secs(cpu)), Target: "—", Verdict: "reported"})
	res.note("Review: the AccessReview object stays %d bytes at %d items (its status holds counts, not items); each AccessReviewItem is ~%d bytes. "+
		"Every decision was recorded exactly once (%d ReviewDecision events), every denial applied and audited (%d ReviewApplied).",
		len(size), total, itemSize(items), counts[pimv1.AuditReviewDecision], counts[pimv1.AuditReviewApplied])
	return nil
}

func itemSize(items []pimv1.AccessReviewItem) int {
	if len(items) == 0 {
		return 0
	}
	b, _ := json.Marshal(items[0])
	return len(b)
}

// waitReview polls the review until done says its status is there.
func (b *bench) waitReview(ctx context.Context, rev *pimv1.AccessReview, timeout time.Duration, done func(pimv1.AccessReviewStatus) bool) error {
	return poll(ctx, 100*time.Millisecond, timeout, func() (bool, error) {
		if err := b.admin.Get(ctx, client.ObjectKeyFromObject(rev), rev); err != nil {
			return false, err
		}
		return done(rev.Status), nil
	})
}

// auditCounts counts the audit events about the object with uid, by
// action, reading the trail page by page.
func (b *bench) auditCounts(ctx context.Context, uid string) (map[string]int, error) {
	counts := map[string]int{}
	for cont := ""; ; {
		var page pimv1.AuditEventList
		if err := b.admin.List(ctx, &page, client.Limit(2000), client.Continue(cont)); err != nil {
			return nil, err
		}
		for _, ev := range page.Items {
			if ev.Spec.Target != nil && ev.Spec.Target.UID == uid {
				counts[ev.Spec.Action]++
			}
		}
		if cont = page.Continue; cont == "" {
			return counts, nil
		}
	}
}

// ensureAssignments creates n Eligible assignments of role (when the scale
// step did not) and waits until the manager has reconciled them.
func (b *bench) ensureAssignments(ctx context.Context, role string, n int) error {
	if err := b.clusterRole(ctx, role); err != nil {
		return err
	}
	logf("review: creating %d RoleAssignments", n)
	if err := parallel(ctx, n, *flagWriters, func(ctx context.Context, i int) error {
		return b.admin.Create(ctx, assignment(fmt.Sprintf("scale-%05d", i), role, fmt.Sprintf("scale-user-%d", i), role, pimv1.AssignmentEligible, nil))
	}); err != nil {
		return err
	}
	return b.waitReconciled(ctx, role, n, 15*time.Minute)
}
