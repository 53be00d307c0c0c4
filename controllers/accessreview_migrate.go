package controllers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/policy"
)

// migrate moves the items of an instance started before 0.4 out of the
// review's status.items into AccessReviewItems. It first records the
// decisions still waiting in the review's own decisions annotation, as 0.3
// did (each exactly once, in order), then creates each item with the
// decision it shows, and empties status.items. Every step is idempotent:
// a pass cut short is finished by the next.
func (r *AccessReviewReconciler) migrate(ctx context.Context, rev *pimv1.AccessReview) error {
	if err := r.foldLegacyDecisions(ctx, rev); err != nil {
		return err
	}
	closedBefore := closed(rev.Status.State)
	owner := metav1.NewControllerRef(rev, pimv1.GroupVersion.WithKind("AccessReview"))
	owner.BlockOwnerDeletion = nil
	for _, legacy := range rev.Status.Items {
		item := &pimv1.AccessReviewItem{
			ObjectMeta: metav1.ObjectMeta{
				Name:            policy.ReviewItemName(rev.Name, string(rev.UID), rev.Status.Instance, legacy.ID),
				Labels:          map[string]string{pimv1.LabelReviewUID: string(rev.UID), pimv1.LabelReviewInstance: fmt.Sprint(rev.Status.Instance)},
				OwnerReferences: []metav1.OwnerReference{*owner},
			},
			Spec: pimv1.AccessReviewItemSpec{
				Review: rev.Name, ReviewUID: string(rev.UID), Instance: rev.Status.Instance, ID: legacy.ID,
				Assignment: legacy.Assignment, AssignmentUID: legacy.AssignmentUID, Subject: legacy.Subject, RoleRef: legacy.RoleRef,
				Namespace: legacy.Namespace, Type: legacy.Type, LastActivation: legacy.LastActivation,
				Recommendation: legacy.Recommendation, RecommendationReason: legacy.RecommendationReason,
			},
		}
		if err := r.createItem(ctx, item); err != nil {
			return err
		}
		if item.Status.Decision != "" || item.Status.DecisionsRecorded > 0 || item.Status.Closed != nil {
			// Written by an earlier pass of this migration.
			continue
		}
		before := item.DeepCopy()
		st := &item.Status
		st.Decision, st.Reviewer, st.Reason, st.DecidedAt, st.Applied = legacy.Decision, legacy.Reviewer, legacy.Reason, legacy.DecidedAt, legacy.Applied
		if closedBefore {
			st.Closed = ptr.To(true)
		}
		// The item controller leaves the item alone until status.items is
		// empty, so nothing else writes this status meanwhile; the lock
		// says so.
		if err := writeStatus(ctx, r.Client, before, item, client.MergeFromWithOptimisticLock{}); err != nil {
			return err
		}
	}
	rev.Status.Total = int32(len(rev.Status.Items))
	rev.Status.Items = nil
	if rev.Status.State == pimv1.ReviewStateApplying {
		rev.Status.State = pimv1.ReviewStateClosing
	}
	r.Recorder.Eventf(rev, nil, corev1.EventTypeNormal, "Migrated", "Review", "moved the %d items of instance %d into AccessReviewItems", rev.Status.Total, rev.Status.Instance)
	return nil
}

// foldLegacyDecisions applies the verified decisions kept in a pre-0.4
// review's annotation to its status.items, in the order the webhook
// numbered them, and records each one not recorded yet in the audit trail
// (status.decisionsRecorded is the last recorded).
func (r *AccessReviewReconciler) foldLegacyDecisions(ctx context.Context, rev *pimv1.AccessReview) error {
	signed, err := approval.ParseReview(rev.Annotations[pimv1.AnnotationReviewDecisions])
	if err != nil {
		r.Recorder.Eventf(rev, nil, corev1.EventTypeWarning, "ForgedDecision", "Review", "%s", err.Error())
		return nil
	}
	if len(signed) == 0 {
		return nil
	}
	key, err := r.Keys.Key(ctx)
	if err != nil {
		return err
	}
	slices.SortStableFunc(signed, func(a, b approval.SignedReviewRecord) int {
		if a.Record.Seq != b.Record.Seq {
			return cmp.Compare(a.Record.Seq, b.Record.Seq)
		}
		return a.Record.Time.Compare(b.Record.Time.Time)
	})
	for _, s := range signed {
		if s.Record.Instance != rev.Status.Instance || s.Record.Seq <= rev.Status.DecisionsRecorded {
			continue
		}
		if !approval.VerifyReview(key, rev.UID, s) {
			r.Recorder.Eventf(rev, nil, corev1.EventTypeWarning, "ForgedDecision", "Review", "ignored a decision by %q that kubepim did not sign", s.Record.Reviewer.Username)
			continue
		}
		legacy := policy.ReviewItemByID(rev.Status.Items, s.Record.Item)
		if legacy == nil || ptr.Deref(legacy.Applied, false) {
			rev.Status.DecisionsRecorded = max(rev.Status.DecisionsRecorded, s.Record.Seq)
			continue
		}
		legacy.Decision, legacy.Reviewer, legacy.Reason, legacy.DecidedAt = s.Record.Decision, s.Record.Reviewer.Username, s.Record.Reason, s.Record.Time.DeepCopy()
		reviewDecisionsTotal.WithLabelValues(string(s.Record.Decision), "reviewer").Inc()
		subject, role, reviewer := legacy.Subject, legacy.RoleRef, s.Record.Reviewer
		e := audit.Entry{Action: pimv1.AuditReviewDecision, Actor: &reviewer, Target: rev, TargetKind: "AccessReview",
			Discriminator: fmt.Sprintf("%d/%s/%s/seq-%d", rev.Status.Instance, legacy.ID, reviewer.Username, s.Record.Seq),
			Subject:       &subject, RoleRef: &role, Namespace: legacy.Namespace, Reason: string(legacy.Decision) + ": " + legacy.Reason}
		e.Details = map[string]string{"assignment": legacy.Assignment, "item": legacy.ID, "instance": fmt.Sprint(rev.Status.Instance),
			"recommendation": string(legacy.Recommendation), "decidedAt": s.Record.Time.UTC().Format(time.RFC3339), "seq": fmt.Sprint(s.Record.Seq)}
		if err := r.Audit.Record(ctx, e); err != nil {
			return err
		}
		rev.Status.DecisionsRecorded = s.Record.Seq
	}
	return nil
}
