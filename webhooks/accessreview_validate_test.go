package webhooks

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestReviewGuard(t *testing.T) {
	pam := user("pam")
	autoApply := func(r *pimv1.AccessReview) *pimv1.AccessReview { r.Spec.Settings.AutoApply = ptr.To(true); return r }
	for _, tc := range []struct {
		name   string
		access *access
		req    func(*reviewMutator) Request[*pimv1.AccessReview]
		want   want
	}{
		{"allows a manager creating a review", allowing("pam manage accessreviews"), func(*reviewMutator) Request[*pimv1.AccessReview] {
			return create(pam, review("q"))
		}, allowed},
		{"refuses creating without manage", allowing(), func(*reviewMutator) Request[*pimv1.AccessReview] {
			return create(pam, review("q"))
		}, refused("spec", `pam may not change a new review of AccessReview q: that needs the verb "manage"`)},
		{"refuses a changer stamp that is not the user", allowing("pam manage accessreviews"), func(*reviewMutator) Request[*pimv1.AccessReview] {
			return create(pam, annotated(review("q"), pimv1.AnnotationChangedBy, "mallory"))
		}, refused("metadata.annotations[kubepim.io/changed-by]", "must name the user making the change")},
		{"refuses autoApply without delete on assignments", allowing("pam manage accessreviews"), func(*reviewMutator) Request[*pimv1.AccessReview] {
			return create(pam, autoApply(review("q")))
		}, refused("spec.settings.autoApply", `pam may not create AccessReview q with settings.autoApply`)},
		{"allows autoApply with delete on assignments", allowing("pam manage accessreviews", "pam delete roleassignments"), func(*reviewMutator) Request[*pimv1.AccessReview] {
			return create(pam, autoApply(review("q")))
		}, allowed},
		{"fails when the access review fails", &access{err: errAPI}, func(*reviewMutator) Request[*pimv1.AccessReview] {
			return create(pam, review("q"))
		}, failed("spec")},
		{"refuses a reviewer changing the spec", allowing(), func(*reviewMutator) Request[*pimv1.AccessReview] {
			cur := annotated(running(), pimv1.AnnotationChangedBy, "dana")
			cur.Spec.Duration.Duration = time.Second
			return update(user("dana"), running(), cur)
		}, refused("spec", `dana may not change spec of AccessReview q`)},
		{"refuses a reviewer changing a label", allowing(), func(*reviewMutator) Request[*pimv1.AccessReview] {
			cur := running()
			cur.Labels = map[string]string{"team": "x"}
			return update(user("dana"), running(), cur)
		}, refused("metadata", `dana may not change labels of AccessReview q`)},
		{"refuses rewriting the changer stamp alone", allowing(), func(*reviewMutator) Request[*pimv1.AccessReview] {
			return update(user("dana"), running(), annotated(running(), pimv1.AnnotationChangedBy, "dana"))
		}, refused("metadata.annotations[kubepim.io/changed-by]", "written by kubepim alone")},
		{"refuses a change to the pre-0.4 records", allowing(), func(*reviewMutator) Request[*pimv1.AccessReview] {
			return update(user("dana"), running(), annotated(running(), pimv1.AnnotationReviewDecisions,
				`[{"record":{"seq":1,"instance":1,"item":"alice","reviewer":{"username":"dana"},"decision":"Deny"},"signature":"AAAA"}]`))
		}, refused("metadata.annotations[kubepim.io/review-decisions]", "written by kubepim alone")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeClient()
			m := &reviewMutator{handlerBase: testBase(c, allowing())}
			g := &reviewGuard{handlerBase: testBase(c, tc.access)}
			tc.want.check(t, g.validate(context.Background(), tc.req(m)))
		})
	}
}

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
