package webhooks

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/controllers/approval"
	"github.com/kubepim/kubepim/controllers/policy"
)

// reviewMutator turns a reviewer's decision.kubepim.io/<item> annotation
// into a signed record, after checking that this user may decide on that
// item now. A later decision by the same reviewer on the same item replaces
// theirs.
type reviewMutator struct {
	handlerBase
	keys *approval.Keys
}

func (m *reviewMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	rev := &pimv1.AccessReview{}
	if err := m.decoder.Decode(req, rev); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	old := &pimv1.AccessReview{}
	if req.Operation == admissionv1.Update {
		if err := m.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
	} else if req.Operation != admissionv1.Create {
		return admission.Allowed("")
	}
	if old.Annotations[pimv1.AnnotationReviewDecisions] != rev.Annotations[pimv1.AnnotationReviewDecisions] {
		return admission.Denied(fmt.Sprintf("annotation %s is written by kubepim alone; decide with %s<item-id>=\"Approve: <reason>\" or \"Deny: <reason>\"",
			pimv1.AnnotationReviewDecisions, pimv1.AnnotationReviewDecisionPrefix))
	}
	var decisions []string
	for k := range rev.Annotations {
		if strings.HasPrefix(k, pimv1.AnnotationReviewDecisionPrefix) {
			decisions = append(decisions, k)
		}
	}
	if len(decisions) == 0 {
		return admission.Allowed("")
	}
	if req.Operation == admissionv1.Create {
		return admission.Denied("decisions are made on a running review, not when creating it")
	}
	user := userInfo(req.UserInfo)
	if old.Status.State != pimv1.ReviewStateInProgress {
		return admission.Denied(fmt.Sprintf("this review is %s, not InProgress: there is nothing to decide", orNone(old.Status.State)))
	}
	key, err := m.keys.Key(ctx)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	signed, err := approval.ParseReview(old.Annotations[pimv1.AnnotationReviewDecisions])
	if err != nil {
		return admission.Denied(err.Error())
	}
	for _, k := range decisions {
		value := rev.Annotations[k]
		delete(rev.Annotations, k)
		id := strings.TrimPrefix(k, pimv1.AnnotationReviewDecisionPrefix)
		item := findItem(old.Status.Items, id)
		if item == nil {
			return admission.Denied(fmt.Sprintf("item %q is not in this review's instance %d (kubectl get accessreview %s -o yaml lists the items)", id, old.Status.Instance, old.Name))
		}
		decision, reason, ok := parseReviewDecision(value)
		if !ok {
			return admission.Denied(fmt.Sprintf("%s must be \"Approve: <reason>\" or \"Deny: <reason>\"", k))
		}
		if reason == "" && old.Spec.Settings.RequireJustification {
			return admission.Denied("give a reason: \"" + decision + ": <reason>\"")
		}
		if err := policy.MayReview(old.Spec, *item, *user); err != nil {
			return admission.Denied(err.Error())
		}
		rec := approval.ReviewRecord{Instance: old.Status.Instance, Item: id, Reviewer: pimv1.UserInfo{Username: user.Username, UID: user.UID, Groups: user.Groups},
			Decision: decision, Reason: reason, Time: metav1.NewTime(m.cfg.Clock.Now().UTC().Truncate(1e9))}
		// The same reviewer's earlier decision on this item is replaced.
		kept := signed[:0]
		for _, s := range signed {
			if !(s.Record.Instance == rec.Instance && s.Record.Item == id && s.Record.Reviewer.Username == user.Username) {
				kept = append(kept, s)
			}
		}
		signed = append(kept, approval.SignedReviewRecord{Record: rec, Signature: approval.SignReview(key, old.UID, rec)})
	}
	setAnnotation(rev, pimv1.AnnotationReviewDecisions, approval.EncodeReview(signed))
	return patched(req, rev)
}

func parseReviewDecision(v string) (decision, reason string, ok bool) {
	d, r, _ := strings.Cut(v, ":")
	switch strings.ToLower(strings.TrimSpace(d)) {
	case "approve":
		return pimv1.ReviewDecisionApprove, strings.TrimSpace(r), true
	case "deny":
		return pimv1.ReviewDecisionDeny, strings.TrimSpace(r), true
	}
	return "", "", false
}

func findItem(items []pimv1.ReviewItem, id string) *pimv1.ReviewItem {
	for i := range items {
		if items[i].ID == id {
			return &items[i]
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "not started"
	}
	return s
}
