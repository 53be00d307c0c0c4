package webhooks

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/policy"
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
	// Who last created or changed what the review decides with (its
	// spec); the validating webhook checks that it is the user.
	restore(rev, old, pimv1.AnnotationChangedBy)
	if req.Operation == admissionv1.Create || !equality.Semantic.DeepEqual(old.Spec, rev.Spec) {
		setAnnotation(rev, pimv1.AnnotationChangedBy, req.UserInfo.Username)
	}
	var decisions []string
	for k := range rev.Annotations {
		if strings.HasPrefix(k, pimv1.AnnotationReviewDecisionPrefix) {
			decisions = append(decisions, k)
		}
	}
	if len(decisions) == 0 {
		return patched(req, rev)
	}
	if req.Operation == admissionv1.Create {
		return admission.Denied("decisions are made on a running review, not when creating it")
	}
	user := userInfo(req.UserInfo)
	if old.Status.State != pimv1.ReviewStateInProgress {
		return admission.Denied(fmt.Sprintf("this review is %s, not InProgress: there is nothing to decide", orNone(string(old.Status.State))))
	}
	if due := old.Status.DueAt; due != nil && !m.cfg.Clock.Now().Before(due.Time) {
		// kubepim may be closing the instance this very moment: a decision
		// now could be admitted and never applied.
		return admission.Denied(fmt.Sprintf("instance %d of this review closed at %s: decisions are no longer taken", old.Status.Instance, due.UTC().Format(time.RFC3339)))
	}
	key, err := m.keys.Key(ctx)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	signed, err := approval.ParseReview(old.Annotations[pimv1.AnnotationReviewDecisions])
	if err != nil {
		return admission.Denied(err.Error())
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
	slices.Sort(decisions)
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
		if reason == "" && old.Spec.Settings.JustificationRequired() {
			return admission.Denied("give a reason: \"" + string(decision) + ": <reason>\"")
		}
		if err := policy.MayReview(old.Spec, *item, *user); err != nil {
			return admission.Denied(err.Error())
		}
		next++
		if err := policy.CheckReason(reason); err != nil {
			return admission.Denied(err.Error())
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
			return admission.Denied(fmt.Sprintf("you changed your decision on item %q %d times since kubepim last recorded it; "+
				"try again in a moment, once kubepim has recorded them (if this persists, kubepim's manager is not running)", id, unrecorded))
		}
		signed = append(signed, approval.SignedReviewRecord{Record: rec, Signature: approval.SignReview(key, old.UID, rec)})
	}
	setAnnotation(rev, pimv1.AnnotationReviewDecisions, approval.EncodeReview(signed))
	return patched(req, rev)
}

// maxUnrecordedDecisions bounds how many of one reviewer's decisions on one
// item wait in the annotation for kubepim to record them.
const maxUnrecordedDecisions = 5

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

// VerbManage on accessreviews.kubepim.io is needed to create an AccessReview
// or change what a review decides with; a reviewer needs only patch, to
// add decision annotations.
const verbManageReviews = VerbManage

// reviewChanges lists what an update changes that only someone who may
// manage the review may change: everything but the decision annotations
// (turned into signed records by the mutating webhook). The spec decides
// who reviews, for how long, and what happens to undecided items; and
// labels, annotations, finalizers and owner references are guarded too
// (an owner reference to a missing owner makes the garbage collector
// delete the review, a finalizer keeps it from going).
func reviewChanges(old, cur *pimv1.AccessReview) []string {
	var changed []string
	if !equality.Semantic.DeepEqual(old.Spec, cur.Spec) {
		changed = append(changed, "spec")
	}
	if !maps.Equal(old.Labels, cur.Labels) {
		changed = append(changed, "labels")
	}
	if !maps.Equal(guardedAnnotations(old.Annotations), guardedAnnotations(cur.Annotations)) {
		changed = append(changed, "annotations")
	}
	if !slices.Equal(old.Finalizers, cur.Finalizers) {
		changed = append(changed, "finalizers")
	}
	if !equality.Semantic.DeepEqual(old.OwnerReferences, cur.OwnerReferences) {
		changed = append(changed, "ownerReferences")
	}
	return changed
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

// reviewGuard decides who may create an AccessReview and who may change a
// running one. A review removes the assignments its reviewers deny (and,
// with a default decision of Deny or Recommendation, those nobody
// decided): so creating one, or changing anything but decisions, needs the
// verb "manage" on accessreviews.kubepim.io and, when it applies its
// decisions (autoApply), the right to delete RoleAssignments — the power
// the review exercises. Decisions themselves are checked by reviewMutator.
type reviewGuard struct {
	handlerBase
	keys *approval.Keys
}

func (g *reviewGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	rev := &pimv1.AccessReview{}
	if err := g.decoder.Decode(req, rev); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	old := &pimv1.AccessReview{}
	changes := []string{"a new review"}
	if req.Operation == admissionv1.Update {
		if err := g.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
		if resp := g.checkRecords(ctx, old, rev, req.UserInfo.Username); !resp.Allowed {
			return resp
		}
		changes = reviewChanges(old, rev)
		if len(changes) == 0 {
			if old.Annotations[pimv1.AnnotationChangedBy] != rev.Annotations[pimv1.AnnotationChangedBy] {
				return admission.Denied(fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationChangedBy))
			}
			return admission.Allowed("")
		}
	}
	user := userInfo(req.UserInfo)
	specChanged := req.Operation == admissionv1.Create || !equality.Semantic.DeepEqual(old.Spec, rev.Spec)
	switch {
	case specChanged && rev.Annotations[pimv1.AnnotationChangedBy] != user.Username:
		// Fails closed without the mutating webhook, which stamps the changer.
		return admission.Denied(fmt.Sprintf("annotation %s must name the user making the change (kubepim's mutating webhook stamps it; is it installed?)", pimv1.AnnotationChangedBy))
	case !specChanged && old.Annotations[pimv1.AnnotationChangedBy] != rev.Annotations[pimv1.AnnotationChangedBy]:
		return admission.Denied(fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationChangedBy))
	}
	a := access{g.direct}
	manage, err := a.allowed(ctx, user, &authorizationv1.ResourceAttributes{
		Group: pimv1.GroupVersion.Group, Resource: "accessreviews", Verb: verbManageReviews, Name: req.Name,
	}, nil)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	what := strings.Join(changes, ", ")
	if !manage {
		return admission.Denied(fmt.Sprintf("%s may not change %s of AccessReview %s: that needs the verb %q on accessreviews.kubepim.io "+
			"(reviewers decide with the %s<item-id> annotation and may change nothing else)", user.Username, what, req.Name, verbManageReviews, pimv1.AnnotationReviewDecisionPrefix))
	}
	if req.Operation == admissionv1.Create {
		what = "create AccessReview " + req.Name
	} else {
		what = "change " + what + " of AccessReview " + req.Name
	}
	if rev.Spec.Settings.AutoApplies() {
		del, err := a.allowed(ctx, user, &authorizationv1.ResourceAttributes{
			Group: pimv1.GroupVersion.Group, Resource: "roleassignments", Verb: "delete",
		}, nil)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		if !del {
			return admission.Denied(fmt.Sprintf("%s may not %s with settings.autoApply: the review removes denied RoleAssignments, "+
				"which needs the verb \"delete\" on roleassignments.kubepim.io (or set autoApply: false)", user.Username, what))
		}
	}
	return admission.Allowed("")
}

// checkRecords fails closed when the mutating webhook was bypassed: every
// decision record an update adds must be kubepim's, signed for this
// review, and the user's own.
func (g *reviewGuard) checkRecords(ctx context.Context, old, cur *pimv1.AccessReview, username string) admission.Response {
	before, after := old.Annotations[pimv1.AnnotationReviewDecisions], cur.Annotations[pimv1.AnnotationReviewDecisions]
	if before == after {
		return admission.Allowed("")
	}
	had, err := approval.ParseReview(before)
	if err != nil {
		had = nil
	}
	has, err := approval.ParseReview(after)
	if err != nil {
		return admission.Denied(err.Error())
	}
	key, err := g.keys.Key(ctx)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	for _, s := range has {
		if slices.ContainsFunc(had, func(h approval.SignedReviewRecord) bool { return h.Signature == s.Signature }) {
			continue
		}
		if !approval.VerifyReview(key, cur.UID, s) || s.Record.Reviewer.Username != username {
			return admission.Denied(fmt.Sprintf("annotation %s is written by kubepim alone", pimv1.AnnotationReviewDecisions))
		}
	}
	return admission.Allowed("")
}
