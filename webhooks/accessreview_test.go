package webhooks

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
)

func TestReviewChanges(t *testing.T) {
	base := func() *pimv1.AccessReview {
		return &pimv1.AccessReview{
			ObjectMeta: metav1.ObjectMeta{Name: "q", Labels: map[string]string{"team": "a"},
				Annotations: map[string]string{"note": "x", pimv1.AnnotationChangedBy: "pam", pimv1.AnnotationReviewDecisions: "[]"}},
			Spec: pimv1.AccessReviewSpec{ReviewerType: pimv1.ReviewerTypeNamed, Reviewers: []pimv1.Principal{{Kind: "User", Name: "dana"}},
				Duration: metav1.Duration{Duration: time.Hour}, Settings: pimv1.AccessReviewSettings{DefaultDecision: pimv1.ReviewDecisionNone}},
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*pimv1.AccessReview)
		want   []string
	}{
		{"nothing", func(*pimv1.AccessReview) {}, nil},
		{"a decision annotation", func(r *pimv1.AccessReview) { r.Annotations[pimv1.AnnotationReviewDecisionPrefix+"abc"] = "Deny: x" }, nil},
		{"the records kubepim writes", func(r *pimv1.AccessReview) { r.Annotations[pimv1.AnnotationReviewDecisions] = "[{}]" }, nil},
		{"the changer stamp", func(r *pimv1.AccessReview) { r.Annotations[pimv1.AnnotationChangedBy] = "mallory" }, nil},
		{"a reviewer", func(r *pimv1.AccessReview) {
			r.Spec.Reviewers = append(r.Spec.Reviewers, pimv1.Principal{Kind: "User", Name: "mallory"})
		}, []string{"spec"}},
		{"the reviewer type", func(r *pimv1.AccessReview) { r.Spec.ReviewerType = pimv1.ReviewerTypeSelf }, []string{"spec"}},
		{"duration and default", func(r *pimv1.AccessReview) {
			r.Spec.Duration.Duration, r.Spec.Settings.DefaultDecision = time.Second, pimv1.ReviewDecisionDeny
		}, []string{"spec"}},
		{"the scope", func(r *pimv1.AccessReview) { r.Spec.Scope.Namespaces = []string{"x"} }, []string{"spec"}},
		{"a label", func(r *pimv1.AccessReview) { r.Labels["team"] = "b" }, []string{"labels"}},
		{"another annotation", func(r *pimv1.AccessReview) { delete(r.Annotations, "note") }, []string{"annotations"}},
		{"a finalizer", func(r *pimv1.AccessReview) { r.Finalizers = []string{"x/y"} }, []string{"finalizers"}},
		{"an owner", func(r *pimv1.AccessReview) {
			r.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: "gone", UID: "1"}}
		}, []string{"ownerReferences"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, cur := base(), base()
			tc.mutate(cur)
			if got := reviewChanges(old, cur); !slices.Equal(got, tc.want) {
				t.Errorf("reviewChanges = %v, want %v", got, tc.want)
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
