package webhooks

import (
	"context"
	"fmt"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/policy"
)

// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-accessreviewitem,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=accessreviewitems,verbs=update,versions=v1alpha1,name=maccessreviewitem.kubepim.io,admissionReviewVersions=v1

// MaxPendingReviewDecisions bounds the signed decisions on one item that
// wait for kubepim to record them (a recorded decision leaves the
// annotation: the item's status holds the standing one and the audit
// trail every one). With a reason of at most 1 KiB and only the deciding
// groups in each record, the annotation stays far below the API server's
// 256 KiB.
const MaxPendingReviewDecisions = 10

// MaxReviewDecisionsPerItem bounds the decisions taken on one item in its
// instance, all reviewers together: each becomes an audit event, and a
// reviewer flipping a decision at machine speed must not flood the trail.
const MaxReviewDecisionsPerItem = 50

// itemDecider turns a reviewer's kubepim.io/decision annotation on an
// AccessReviewItem into a signed, numbered record, after checking that the
// user may decide on the item now. Decisions on different items are writes
// to different objects, so reviewers deciding at once never conflict.
type itemDecider struct {
	handlerBase
	keys *approval.Keys
}

func (m *itemDecider) mutate(ctx context.Context, req Request[*pimv1.AccessReviewItem]) field.ErrorList {
	if req.Operation != admissionv1.Update || req.SubResource != "" {
		return nil
	}
	item, old, user := req.New, req.Old, req.User
	recordsPath := annotationPath(pimv1.AnnotationReviewDecisions)
	if old.Annotations[pimv1.AnnotationReviewDecisions] != item.Annotations[pimv1.AnnotationReviewDecisions] {
		return forbidden(recordsPath, fmt.Sprintf("annotation %s is written by kubepim alone; decide with %s=\"Approve: <reason>\" or \"Deny: <reason>\"",
			pimv1.AnnotationReviewDecisions, pimv1.AnnotationDecision))
	}
	value, deciding := item.Annotations[pimv1.AnnotationDecision]
	if !deciding {
		return nil
	}
	path := annotationPath(pimv1.AnnotationDecision)
	delete(item.Annotations, pimv1.AnnotationDecision)
	rev := &pimv1.AccessReview{}
	if err := m.cache.Get(ctx, client.ObjectKey{Name: old.Spec.Review}, rev); client.IgnoreNotFound(err) != nil {
		return internalError(path, err)
	}
	if rev.UID != types.UID(old.Spec.ReviewUID) {
		return forbidden(path, fmt.Sprintf("AccessReview %s of this item is gone", old.Spec.Review))
	}
	if rev.Status.Instance != old.Spec.Instance || rev.Status.State != pimv1.ReviewStateInProgress {
		return forbidden(path, fmt.Sprintf("instance %d of AccessReview %s is %s: there is nothing to decide", old.Spec.Instance, rev.Name, instanceState(rev, old.Spec.Instance)))
	}
	if ptr.Deref(old.Status.Closed, false) {
		// Exact, whatever this replica's cache or clock says: old is the
		// stored item.
		return forbidden(path, fmt.Sprintf("this item of instance %d of AccessReview %s is closed: its final decision is %s", old.Spec.Instance, rev.Name, orNone(string(old.Status.Decision))))
	}
	if due := rev.Status.DueAt; due != nil && !m.cfg.Clock.Now().Before(due.Time) {
		// kubepim may be closing the instance this very moment: a decision
		// now could be admitted and never applied.
		return forbidden(path, fmt.Sprintf("instance %d of AccessReview %s closed at %s: decisions are no longer taken", old.Spec.Instance, rev.Name, due.UTC().Format(time.RFC3339)))
	}
	decision, reason, ok := parseReviewDecision(value)
	if !ok {
		return forbidden(path, fmt.Sprintf("%s must be \"Approve: <reason>\" or \"Deny: <reason>\"", pimv1.AnnotationDecision))
	}
	if reason == "" && rev.Spec.Settings.JustificationRequired() {
		return forbidden(path, "give a reason: \""+string(decision)+": <reason>\"")
	}
	via, err := policy.ReviewerVia(rev.Spec, old.Spec.Subject, old.Spec.ID, *user)
	if err != nil {
		return forbidden(path, err.Error())
	}
	if err := policy.CheckReason(reason); err != nil {
		return forbidden(path, err.Error())
	}
	signed, err := approval.ParseReview(old.Annotations[pimv1.AnnotationReviewDecisions])
	if err != nil {
		return forbidden(recordsPath, err.Error())
	}
	key, err := m.keys.Key(ctx)
	if err != nil {
		return internalError(path, err)
	}
	// A recorded decision is in the item's status and the audit trail: only
	// those still waiting stay, and only kubepim's (a record forged around
	// this webhook counts for nothing, its number included).
	recorded := old.Status.DecisionsRecorded
	signed = slices.DeleteFunc(signed, func(s approval.SignedReviewRecord) bool {
		return s.Record.Seq <= recorded || !approval.VerifyReview(key, old.UID, s)
	})
	if len(signed) >= MaxPendingReviewDecisions {
		return forbidden(path, fmt.Sprintf("%d decisions on this item wait for kubepim to record them; try again in a moment "+
			"(if this persists, kubepim's manager is not running)", len(signed)))
	}
	next := recorded
	for _, s := range signed {
		next = max(next, s.Record.Seq)
	}
	if next >= MaxReviewDecisionsPerItem {
		return forbidden(path, fmt.Sprintf("this item has had %d decisions in this instance, the most it takes; the last one stands", next))
	}
	deciders := append(slices.Clone(rev.Spec.Reviewers), rev.Spec.FallbackReviewers...)
	if old.Spec.Subject.Kind == pimv1.SubjectKindGroup {
		// A self-review of a group's assignment is decided by its members.
		deciders = append(deciders, pimv1.Principal{Kind: pimv1.SubjectKindGroup, Name: old.Spec.Subject.Name})
	}
	rec := approval.ReviewRecord{Seq: next + 1, Instance: old.Spec.Instance, Item: old.Spec.ID,
		Reviewer: pimv1.UserInfo{Username: user.Username, UID: user.UID, Groups: policy.DecidingGroups(deciders, user.Groups)}, Via: via,
		Decision: decision, Reason: reason, Time: metav1.NewTime(m.cfg.Clock.Now().UTC().Truncate(time.Second))}
	signed = append(signed, approval.SignedReviewRecord{Record: rec, Signature: approval.SignReview(key, old.UID, rec)})
	setAnnotation(item, pimv1.AnnotationReviewDecisions, approval.EncodeReview(signed))
	return nil
}

// instanceState says where instance n of a review stands, for refusals.
func instanceState(rev *pimv1.AccessReview, n int32) string {
	if rev.Status.Instance > n {
		return fmt.Sprintf("over (instance %d is the current one)", rev.Status.Instance)
	}
	return orNone(string(rev.Status.State))
}
