package webhooks

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/authz"
)

// +kubebuilder:webhook:path=/validate-kubepim-io-v1alpha1-accessreview,mutating=false,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=accessreviews,verbs=create;update,versions=v1alpha1,name=vaccessreview.kubepim.io,admissionReviewVersions=v1

// reviewGuard decides who may create an AccessReview and who may change a
// running one. A review removes the assignments its reviewers deny (and,
// with a default decision of Deny or Recommendation, those nobody
// decided): so creating one, or changing anything but decisions, needs the
// verb "manage" on accessreviews.kubepim.io and, when it applies its
// decisions (autoApply), the right to delete RoleAssignments — the power
// the review exercises. Decisions themselves are checked by reviewMutator.
type reviewGuard struct {
	handlerBase
}

func (g *reviewGuard) validate(ctx context.Context, req Request[*pimv1.AccessReview]) field.ErrorList {
	rev, old, user := req.New, req.Old, req.User
	changes := []string{"a new review"}
	switch req.Operation {
	case admissionv1.Create:
		old = &pimv1.AccessReview{}
	case admissionv1.Update:
		if errs := boundManagers(old, rev); len(errs) > 0 {
			return errs
		}
		if old.Annotations[pimv1.AnnotationReviewDecisions] != rev.Annotations[pimv1.AnnotationReviewDecisions] {
			// Fails closed without the mutating webhook: the records of
			// decisions taken before 0.4 are kubepim's.
			return forbidden(annotationPath(pimv1.AnnotationReviewDecisions), fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationReviewDecisions))
		}
		changes = reviewChanges(old, rev)
		if len(changes) == 0 {
			if old.Annotations[pimv1.AnnotationChangedBy] != rev.Annotations[pimv1.AnnotationChangedBy] {
				return forbidden(annotationPath(pimv1.AnnotationChangedBy), fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationChangedBy))
			}
			return nil
		}
	default:
		return nil
	}
	specChanged := req.Operation == admissionv1.Create || !equality.Semantic.DeepEqual(old.Spec, rev.Spec)
	switch {
	case specChanged && rev.Annotations[pimv1.AnnotationChangedBy] != user.Username:
		// Fails closed without the mutating webhook, which stamps the changer.
		return forbidden(annotationPath(pimv1.AnnotationChangedBy), fmt.Sprintf("annotation %s must name the user making the change (kubepim's mutating webhook stamps it; is it installed?)", pimv1.AnnotationChangedBy))
	case !specChanged && old.Annotations[pimv1.AnnotationChangedBy] != rev.Annotations[pimv1.AnnotationChangedBy]:
		return forbidden(annotationPath(pimv1.AnnotationChangedBy), fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationChangedBy))
	}
	manage, err := g.allowed(ctx, user, authz.Attributes{Resource: &authorizationv1.ResourceAttributes{
		Group: pimv1.GroupVersion.Group, Resource: "accessreviews", Verb: VerbManage, Name: req.Name,
	}})
	if err != nil {
		return internalError(specPath, err)
	}
	what := strings.Join(changes, ", ")
	if !manage {
		path := specPath
		if !specChanged {
			path = metadataPath
		}
		return forbidden(path, fmt.Sprintf("%s may not change %s of AccessReview %s: that needs the verb %q on accessreviews.kubepim.io "+
			"(reviewers decide with the %s<item-id> annotation and may change nothing else)", user.Username, what, req.Name, VerbManage, pimv1.AnnotationReviewDecisionPrefix))
	}
	if req.Operation == admissionv1.Create {
		what = "create AccessReview " + req.Name
	} else {
		what = "change " + what + " of AccessReview " + req.Name
	}
	if rev.Spec.Settings.AutoApplies() {
		autoApply := specPath.Child("settings", "autoApply")
		del, err := g.allowed(ctx, user, authz.Attributes{Resource: &authorizationv1.ResourceAttributes{
			Group: pimv1.GroupVersion.Group, Resource: "roleassignments", Verb: "delete",
		}})
		if err != nil {
			return internalError(autoApply, err)
		}
		if !del {
			return forbidden(autoApply, fmt.Sprintf("%s may not %s with settings.autoApply: the review removes denied RoleAssignments, "+
				"which needs the verb \"delete\" on roleassignments.kubepim.io (or set autoApply: false)", user.Username, what))
		}
	}
	return nil
}

// reviewChanges lists what an update changes that only someone who may
// manage the review may change: everything but the decision annotations
// (turned into signed records by the mutating webhook). The spec decides
// who reviews, for how long, and what happens to undecided items; and
// labels, annotations, finalizers and owner references are guarded too.
// (Decisions are annotated on the review's AccessReviewItems; the
// mutating webhook refuses the old decision annotations.)
func reviewChanges(old, cur *pimv1.AccessReview) []string {
	var changed []string
	if !equality.Semantic.DeepEqual(old.Spec, cur.Spec) {
		changed = append(changed, "spec")
	}
	return append(changed, metadataChanges(old, cur, guardedAnnotations)...)
}

// guardedAnnotations are a review's annotations without those kubepim's
// webhooks write or turn into records.
func guardedAnnotations(a map[string]string) map[string]string {
	out := make(map[string]string, len(a))
	for k, v := range a {
		if strings.HasPrefix(k, pimv1.AnnotationReviewDecisionPrefix) || k == pimv1.AnnotationReviewDecisions || k == pimv1.AnnotationChangedBy {
			continue
		}
		out[k] = v
	}
	return out
}
