package webhooks

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-accessreview,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=accessreviews,verbs=create;update,versions=v1alpha1,name=maccessreview.kubepim.io,admissionReviewVersions=v1

// reviewMutator stamps who created or changed a review's spec. Decisions
// are no longer made on the review (they are annotated on its
// AccessReviewItems): the old decision.kubepim.io/<item> annotation is
// refused with a message that says how to decide now.
type reviewMutator struct {
	handlerBase
}

func (m *reviewMutator) mutate(ctx context.Context, req Request[*pimv1.AccessReview]) field.ErrorList {
	rev, old, user := req.New, req.Old, req.User
	switch req.Operation {
	case admissionv1.Create:
		old = &pimv1.AccessReview{}
	case admissionv1.Update:
	default:
		return nil
	}
	if old.Annotations[pimv1.AnnotationReviewDecisions] != rev.Annotations[pimv1.AnnotationReviewDecisions] {
		return forbidden(annotationPath(pimv1.AnnotationReviewDecisions), fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationReviewDecisions))
	}
	for k := range rev.Annotations {
		if strings.HasPrefix(k, pimv1.AnnotationReviewDecisionPrefix) {
			id := strings.TrimPrefix(k, pimv1.AnnotationReviewDecisionPrefix)
			return forbidden(annotationPath(k), fmt.Sprintf("decisions are made on the review's items now: kubectl pim review decide %s %s --approve|--deny --reason TEXT, "+
				"or kubectl annotate accessreviewitem %s %s=\"Approve: <reason>\"", req.Name, id,
				policy.ReviewItemName(req.Name, string(old.UID), old.Status.Instance, id), pimv1.AnnotationDecision))
		}
	}
	// Who last created or changed what the review decides with (its
	// spec); the validating webhook checks that it is the user.
	stampChange(rev, old, pimv1.AnnotationChangedBy, user.Username, req.Operation == admissionv1.Create || !equality.Semantic.DeepEqual(old.Spec, rev.Spec))
	return nil
}

func parseReviewDecision(v string) (decision pimv1.ReviewDecision, reason string, ok bool) {
	d, r, _ := strings.Cut(v, ":")
	switch strings.ToLower(strings.TrimSpace(d)) {
	case "approve":
		return pimv1.ReviewDecisionApprove, strings.TrimSpace(r), true
	case "deny":
		return pimv1.ReviewDecisionDeny, strings.TrimSpace(r), true
	}
	return "", "", false
}

func orNone(s string) string {
	if s == "" {
		return "not started"
	}
	return s
}
