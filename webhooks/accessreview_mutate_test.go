package webhooks

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
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

// running is a review in progress.
func running() *pimv1.AccessReview {
	r := review("q")
	r.Status = pimv1.AccessReviewStatus{State: pimv1.ReviewStateInProgress, Instance: 1, DueAt: &metav1.Time{Time: testNow.Add(time.Hour)}}
	return r
}

func TestReviewMutator(t *testing.T) {
	for _, tc := range []struct {
		name      string
		req       func() Request[*pimv1.AccessReview]
		want      want
		changedBy string
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
		{name: "refuses writing the pre-0.4 records", req: func() Request[*pimv1.AccessReview] {
			return update(user("dana"), running(), annotated(running(), pimv1.AnnotationReviewDecisions, "[]"))
		}, want: refused("metadata.annotations[kubepim.io/review-decisions]", "written by kubepim alone")},
		{name: "sends a decision on the review to its item", req: func() Request[*pimv1.AccessReview] {
			return update(user("dana"), running(), annotated(running(), pimv1.AnnotationReviewDecisionPrefix+"0123456789ab", "Approve: ok"))
		}, want: refused("metadata.annotations[decision.kubepim.io/0123456789ab]",
			`kubectl pim review decide q 0123456789ab --approve|--deny --reason TEXT, or kubectl annotate accessreviewitem q.reviewui.1.0123456789ab kubepim.io/decision=`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &reviewMutator{handlerBase: testBase(fakeClient(), allowing())}
			req := tc.req()
			tc.want.check(t, m.mutate(context.Background(), req))
			if tc.want != allowed {
				return
			}
			if got := req.New.Annotations[pimv1.AnnotationChangedBy]; got != tc.changedBy {
				t.Errorf("changed-by = %q, want %q", got, tc.changedBy)
			}
		})
	}
}
