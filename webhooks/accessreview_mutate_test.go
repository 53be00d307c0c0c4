package webhooks

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
)

func review(name string) *pimv1.AccessReview {
	return &pimv1.AccessReview{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: "review-uid", Annotations: map[string]string{pimv1.AnnotationChangedBy: "pam"}},
		Spec: pimv1.AccessReviewSpec{ReviewerType: pimv1.ReviewerTypeNamed, Reviewers: []pimv1.Principal{{Kind: pimv1.SubjectKindUser, Name: "dana"}},
			Duration: metav1.Duration{Duration: time.Hour},
			// As the API server stores it: absent switches get their
			// defaults; this review leaves the assignments alone and lets
			// reviewers decide without a reason.
			Settings: pimv1.AccessReviewSettings{AutoApply: ptr.To(false), RequireJustification: ptr.To(false)}},
	}
}

// running is a review in progress with alice's and dana's assignments.
func running() *pimv1.AccessReview {
	r := review("q")
	r.Status = pimv1.AccessReviewStatus{State: pimv1.ReviewStateInProgress, Instance: 1, DueAt: &metav1.Time{Time: testNow.Add(time.Hour)},
		Items: []pimv1.ReviewItem{
			{ID: "alice", Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"}, RoleRef: clusterRole("view")},
			{ID: "dana", Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "dana"}, RoleRef: clusterRole("view")},
		}}
	return r
}

func TestReviewMutator(t *testing.T) {
	decide := func(item, value string) func(*pimv1.AccessReview) {
		return func(r *pimv1.AccessReview) { annotated(r, pimv1.AnnotationReviewDecisionPrefix+item, value) }
	}
	for _, tc := range []struct {
		name      string
		req       func() Request[*pimv1.AccessReview]
		want      want
		changedBy string
		records   int
	}{
		{name: "stamps the creator", req: func() Request[*pimv1.AccessReview] {
			return create(user("pam"), annotated(review("q"), pimv1.AnnotationChangedBy, "mallory"))
		}, want: allowed, changedBy: "pam"},
		{name: "stamps who changed the spec", req: func() Request[*pimv1.AccessReview] {
			cur := running()
			cur.Spec.Duration.Duration = time.Minute
			return update(user("root"), running(), cur)
		}, want: allowed, changedBy: "root"},
		{name: "puts the stamp back otherwise", req: func() Request[*pimv1.AccessReview] {
			return update(user("mallory"), running(), annotated(running(), pimv1.AnnotationChangedBy, "mallory"))
		}, want: allowed, changedBy: "pam"},
		{name: "refuses writing the records", req: func() Request[*pimv1.AccessReview] {
			return update(user("dana"), running(), annotated(running(), pimv1.AnnotationReviewDecisions, "[]"))
		}, want: refused("metadata.annotations[kubepim.io/review-decisions]", "written by kubepim alone")},
		{name: "refuses a decision when creating", req: func() Request[*pimv1.AccessReview] {
			r := review("q")
			decide("alice", "Approve: ok")(r)
			return create(user("pam"), r)
		}, want: refused("metadata.annotations[decision.kubepim.io/alice]", "not when creating it")},
		{name: "refuses a decision on a review not running", req: func() Request[*pimv1.AccessReview] {
			old := running()
			old.Status.State = ""
			cur := old.DeepCopy()
			decide("alice", "Approve: ok")(cur)
			return update(user("dana"), old, cur)
		}, want: refused("metadata.annotations[decision.kubepim.io/alice]", "this review is not started, not InProgress")},
		{name: "refuses a decision after the instance closed", req: func() Request[*pimv1.AccessReview] {
			old := running()
			old.Status.DueAt.Time = testNow
			cur := old.DeepCopy()
			decide("alice", "Deny: too late")(cur)
			return update(user("dana"), old, cur)
		}, want: refused("metadata.annotations[decision.kubepim.io/alice]", "decisions are no longer taken")},
		{name: "refuses an item not in the review", req: func() Request[*pimv1.AccessReview] {
			cur := running()
			decide("nobody", "Deny: x")(cur)
			return update(user("dana"), running(), cur)
		}, want: refused("metadata.annotations[decision.kubepim.io/nobody]", `item "nobody" is not in this review's instance 1`)},
		{name: "refuses a value that is no decision", req: func() Request[*pimv1.AccessReview] {
			cur := running()
			decide("alice", "maybe")(cur)
			return update(user("dana"), running(), cur)
		}, want: refused("metadata.annotations[decision.kubepim.io/alice]", `must be "Approve: <reason>" or "Deny: <reason>"`)},
		{name: "refuses someone who is not a reviewer", req: func() Request[*pimv1.AccessReview] {
			cur := running()
			decide("alice", "Approve: sure")(cur)
			return update(user("mallory"), running(), cur)
		}, want: refused("metadata.annotations[decision.kubepim.io/alice]", "mallory is not a reviewer")},
		{name: "refuses reviewing one's own access", req: func() Request[*pimv1.AccessReview] {
			cur := running()
			decide("dana", "Approve: mine")(cur)
			return update(user("dana"), running(), cur)
		}, want: refused("metadata.annotations[decision.kubepim.io/dana]", "cannot review your own access")},
		{name: "turns a reviewer's decision into a signed record", req: func() Request[*pimv1.AccessReview] {
			cur := running()
			decide("alice", "Deny: left the team")(cur)
			return update(user("dana"), running(), cur)
		}, want: allowed, changedBy: "pam", records: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeClient()
			m := &reviewMutator{handlerBase: testBase(c, allowing()), keys: testKeys(c)}
			req := tc.req()
			tc.want.check(t, m.mutate(context.Background(), req))
			if tc.want != allowed {
				return
			}
			if got := req.New.Annotations[pimv1.AnnotationChangedBy]; got != tc.changedBy {
				t.Errorf("changed-by = %q, want %q", got, tc.changedBy)
			}
			signed, err := approval.ParseReview(req.New.Annotations[pimv1.AnnotationReviewDecisions])
			if err != nil || len(signed) != tc.records {
				t.Fatalf("records = %v, %v; want %d", signed, err, tc.records)
			}
			key, _ := m.keys.Key(context.Background())
			for _, s := range signed {
				if !approval.VerifyReview(key, req.New.UID, s) || s.Record.Reviewer.Username != "dana" || s.Record.Decision != pimv1.ReviewDecisionDeny || s.Record.Seq != 1 {
					t.Errorf("record = %+v", s.Record)
				}
			}
			if _, left := req.New.Annotations[pimv1.AnnotationReviewDecisionPrefix+"alice"]; left {
				t.Error("the decision annotation stayed")
			}
		})
	}
}

func TestSupersede(t *testing.T) {
	rec := func(seq int64, reviewer, item string) approval.SignedReviewRecord {
		return approval.SignedReviewRecord{Record: approval.ReviewRecord{Seq: seq, Instance: 1, Item: item, Reviewer: pimv1.UserInfo{Username: reviewer}}}
	}
	seqs := func(rs []approval.SignedReviewRecord) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.Record.Seq)
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		signed     []approval.SignedReviewRecord
		recorded   int64
		want       []int64
		unrecorded int
	}{
		{"first decision", nil, 0, nil, 0},
		{"replaces the reviewer's recorded decision", []approval.SignedReviewRecord{rec(1, "dana", "a")}, 1, nil, 0},
		{"keeps the reviewer's decision not yet recorded", []approval.SignedReviewRecord{rec(1, "dana", "a")}, 0, []int64{1}, 1},
		{"keeps other reviewers and other items", []approval.SignedReviewRecord{rec(1, "erin", "a"), rec(2, "dana", "b")}, 2, []int64{1, 2}, 0},
		{"counts the waiting ones", []approval.SignedReviewRecord{rec(1, "dana", "a"), rec(2, "dana", "a"), rec(3, "dana", "a")}, 1, []int64{2, 3}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, unrecorded := supersede(tc.signed, approval.ReviewRecord{Seq: 9, Instance: 1, Item: "a", Reviewer: pimv1.UserInfo{Username: "dana"}}, tc.recorded)
			if !slices.Equal(seqs(kept), tc.want) || unrecorded != tc.unrecorded {
				t.Errorf("supersede = %v, %d; want %v, %d", seqs(kept), unrecorded, tc.want, tc.unrecorded)
			}
		})
	}
}
