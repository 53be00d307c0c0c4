package webhooks

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
)

// reviewItem is the item of subject's assignment in instance 1 of review q.
func reviewItem(subject string) *pimv1.AccessReviewItem {
	return &pimv1.AccessReviewItem{
		ObjectMeta: metav1.ObjectMeta{Name: "q.1." + subject, UID: types.UID("item-uid-" + subject)},
		Spec: pimv1.AccessReviewItemSpec{Review: "q", ReviewUID: "review-uid", Instance: 1, ID: subject, Assignment: subject + "-view",
			AssignmentUID: subject + "-uid", Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: subject}, RoleRef: clusterRole("view"),
			Type: pimv1.AssignmentEligible, Recommendation: pimv1.ReviewDecisionApprove},
	}
}

func deciding(value string) func(*pimv1.AccessReviewItem) {
	return func(i *pimv1.AccessReviewItem) { annotated(i, pimv1.AnnotationDecision, value) }
}

func TestItemDecider(t *testing.T) {
	type setup struct {
		review func(*pimv1.AccessReview)
		old    func(*pimv1.AccessReviewItem)
		user   *pimv1.UserInfo
		change func(*pimv1.AccessReviewItem)
	}
	dana := user("dana", "team-1", "team-2")
	for _, tc := range []struct {
		name    string
		setup   setup
		want    want
		records int
		seq     int64
	}{
		{name: "turns a reviewer's decision into a signed record", setup: setup{user: dana, change: deciding("Deny: left the team")}, want: allowed, records: 1, seq: 1},
		{name: "leaves other changes alone", setup: setup{user: dana, change: func(i *pimv1.AccessReviewItem) { i.Labels = map[string]string{"a": "b"} }}, want: allowed},
		{name: "refuses writing the records", setup: setup{user: dana, change: func(i *pimv1.AccessReviewItem) { annotated(i, pimv1.AnnotationReviewDecisions, "[]") }},
			want: refused("metadata.annotations[kubepim.io/review-decisions]", "written by kubepim alone")},
		{name: "refuses a decision on a review not running", setup: setup{review: func(r *pimv1.AccessReview) { r.Status.State = pimv1.ReviewStateClosing }, user: dana, change: deciding("Approve: ok")},
			want: refused("metadata.annotations[kubepim.io/decision]", "instance 1 of AccessReview q is Closing: there is nothing to decide")},
		{name: "refuses a decision on an item of an earlier instance", setup: setup{review: func(r *pimv1.AccessReview) { r.Status.Instance = 2 }, user: dana, change: deciding("Approve: ok")},
			want: refused("metadata.annotations[kubepim.io/decision]", "over (instance 2 is the current one)")},
		{name: "refuses a decision when the review is gone", setup: setup{review: func(r *pimv1.AccessReview) { r.UID = "another" }, user: dana, change: deciding("Approve: ok")},
			want: refused("metadata.annotations[kubepim.io/decision]", "AccessReview q of this item is gone")},
		{name: "refuses a decision after the instance closed", setup: setup{review: func(r *pimv1.AccessReview) { r.Status.DueAt.Time = testNow }, user: dana, change: deciding("Deny: too late")},
			want: refused("metadata.annotations[kubepim.io/decision]", "decisions are no longer taken")},
		{name: "refuses a value that is no decision", setup: setup{user: dana, change: deciding("maybe")},
			want: refused("metadata.annotations[kubepim.io/decision]", `must be "Approve: <reason>" or "Deny: <reason>"`)},
		{name: "refuses a decision without a reason when one is required", setup: setup{review: func(r *pimv1.AccessReview) { r.Spec.Settings.RequireJustification = ptr.To(true) }, user: dana, change: deciding("Deny")},
			want: refused("metadata.annotations[kubepim.io/decision]", `give a reason: "Deny: <reason>"`)},
		{name: "refuses someone who is not a reviewer", setup: setup{user: user("mallory"), change: deciding("Approve: sure")},
			want: refused("metadata.annotations[kubepim.io/decision]", "mallory is not a reviewer")},
		{name: "refuses reviewing one's own access", setup: setup{old: func(i *pimv1.AccessReviewItem) { *i = *reviewItem("dana") }, user: dana, change: deciding("Approve: mine")},
			want: refused("metadata.annotations[kubepim.io/decision]", "cannot review your own access")},
		{name: "refuses a reason too long", setup: setup{user: dana, change: deciding("Approve: " + strings.Repeat("x", 2000))},
			want: refused("metadata.annotations[kubepim.io/decision]", "keep it to 1024")},
		{name: "drops recorded decisions and numbers after them", setup: setup{user: dana, change: deciding("Approve: back"), old: func(i *pimv1.AccessReviewItem) {
			i.Status.DecisionsRecorded = 7
			annotated(i, pimv1.AnnotationReviewDecisions, approval.EncodeReview([]approval.SignedReviewRecord{{Record: approval.ReviewRecord{Seq: 7, Instance: 1, Item: "alice"}}}))
		}}, want: allowed, records: 1, seq: 8},
		{name: "keeps decisions not yet recorded", setup: setup{user: dana, change: deciding("Approve: back"), old: func(i *pimv1.AccessReviewItem) {
			annotated(i, pimv1.AnnotationReviewDecisions, approval.EncodeReview([]approval.SignedReviewRecord{{Record: approval.ReviewRecord{Seq: 1, Instance: 1, Item: "alice"}}}))
		}}, want: allowed, records: 2, seq: 2},
		{name: "refuses past the bound of decisions waiting", setup: setup{user: dana, change: deciding("Approve: again"), old: func(i *pimv1.AccessReviewItem) {
			var waiting []approval.SignedReviewRecord
			for n := range MaxPendingReviewDecisions {
				waiting = append(waiting, approval.SignedReviewRecord{Record: approval.ReviewRecord{Seq: int64(n + 1), Instance: 1, Item: "alice"}})
			}
			annotated(i, pimv1.AnnotationReviewDecisions, approval.EncodeReview(waiting))
		}}, want: refused("metadata.annotations[kubepim.io/decision]", fmt.Sprintf("%d decisions on this item wait for kubepim to record them", MaxPendingReviewDecisions))},
		{name: "counts forged records for nothing, their numbers included", setup: setup{user: dana, change: deciding("Approve: again"), old: func(i *pimv1.AccessReviewItem) {
			var forged []approval.SignedReviewRecord
			for n := range MaxPendingReviewDecisions {
				forged = append(forged, approval.SignedReviewRecord{Record: approval.ReviewRecord{Seq: math.MaxInt64 - int64(n), Instance: 1, Item: "alice"}, Signature: "AAAA"})
			}
			annotated(i, pimv1.AnnotationReviewDecisions, approval.EncodeReview(forged))
		}}, want: allowed, records: 1, seq: 1},
		{name: "refuses past the most decisions an item takes", setup: setup{user: dana, change: deciding("Approve: again"), old: func(i *pimv1.AccessReviewItem) {
			i.Status.DecisionsRecorded = MaxReviewDecisionsPerItem
		}}, want: refused("metadata.annotations[kubepim.io/decision]", fmt.Sprintf("this item has had %d decisions in this instance", MaxReviewDecisionsPerItem))},
		{name: "refuses a decision on a closed item, whatever the cache says", setup: setup{user: dana, change: deciding("Approve: late"), old: func(i *pimv1.AccessReviewItem) {
			i.Status.Closed, i.Status.Decision = ptr.To(true), pimv1.ReviewDecisionDeny
		}}, want: refused("metadata.annotations[kubepim.io/decision]", "is closed: its final decision is Deny")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rev := running()
			rev.Spec.Reviewers = append(rev.Spec.Reviewers, pimv1.Principal{Kind: pimv1.SubjectKindGroup, Name: "team-2"})
			if tc.setup.review != nil {
				tc.setup.review(rev)
			}
			old := reviewItem("alice")
			if tc.setup.old != nil {
				tc.setup.old(old)
			}
			c := fakeClient(rev)
			m := &itemDecider{handlerBase: testBase(c, allowing()), keys: testKeys(c)}
			if raw := old.Annotations[pimv1.AnnotationReviewDecisions]; raw != "" && !strings.Contains(tc.name, "forged") {
				// The records the test put there are kubepim's.
				key, _ := m.keys.Key(context.Background())
				records, _ := approval.ParseReview(raw)
				for i := range records {
					records[i].Signature = approval.SignReview(key, old.UID, records[i].Record)
				}
				old.Annotations[pimv1.AnnotationReviewDecisions] = approval.EncodeReview(records)
			}
			cur := old.DeepCopy()
			tc.setup.change(cur)
			req := update(tc.setup.user, old, cur)
			tc.want.check(t, m.mutate(context.Background(), req))
			if tc.want != allowed {
				return
			}
			if _, left := req.New.Annotations[pimv1.AnnotationDecision]; left {
				t.Error("the decision annotation stayed")
			}
			signed, err := approval.ParseReview(req.New.Annotations[pimv1.AnnotationReviewDecisions])
			if err != nil || len(signed) != tc.records {
				t.Fatalf("records = %v, %v; want %d", signed, err, tc.records)
			}
			if tc.records == 0 {
				return
			}
			key, _ := m.keys.Key(context.Background())
			last := signed[len(signed)-1]
			if !approval.VerifyReview(key, old.UID, last) || last.Record.Seq != tc.seq || last.Record.Reviewer.Username != "dana" || last.Record.Item != "alice" {
				t.Errorf("record = %+v", last.Record)
			}
			if got := last.Record.Reviewer.Groups; len(got) != 1 || got[0] != "team-2" || last.Record.Via != "User dana" {
				t.Errorf("the record keeps the deciding groups (team-2) and how dana may decide (by name): %v, %q", got, last.Record.Via)
			}
			if !last.Record.Time.Time.Equal(testNow) {
				t.Errorf("time = %v", last.Record.Time)
			}
		})
	}
}
