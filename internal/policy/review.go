package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// ReviewItemByID returns the item of an instance with id, or nil.
func ReviewItemByID(items []pimv1.ReviewItem, id string) *pimv1.ReviewItem {
	for i := range items {
		if items[i].ID == id {
			return &items[i]
		}
	}
	return nil
}

// ReviewItemID is the short, stable id of an assignment in a review, used
// in decision annotation keys.
func ReviewItemID(assignmentUID string) string {
	sum := sha256.Sum256([]byte(assignmentUID))
	return hex.EncodeToString(sum[:])[:12]
}

// addPeriod moves t by n recurrence periods.
func addPeriod(t time.Time, recurrence string, n int) time.Time {
	switch recurrence {
	case pimv1.RecurrenceWeekly:
		return t.AddDate(0, 0, 7*n)
	case pimv1.RecurrenceMonthly:
		return t.AddDate(0, n, 0)
	case pimv1.RecurrenceQuarterly:
		return t.AddDate(0, 3*n, 0)
	case pimv1.RecurrenceSemiAnnually:
		return t.AddDate(0, 6*n, 0)
	case pimv1.RecurrenceAnnually:
		return t.AddDate(n, 0, 0)
	}
	return t
}

// ReviewInstance is when instance n (from 1) of a review runs: it starts n-1
// recurrence periods after the first start and stays open for the review's
// duration, at most one period.
func ReviewInstance(spec pimv1.AccessReviewSpec, firstStart time.Time, n int32) (start, due time.Time) {
	start = addPeriod(firstStart, spec.Recurrence.Type, int(n-1))
	d := spec.Duration.Duration
	if d <= 0 {
		d = 7 * 24 * time.Hour
	}
	if spec.Recurrence.Type != "" && spec.Recurrence.Type != pimv1.RecurrenceOneTime {
		if period := addPeriod(start, spec.Recurrence.Type, 1).Sub(start); d > period {
			d = period
		}
	}
	return start, start.Add(d)
}

// HasInstance reports whether instance n of a review runs at all.
func HasInstance(spec pimv1.AccessReviewSpec, firstStart time.Time, n int32) bool {
	if n < 1 {
		return false
	}
	r := spec.Recurrence
	if r.Type == "" || r.Type == pimv1.RecurrenceOneTime {
		return n == 1
	}
	if r.Occurrences > 0 && n > r.Occurrences {
		return false
	}
	start, _ := ReviewInstance(spec, firstStart, n)
	return r.EndDate == nil || !start.After(r.EndDate.Time)
}

// Recommend advises on keeping an assignment: Deny when its subject has
// not used the role within inactiveDays, else Approve. Use is what
// kubepim's authorizer recorded (status.lastUsedAt of the assignment, and
// of the activations of its subject that it covers): when usageTracked
// (--access-mode=authorizer, where every use is seen), an activation
// within inactiveDays that was never used counts as unused. Without a
// recorded use and untracked (bindings mode), activation stands for use.
// Usage of active (standing) assignments is not tracked, so they are
// recommended by age. last is the latest activation.
func Recommend(ra *pimv1.RoleAssignment, activations []pimv1.ActivationRequest, now time.Time, inactiveDays int32, usageTracked bool) (decision pimv1.ReviewDecision, reason string, last *metav1.Time) {
	idle := time.Duration(max(inactiveDays, 1)) * 24 * time.Hour
	var used *metav1.Time
	later := func(cur, t *metav1.Time) *metav1.Time {
		if t == nil || t.After(now) || (cur != nil && !t.After(cur.Time)) {
			return cur
		}
		return t.DeepCopy()
	}
	used = later(used, ra.Status.LastUsedAt)
	for i := range activations {
		ar := &activations[i]
		if ar.Spec.Requester == nil || ar.Status.ActivatedAt == nil || !SubjectMatches(ra.Spec.Subject, *ar.Spec.Requester) ||
			!Covers(ra, ar.Spec.RoleRef, ar.Spec.Namespace) || ar.Status.ActivatedAt.After(now) {
			continue
		}
		last = later(last, ar.Status.ActivatedAt)
		used = later(used, ar.Status.LastUsedAt)
	}
	switch {
	case ra.Spec.Type == pimv1.AssignmentActive:
		return pimv1.ReviewDecisionApprove, "standing access: its use is not tracked", last
	case used != nil && now.Sub(used.Time) < idle:
		return pimv1.ReviewDecisionApprove, fmt.Sprintf("last used %s", used.UTC().Format(time.RFC3339)), last
	case used != nil:
		return pimv1.ReviewDecisionDeny, fmt.Sprintf("not used in the last %d days (last used %s)", inactiveDays, used.UTC().Format(time.RFC3339)), last
	case usageTracked && last != nil && now.Sub(last.Time) < idle:
		return pimv1.ReviewDecisionDeny, fmt.Sprintf("activated %s but never used", last.UTC().Format(time.RFC3339)), last
	case last != nil && now.Sub(last.Time) < idle:
		return pimv1.ReviewDecisionApprove, fmt.Sprintf("activated %s", last.UTC().Format(time.RFC3339)), last
	case last != nil:
		return pimv1.ReviewDecisionDeny, fmt.Sprintf("not activated in the last %d days", inactiveDays), last
	case now.Sub(AssignmentWindow(ra).Start) < idle:
		return pimv1.ReviewDecisionApprove, fmt.Sprintf("assigned within the last %d days", inactiveDays), nil
	}
	return pimv1.ReviewDecisionDeny, fmt.Sprintf("never activated, and assigned over %d days ago", inactiveDays), nil
}

// MayReview says why user may not decide on the item of an assignment
// for subject, or nil. Named reviewers and fallback reviewers decide,
// never on their own access; in a Self review each assignee decides on
// their own.
func MayReview(spec pimv1.AccessReviewSpec, subject pimv1.Subject, itemID string, user pimv1.UserInfo) error {
	_, err := ReviewerVia(spec, subject, itemID, user)
	return err
}

// ReviewerVia says through which principal user may decide on the item of
// an assignment for subject — "User <name>", "Group <name>" (the first
// group, in the review's order, that names them), or "Self" in a
// self-review — or why they may not. It is what a decision records, in
// place of every group the reviewer belongs to.
func ReviewerVia(spec pimv1.AccessReviewSpec, subject pimv1.Subject, itemID string, user pimv1.UserInfo) (string, error) {
	if spec.ReviewerType == pimv1.ReviewerTypeSelf {
		if SubjectMatches(subject, user) {
			return "Self", nil
		}
		if via := principalVia(spec.FallbackReviewers, user); via != "" {
			return via, nil
		}
		return "", fmt.Errorf("in a self-review only the assignee (%s %s) or a fallback reviewer decides on item %s", subject.Kind, subject.Name, itemID)
	}
	named := append(slices.Clone(spec.Reviewers), spec.FallbackReviewers...)
	via := principalVia(named, user)
	if via == "" {
		return "", fmt.Errorf("%s is not a reviewer of this review; the reviewers are %s", user.Username, describePrincipals(named))
	}
	if SubjectMatches(subject, user) {
		return "", fmt.Errorf("you cannot review your own access (item %s)", itemID)
	}
	return via, nil
}

// ReviewsAs says how user takes part in a review, for the front ends to
// show before any item is read: "User <name>" or "Group <name>" as a named
// or fallback reviewer, "Self" in a self-review (each assignee decides on
// their own items), or "" for a Named review that does not name them.
// Which item they may decide on is still ReviewerVia's (never their own
// access in a Named review).
func ReviewsAs(spec pimv1.AccessReviewSpec, user pimv1.UserInfo) string {
	if spec.ReviewerType == pimv1.ReviewerTypeSelf {
		if via := principalVia(spec.FallbackReviewers, user); via != "" {
			return via
		}
		return "Self"
	}
	return principalVia(append(slices.Clone(spec.Reviewers), spec.FallbackReviewers...), user)
}

// DescribeReviewers lists a review's reviewers and fallback reviewers.
func DescribeReviewers(spec pimv1.AccessReviewSpec) string {
	return describePrincipals(append(slices.Clone(spec.Reviewers), spec.FallbackReviewers...))
}

// principalVia names the first of principals that user is, by name before
// group, or "".
func principalVia(principals []pimv1.Principal, user pimv1.UserInfo) string {
	for _, p := range principals {
		if p.Kind == pimv1.SubjectKindUser && p.Name == user.Username {
			return p.Kind + " " + p.Name
		}
	}
	for _, p := range principals {
		if p.Kind == pimv1.SubjectKindGroup && slices.Contains(user.Groups, p.Name) {
			return p.Kind + " " + p.Name
		}
	}
	return ""
}

// ReviewItemName is the name of the AccessReviewItem for the assignment
// with item id in instance of the review with name and uid: readable where
// it fits, with the review's name hashed where it is too long. The first
// characters of the review's UID keep a review deleted and created again
// under the same name from meeting its predecessor's items.
func ReviewItemName(review, reviewUID string, instance int32, id string) string {
	uid := strings.ReplaceAll(reviewUID, "-", "")
	uid = uid[:min(8, len(uid))]
	name := fmt.Sprintf("%s.%s.%d.%s", review, uid, instance, id)
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(review))
	return fmt.Sprintf("%s.%s.%d.%s", hex.EncodeToString(sum[:])[:40], uid, instance, id)
}

// FinalReviewDecision is an item's decision when its instance closes: the
// reviewer's, or the review's default for undecided items.
func FinalReviewDecision(decision, recommendation, defaultDecision pimv1.ReviewDecision) pimv1.ReviewDecision {
	switch {
	case decision != "":
		return decision
	case defaultDecision == pimv1.ReviewDecisionRecommendation:
		return recommendation
	case defaultDecision == pimv1.ReviewDecisionApprove || defaultDecision == pimv1.ReviewDecisionDeny:
		return defaultDecision
	}
	return ""
}
