package webhooks

import (
	"context"
	"fmt"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/authz"
)

// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-accessreviewitem,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=accessreviewitems;accessreviewitems/status,verbs=create;update;delete,versions=v1alpha1,name=vaccessreviewitem.kubepim.io,admissionReviewVersions=v1

// itemGuard keeps AccessReviewItems kubepim's: only kubepim creates them
// and writes their status (the decision it recorded), cluster admins
// included — a forged item or status would have kubepim remove an
// assignment nobody denied. A reviewer changes nothing but the decision
// annotation (turned into a signed record by itemDecider); other metadata
// (labels, finalizers, owner references) needs the verb "manage" on
// accessreviews.kubepim.io, as on the review itself.
type itemGuard struct {
	handlerBase
	keys *approval.Keys
	// self is the manager's username.
	self func(context.Context) (string, error)
}

func (g *itemGuard) validate(ctx context.Context, req Request[*pimv1.AccessReviewItem]) field.ErrorList {
	me, err := g.self(ctx)
	if err != nil {
		return internalError(metadataPath, err)
	}
	if req.User.Username == me {
		return nil
	}
	switch {
	case req.Operation == admissionv1.Create:
		return forbidden(specPath, fmt.Sprintf("AccessReviewItems are created by kubepim (%s) when an instance of a review starts; %s may not create one", me, req.User.Username))
	case req.Operation == admissionv1.Delete && req.User.Username == garbageCollector:
		// The items of a deleted review go with it.
		return nil
	case req.Operation == admissionv1.Delete:
		// An item deleted is an assignment the review no longer removes.
		return forbidden(metadataPath, fmt.Sprintf("AccessReviewItems are removed by kubepim (%s) when the next instance starts, or with their review; %s may not delete one (delete the AccessReview %s instead)",
			me, req.User.Username, req.Old.Spec.Review))
	case req.Operation != admissionv1.Update:
		return nil
	case req.SubResource == "status":
		return forbidden(field.NewPath("status"), fmt.Sprintf("the status of an AccessReviewItem is the decision kubepim (%s) recorded; %s may not write it (decide with the %s annotation)",
			me, req.User.Username, pimv1.AnnotationDecision))
	}
	old, cur := req.Old, req.New
	if !equality.Semantic.DeepEqual(old.Spec, cur.Spec) {
		return forbidden(specPath, "an item's spec is kubepim's snapshot of the assignment under review and never changes")
	}
	if _, ok := cur.Annotations[pimv1.AnnotationDecision]; ok {
		// Fails closed without the mutating webhook, which takes it away.
		return forbidden(annotationPath(pimv1.AnnotationDecision), "kubepim's mutating webhook did not turn this decision into a signed record; is it installed?")
	}
	if errs := g.checkRecords(ctx, old, cur, req.User.Username); len(errs) > 0 {
		return errs
	}
	if errs := boundManagers(old, cur); len(errs) > 0 {
		return errs
	}
	changes := metadataChanges(old, cur, func(a map[string]string) map[string]string {
		out := make(map[string]string, len(a))
		for k, v := range a {
			if k != pimv1.AnnotationReviewDecisions && k != pimv1.AnnotationDecision {
				out[k] = v
			}
		}
		return out
	})
	if len(changes) == 0 {
		return nil
	}
	manage, err := g.allowed(ctx, req.User, authz.Attributes{Resource: &authorizationv1.ResourceAttributes{
		Group: pimv1.GroupVersion.Group, Resource: "accessreviews", Verb: VerbManage, Name: old.Spec.Review,
	}})
	if err != nil {
		return internalError(metadataPath, err)
	}
	if !manage {
		return forbidden(metadataPath, fmt.Sprintf("%s may not change %s of AccessReviewItem %s: that needs the verb %q on accessreviews.kubepim.io "+
			"(reviewers decide with the %s annotation and may change nothing else)", req.User.Username, strings.Join(changes, ", "), req.Name, VerbManage, pimv1.AnnotationDecision))
	}
	return nil
}

// garbageCollector is the identity kube-controller-manager's garbage
// collector deletes dependents with.
const garbageCollector = "system:serviceaccount:kube-system:generic-garbage-collector"

// checkRecords fails closed when the mutating webhook was bypassed: every
// record an update adds must be kubepim's, signed for this item, and the
// user's own; and no decision of kubepim's still waiting to be recorded
// may be taken away.
func (g *itemGuard) checkRecords(ctx context.Context, old, cur *pimv1.AccessReviewItem, username string) field.ErrorList {
	path := annotationPath(pimv1.AnnotationReviewDecisions)
	before, after := old.Annotations[pimv1.AnnotationReviewDecisions], cur.Annotations[pimv1.AnnotationReviewDecisions]
	if before == after {
		return nil
	}
	had, _ := approval.ParseReview(before)
	has, err := approval.ParseReview(after)
	if err != nil {
		return forbidden(path, err.Error())
	}
	key, err := g.keys.Key(ctx)
	if err != nil {
		return internalError(path, err)
	}
	for _, s := range has {
		if slices.ContainsFunc(had, func(h approval.SignedReviewRecord) bool { return h.Signature == s.Signature }) {
			continue
		}
		if !approval.VerifyReview(key, cur.UID, s) || s.Record.Reviewer.Username != username {
			return forbidden(path, fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationReviewDecisions))
		}
	}
	for _, h := range had {
		waiting := h.Record.Seq > old.Status.DecisionsRecorded && approval.VerifyReview(key, old.UID, h)
		if waiting && !slices.ContainsFunc(has, func(s approval.SignedReviewRecord) bool { return s.Signature == h.Signature }) {
			return forbidden(path, fmt.Sprintf("annotation %s is written by kubepim alone: a decision waiting to be recorded may not be taken away", pimv1.AnnotationReviewDecisions))
		}
	}
	return nil
}
