package webhooks

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestItemGuard(t *testing.T) {
	dana := user("dana")
	forged := `[{"record":{"seq":1,"instance":1,"item":"alice","reviewer":{"username":"dana"},"decision":"Deny"},"signature":"AAAA"}]`
	for _, tc := range []struct {
		name   string
		access *access
		req    func(*itemDecider) Request[*pimv1.AccessReviewItem]
		want   want
	}{
		{"allows kubepim anything", allowing(), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			return create(user("system:serviceaccount:kubepim-system:kubepim"), reviewItem("alice"))
		}, allowed},
		{"refuses anyone else creating an item, admins included", allowing("root manage accessreviews"), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			return create(user("root"), reviewItem("alice"))
		}, refused("spec", "AccessReviewItems are created by kubepim")},
		{"refuses writing the status", allowing("root manage accessreviews"), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			cur := reviewItem("alice")
			cur.Status.Decision = pimv1.ReviewDecisionDeny
			req := update(user("root"), reviewItem("alice"), cur)
			req.SubResource = "status"
			return req
		}, refused("status", "root may not write it")},
		{"refuses changing the spec", allowing("root manage accessreviews"), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			cur := reviewItem("alice")
			cur.Spec.AssignmentUID = "someone-elses"
			return update(user("root"), reviewItem("alice"), cur)
		}, refused("spec", "never changes")},
		{"refuses a record kubepim did not sign", allowing(), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			return update(dana, reviewItem("alice"), annotated(reviewItem("alice"), pimv1.AnnotationReviewDecisions, forged))
		}, refused("metadata.annotations[kubepim.io/review-decisions]", "written by kubepim alone")},
		{"refuses a decision the mutating webhook did not take", allowing(), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			return update(dana, reviewItem("alice"), annotated(reviewItem("alice"), pimv1.AnnotationDecision, "Deny: x"))
		}, refused("metadata.annotations[kubepim.io/decision]", "is it installed?")},
		{"refuses a reviewer adding an owner reference", allowing(), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			cur := reviewItem("alice")
			cur.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: "gone", UID: "1"}}
			return update(dana, reviewItem("alice"), cur)
		}, refused("metadata", `dana may not change ownerReferences of AccessReviewItem q.1.alice: that needs the verb "manage"`)},
		{"allows a manager a label", allowing("pam manage accessreviews"), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			cur := reviewItem("alice")
			cur.Labels = map[string]string{"team": "a"}
			return update(user("pam"), reviewItem("alice"), cur)
		}, allowed},
		{"allows a reviewer's signed decision without asking", &access{err: errAPI}, func(m *itemDecider) Request[*pimv1.AccessReviewItem] {
			req := update(dana, reviewItem("alice"), annotated(reviewItem("alice"), pimv1.AnnotationDecision, "Deny: gone"))
			if errs := m.mutate(context.Background(), req); len(errs) > 0 {
				t.Fatal(errs.ToAggregate())
			}
			return req
		}, allowed},
		{"refuses anyone but kubepim and the garbage collector deleting an item", allowing("root manage accessreviews"), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			return remove(user("root"), reviewItem("alice"))
		}, refused("metadata", "root may not delete one (delete the AccessReview q instead)")},
		{"lets the garbage collector delete the items of a deleted review", allowing(), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			return remove(user(garbageCollector), reviewItem("alice"))
		}, allowed},
		{"refuses taking away a decision waiting to be recorded", allowing(), func(m *itemDecider) Request[*pimv1.AccessReviewItem] {
			req := update(user("erin"), reviewItem("alice"), annotated(reviewItem("alice"), pimv1.AnnotationDecision, "Deny: gone"))
			req.User = dana
			if errs := m.mutate(context.Background(), req); len(errs) > 0 {
				t.Fatal(errs.ToAggregate())
			}
			cur := req.New.DeepCopy()
			delete(cur.Annotations, pimv1.AnnotationReviewDecisions)
			return update(user("mallory"), req.New, cur)
		}, refused("metadata.annotations[kubepim.io/review-decisions]", "may not be taken away")},
		{"refuses a field manager past the bound", allowing(), func(*itemDecider) Request[*pimv1.AccessReviewItem] {
			old := reviewItem("alice")
			for n := range MaxFieldManagers {
				old.ManagedFields = append(old.ManagedFields, metav1.ManagedFieldsEntry{Manager: fmt.Sprintf("m-%d", n), Operation: metav1.ManagedFieldsOperationApply})
			}
			cur := old.DeepCopy()
			cur.ManagedFields = append(cur.ManagedFields, metav1.ManagedFieldsEntry{Manager: "one-more", Operation: metav1.ManagedFieldsOperationApply})
			return update(dana, old, cur)
		}, refused("metadata.managedFields", fmt.Sprintf("already has %d field managers", MaxFieldManagers))},
		{"refuses replaying another reviewer's signed record", allowing(), func(m *itemDecider) Request[*pimv1.AccessReviewItem] {
			req := update(dana, reviewItem("alice"), annotated(reviewItem("alice"), pimv1.AnnotationDecision, "Deny: gone"))
			if errs := m.mutate(context.Background(), req); len(errs) > 0 {
				t.Fatal(errs.ToAggregate())
			}
			return update(user("erin"), reviewItem("alice"), req.New)
		}, refused("metadata.annotations[kubepim.io/review-decisions]", "written by kubepim alone")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeClient(running())
			m := &itemDecider{handlerBase: testBase(c, allowing()), keys: testKeys(c)}
			g := &itemGuard{handlerBase: testBase(c, tc.access), keys: m.keys,
				self: func(context.Context) (string, error) { return "system:serviceaccount:kubepim-system:kubepim", nil }}
			tc.want.check(t, g.validate(context.Background(), tc.req(m)))
		})
	}
}
