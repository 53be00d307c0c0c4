package webhooks

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/policy"
)

// +kubebuilder:webhook:path=/mutate-kubepim-io-v1alpha1-accessreview,mutating=true,failurePolicy=fail,sideEffects=None,groups=kubepim.io,resources=accessreviews,verbs=create;update,versions=v1alpha1,name=maccessreview.kubepim.io,admissionReviewVersions=v1

// maxUnrecordedDecisions bounds how many of one reviewer's decisions on one
// item wait in the annotation for kubepim to record them.
const maxUnrecordedDecisions = 5

// reviewMutator stamps who created or changed a review's spec, and turns a
// reviewer's decision.kubepim.io/<item> annotation into a signed record,
// after checking that this user may decide on that item now. A later
// decision by the same reviewer on the same item replaces theirs.
type reviewMutator struct {
	handlerBase
	keys *approval.Keys
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
		return forbidden(annotationPath(pimv1.AnnotationReviewDecisions), fmt.Sprintf("annotation %s is written by kubepim alone; decide with %s<item-id>=\"Approve: <reason>\" or \"Deny: <reason>\"",
			pimv1.AnnotationReviewDecisions, pimv1.AnnotationReviewDecisionPrefix))
	}
	// Who last created or changed what the review decides with (its
	// spec); the validating webhook checks that it is the user.
	stampChange(rev, old, pimv1.AnnotationChangedBy, user.Username, req.Operation == admissionv1.Create || !equality.Semantic.DeepEqual(old.Spec, rev.Spec))
	var decisions []string
	for k := range rev.Annotations {
		if strings.HasPrefix(k, pimv1.AnnotationReviewDecisionPrefix) {
			decisions = append(decisions, k)
		}
	}
	if len(decisions) == 0 {
		return nil
	}
	slices.Sort(decisions)
	if req.Operation == admissionv1.Create {
		return forbidden(annotationPath(decisions[0]), "decisions are made on a running review, not when creating it")
	}
	if old.Status.State != pimv1.ReviewStateInProgress {
		return forbidden(annotationPath(decisions[0]), fmt.Sprintf("this review is %s, not InProgress: there is nothing to decide", orNone(string(old.Status.State))))
	}
	if due := old.Status.DueAt; due != nil && !m.cfg.Clock.Now().Before(due.Time) {
		// kubepim may be closing the instance this very moment: a decision
		// now could be admitted and never applied.
		return forbidden(annotationPath(decisions[0]), fmt.Sprintf("instance %d of this review closed at %s: decisions are no longer taken", old.Status.Instance, due.UTC().Format(time.RFC3339)))
	}
	key, err := m.keys.Key(ctx)
	if err != nil {
		return internalError(annotationPath(decisions[0]), err)
	}
	signed, err := approval.ParseReview(old.Annotations[pimv1.AnnotationReviewDecisions])
	if err != nil {
		return forbidden(annotationPath(pimv1.AnnotationReviewDecisions), err.Error())
	}
	recorded := old.Status.DecisionsRecorded
	signed = slices.DeleteFunc(signed, func(s approval.SignedReviewRecord) bool {
		// Decisions of an earlier instance are over, and in the trail.
		return s.Record.Instance != old.Status.Instance && s.Record.Seq <= recorded
	})
	next := recorded
	for _, s := range signed {
		next = max(next, s.Record.Seq)
	}
	for _, k := range decisions {
		path := annotationPath(k)
		value := rev.Annotations[k]
		delete(rev.Annotations, k)
		id := strings.TrimPrefix(k, pimv1.AnnotationReviewDecisionPrefix)
		item := policy.ReviewItemByID(old.Status.Items, id)
		if item == nil {
			return forbidden(path, fmt.Sprintf("item %q is not in this review's instance %d (kubectl get accessreview %s -o yaml lists the items)", id, old.Status.Instance, old.Name))
		}
		decision, reason, ok := parseReviewDecision(value)
		if !ok {
			return forbidden(path, fmt.Sprintf("%s must be \"Approve: <reason>\" or \"Deny: <reason>\"", k))
		}
		if reason == "" && old.Spec.Settings.JustificationRequired() {
			return forbidden(path, "give a reason: \""+string(decision)+": <reason>\"")
		}
		if err := policy.MayReview(old.Spec, *item, *user); err != nil {
			return forbidden(path, err.Error())
		}
		next++
		if err := policy.CheckReason(reason); err != nil {
			return forbidden(path, err.Error())
		}
		deciders := append(slices.Clone(old.Spec.Reviewers), old.Spec.FallbackReviewers...)
		if item.Subject.Kind == pimv1.SubjectKindGroup {
			// A self-review of a group's assignment is decided by its members.
			deciders = append(deciders, pimv1.Principal{Kind: pimv1.SubjectKindGroup, Name: item.Subject.Name})
		}
		groups := policy.DecidingGroups(deciders, user.Groups)
		rec := approval.ReviewRecord{Seq: next, Instance: old.Status.Instance, Item: id, Reviewer: pimv1.UserInfo{Username: user.Username, UID: user.UID, Groups: groups},
			Decision: decision, Reason: reason, Time: metav1.NewTime(m.cfg.Clock.Now().UTC().Truncate(time.Second))}
		var unrecorded int
		signed, unrecorded = supersede(signed, rec, recorded)
		if unrecorded >= maxUnrecordedDecisions {
			return forbidden(path, fmt.Sprintf("you changed your decision on item %q %d times since kubepim last recorded it; "+
				"try again in a moment, once kubepim has recorded them (if this persists, kubepim's manager is not running)", id, unrecorded))
		}
		signed = append(signed, approval.SignedReviewRecord{Record: rec, Signature: approval.SignReview(key, old.UID, rec)})
	}
	setAnnotation(rev, pimv1.AnnotationReviewDecisions, approval.EncodeReview(signed))
	return nil
}

// supersede drops the reviewer's earlier decisions on rec's item that
// kubepim has recorded (seq at most recorded): rec replaces them. Earlier
// decisions not yet recorded stay until the controller has put them in the
// audit trail — every decision is recorded, even one changed within the
// same second. It returns the records kept and how many of the reviewer's
// unrecorded decisions on the item remain.
func supersede(signed []approval.SignedReviewRecord, rec approval.ReviewRecord, recorded int64) ([]approval.SignedReviewRecord, int) {
	unrecorded := 0
	kept := make([]approval.SignedReviewRecord, 0, len(signed)+1)
	for _, s := range signed {
		same := s.Record.Instance == rec.Instance && s.Record.Item == rec.Item && s.Record.Reviewer.Username == rec.Reviewer.Username
		if same && s.Record.Seq <= recorded {
			continue
		}
		if same {
			unrecorded++
		}
		kept = append(kept, s)
	}
	return kept, unrecorded
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
