package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

func getReview(rev *pimv1.AccessReview) *pimv1.AccessReview {
	GinkgoHelper()
	got := &pimv1.AccessReview{}
	Expect(k8s.Get(context.Background(), keyOf(rev), got)).To(Succeed())
	return got
}

func reviewState(rev *pimv1.AccessReview) func() pimv1.AccessReviewState {
	return func() pimv1.AccessReviewState {
		got := &pimv1.AccessReview{}
		if err := k8s.Get(context.Background(), keyOf(rev), got); err != nil {
			return pimv1.AccessReviewState(err.Error())
		}
		return got.Status.State
	}
}

// itemName is the name of ra's item in the current instance of rev (ra
// may be gone: removed by the review).
func itemName(rev *pimv1.AccessReview, ra *pimv1.RoleAssignment) string {
	GinkgoHelper()
	for _, item := range itemsOf(rev) {
		if item.Spec.Assignment == ra.Name {
			Expect(item.Name).To(Equal(policy.ReviewItemName(item.Spec.Review, item.Spec.ReviewUID, item.Spec.Instance, item.Spec.ID)))
			return item.Name
		}
	}
	Fail("no item for " + ra.Name)
	return ""
}

// getItem reads ra's item in the current instance of rev.
func getItem(rev *pimv1.AccessReview, ra *pimv1.RoleAssignment) *pimv1.AccessReviewItem {
	GinkgoHelper()
	item := &pimv1.AccessReviewItem{}
	Expect(k8s.Get(context.Background(), client.ObjectKey{Name: itemName(rev, ra)}, item)).To(Succeed())
	return item
}

// annotateItem sets an annotation of ra's item as c, the way kubectl
// annotate does (a merge patch: no resourceVersion, so reviewers deciding
// at once never conflict).
func annotateItem(c client.Client, rev *pimv1.AccessReview, ra *pimv1.RoleAssignment, key, value string) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	if err != nil {
		return err
	}
	item := &pimv1.AccessReviewItem{ObjectMeta: metav1.ObjectMeta{Name: itemName(rev, ra)}}
	return c.Patch(context.Background(), item, client.RawPatch(types.MergePatchType, body))
}

// decide decides on ra's item as c: value is "Approve: <reason>" or
// "Deny: <reason>".
func decide(c client.Client, rev *pimv1.AccessReview, ra *pimv1.RoleAssignment, value string) error {
	return annotateItem(c, rev, ra, pimv1.AnnotationDecision, value)
}

// itemsOf lists the items of the current instance of rev.
func itemsOf(rev *pimv1.AccessReview) []pimv1.AccessReviewItem {
	GinkgoHelper()
	got := getReview(rev)
	var list pimv1.AccessReviewItemList
	Expect(k8s.List(context.Background(), &list, client.MatchingLabels{pimv1.LabelReviewUID: string(got.UID), pimv1.LabelReviewInstance: fmt.Sprint(got.Status.Instance)})).To(Succeed())
	return list.Items
}

func review(name, role string, mutate func(*pimv1.AccessReviewSpec)) *pimv1.AccessReview {
	rev := &pimv1.AccessReview{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pimv1.AccessReviewSpec{
		Scope:        pimv1.AccessReviewScope{RoleRefs: []pimv1.RoleRef{{Kind: "ClusterRole", Name: role}}, AssignmentTypes: "Both"},
		ReviewerType: pimv1.ReviewerTypeNamed,
		StartTime:    &metav1.Time{Time: fakeClock.Now()},
		Duration:     metav1.Duration{Duration: time.Hour},
		Recurrence:   pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceOneTime},
		Settings: pimv1.AccessReviewSettings{AutoApply: ptr.To(true), DefaultDecision: pimv1.ReviewDecisionNone, RequireJustification: ptr.To(true),
			Recommendation: pimv1.RecommendationSettings{InactiveDays: 30}},
	}}
	mutate(&rev.Spec)
	return rev
}

var _ = Describe("AccessReview", func() {
	ctx := context.Background()

	It("lets named reviewers decide, refuses anyone else, and removes denied access at the end", func() {
		role := uniq("reviewed")
		clusterRoleFor(role, "pods", "get")
		alice, bob := uniq("alice"), uniq("bob")
		keep := assignment(uniq("keep"), alice, role, pimv1.AssignmentEligible, nil, nil)
		drop := assignment(uniq("drop"), bob, role, pimv1.AssignmentActive, nil, nil)
		create(keep)
		create(drop)
		Eventually(func() bool { return canI(bob, nil, "get", "pods", "default") }).Should(BeTrue())

		rev := review(uniq("one-off"), role, func(s *pimv1.AccessReviewSpec) {
			s.Reviewers = []pimv1.Principal{{Kind: "User", Name: "dana"}, {Kind: "Group", Name: "leads"}}
		})
		create(rev)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateInProgress))
		Expect(getReview(rev).Status.Progress).To(Equal("0/2"))

		Expect(decide(as("mallory", nil, nil), rev, drop, "Approve: sure")).To(MatchError(ContainSubstring("mallory is not a reviewer")))
		Expect(decide(as(bob, []string{"leads"}, nil), rev, drop, "Approve: I need it")).To(MatchError(ContainSubstring("cannot review your own access")))
		Expect(decide(as("dana", nil, nil), rev, drop, "Deny")).To(MatchError(ContainSubstring("give a reason")))
		Expect(annotateItem(as("dana", nil, nil), rev, drop, pimv1.AnnotationReviewDecisions, `[]`)).To(MatchError(ContainSubstring("written by kubepim alone")))
		Expect(decide(as("dana", nil, nil), rev, drop, "Approve: first thought")).To(Succeed())
		Expect(decide(as("dana", nil, nil), rev, drop, "Deny: left the team")).To(Succeed(), "a later decision replaces the earlier one")
		Expect(decide(as("erin", []string{"leads"}, nil), rev, keep, "Approve: on call")).To(Succeed())
		Eventually(func() string { return getReview(rev).Status.Progress }).Should(Equal("2/2"))

		fakeClock.Step(time.Hour)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateApplied))
		Expect(getReview(rev).Status.NextStart).To(BeNil(), "a one-time review has no next instance")
		Eventually(func() bool { return canI(bob, nil, "get", "pods", "default") }).Should(BeFalse())
		Expect(k8s.Get(ctx, keyOf(keep), &pimv1.RoleAssignment{})).To(Succeed(), "approved access stays")
		got := getReview(rev)
		Expect(got.Status).To(MatchFields(IgnoreExtras, Fields{"Approved": BeEquivalentTo(1), "Denied": BeEquivalentTo(1), "Removed": BeEquivalentTo(1)}))
		dropped := getItem(rev, drop).Status
		Expect(dropped.Decision).To(Equal(pimv1.ReviewDecisionDeny))
		Expect(dropped.Reviewer).To(Equal("dana"))
		Expect(dropped.DecidedVia).To(Equal("User dana"))
		Expect(dropped.Applied).To(HaveValue(BeTrue()))
		Expect(getItem(rev, keep).Status.DecidedVia).To(Equal("Group leads"))
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(got.UID))) }).Should(ContainElements(
			"ReviewDecision by dana", "ReviewDecision by erin", "ReviewApplied by kubepim:controller"))
	})

	It("lets each assignee review their own access in a self-review", func() {
		role := uniq("self-reviewed")
		clusterRoleFor(role, "pods", "get")
		alice, bob := uniq("alice"), uniq("bob")
		mine := assignment(uniq("mine"), alice, role, pimv1.AssignmentEligible, nil, nil)
		theirs := assignment(uniq("theirs"), bob, role, pimv1.AssignmentEligible, nil, nil)
		create(mine)
		create(theirs)
		rev := review(uniq("self"), role, func(s *pimv1.AccessReviewSpec) { s.ReviewerType = pimv1.ReviewerTypeSelf })
		create(rev)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateInProgress))
		Expect(decide(as(alice, nil, nil), rev, theirs, "Deny: not mine to say")).To(MatchError(ContainSubstring("only the assignee")))
		Expect(decide(as(alice, nil, nil), rev, mine, "Approve: still on call")).To(Succeed())
		Eventually(func() string { return getReview(rev).Status.Progress }).Should(Equal("1/2"))
	})

	It("recurs, recommends from activation history, and applies the default decision", func() {
		role := uniq("recurring")
		clusterRoleFor(role, "pods", "get")
		stale := assignment(uniq("stale"), uniq("old-timer"), role, pimv1.AssignmentEligible, ptr.To(fakeClock.Now().Add(-60*24*time.Hour)), nil)
		fresh := assignment(uniq("fresh"), uniq("newcomer"), role, pimv1.AssignmentEligible, ptr.To(fakeClock.Now().Add(-time.Hour)), nil)
		create(stale)
		create(fresh)
		Eventually(stateOf(fresh)).Should(Equal(pimv1.AssignmentStateEligible))
		rev := review(uniq("weekly"), role, func(s *pimv1.AccessReviewSpec) {
			s.Reviewers = []pimv1.Principal{{Kind: "User", Name: "dana"}}
			s.Recurrence = pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceWeekly, Occurrences: 2}
			s.Settings.DefaultDecision = pimv1.ReviewDecisionRecommendation
		})
		create(rev)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateInProgress))
		recommendations := map[string]pimv1.ReviewDecision{}
		for _, item := range itemsOf(rev) {
			recommendations[item.Spec.Assignment] = item.Spec.Recommendation
		}
		Expect(recommendations).To(Equal(map[string]pimv1.ReviewDecision{stale.Name: pimv1.ReviewDecisionDeny, fresh.Name: pimv1.ReviewDecisionApprove}))

		fakeClock.Step(time.Hour)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateApplied))
		Expect(getReview(rev).Status.NextStart).NotTo(BeNil())
		Eventually(func() bool { return k8s.Get(ctx, keyOf(stale), &pimv1.RoleAssignment{}) != nil }).Should(BeTrue(), "the recommendation removed the stale one")
		Expect(k8s.Get(ctx, keyOf(fresh), &pimv1.RoleAssignment{})).To(Succeed())

		fakeClock.Step(7*24*time.Hour - time.Hour)
		Eventually(func() int32 { return getReview(rev).Status.Instance }).Should(Equal(int32(2)))
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateInProgress))
		Expect(getReview(rev).Status.Total).To(Equal(int32(1)))
		Eventually(func() []pimv1.AccessReviewItem {
			var all pimv1.AccessReviewItemList
			Expect(k8s.List(ctx, &all, client.MatchingLabels{pimv1.LabelReviewUID: string(getReview(rev).UID)})).To(Succeed())
			return all.Items
		}).Should(HaveLen(1), "the items of the first instance are gone")
		fakeClock.Step(time.Hour)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateApplied))
		Expect(getReview(rev).Status.NextStart).To(BeNil(), "two occurrences, then done")
		Expect(getReview(rev).Status.Instance).To(Equal(int32(2)))
	})
})

var _ = Describe("AccessReview decided concurrently", func() {
	It("records every decision of 10 reviewers in 200 groups each deciding at once, none lost, each once", func() {
		role := uniq("concurrent")
		clusterRoleFor(role, "pods", "get")
		const reviewers, perReviewer = 10, 5
		var items []*pimv1.RoleAssignment
		for i := 0; i < reviewers*perReviewer; i++ {
			ra := assignment(uniq("item"), uniq("holder"), role, pimv1.AssignmentEligible, nil, nil)
			create(ra)
			items = append(items, ra)
		}
		group := uniq("reviewers")
		rev := review(uniq("at-once"), role, func(s *pimv1.AccessReviewSpec) {
			s.Reviewers = []pimv1.Principal{{Kind: "Group", Name: group}}
		})
		create(rev)
		Eventually(func() int32 { return getReview(rev).Status.Total }).Should(BeEquivalentTo(reviewers * perReviewer))

		// Each reviewer is in 200 groups, one of which makes them a reviewer.
		groupsOf := func(r int) []string {
			gs := make([]string, 0, 200)
			for g := 0; g < 199; g++ {
				gs = append(gs, fmt.Sprintf("org-%d-team-%d", r, g))
			}
			return append(gs, group)
		}
		errs := make(chan error, reviewers*perReviewer)
		var wg sync.WaitGroup
		for r := 0; r < reviewers; r++ {
			wg.Add(1)
			go func(r int) {
				defer GinkgoRecover()
				defer wg.Done()
				c := as(fmt.Sprintf("reviewer-%d", r), groupsOf(r), nil)
				for _, ra := range items[r*perReviewer : (r+1)*perReviewer] {
					errs <- decide(c, rev, ra, "Approve: still needed")
				}
			}(r)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			Expect(err).NotTo(HaveOccurred())
		}

		Eventually(func() int32 { return getReview(rev).Status.Reviewed }).Should(BeEquivalentTo(reviewers * perReviewer))
		decisions := func() int {
			n := 0
			for _, ev := range eventsAbout(string(getReview(rev).UID)) {
				if ev.Spec.Action == pimv1.AuditReviewDecision {
					n++
					Expect(ev.Spec.Actor.Groups).To(Equal([]string{group}), "the record keeps the group that made them a reviewer, not all 200")
				}
			}
			return n
		}
		Eventually(decisions).Should(Equal(reviewers * perReviewer))
		Consistently(decisions, "300ms").Should(Equal(reviewers * perReviewer))
		Expect(verify().OK()).To(BeTrue(), verify().String())
	})
})

var _ = Describe("AccessReview started before 0.4", func() {
	It("moves the items kept in status into AccessReviewItems, with their decisions, and carries the instance to the end", func() {
		ctx := context.Background()
		role := uniq("migrated")
		clusterRoleFor(role, "pods", "get")
		decided := assignment(uniq("decided"), uniq("holder"), role, pimv1.AssignmentEligible, nil, nil)
		open := assignment(uniq("open"), uniq("holder"), role, pimv1.AssignmentEligible, nil, nil)
		create(decided)
		create(open)
		rev := review(uniq("legacy"), role, func(s *pimv1.AccessReviewSpec) {
			s.Reviewers = []pimv1.Principal{{Kind: "User", Name: "dana"}}
			s.StartTime = &metav1.Time{Time: fakeClock.Now().Add(time.Hour)}
		})
		create(rev)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateScheduled))

		By("the status 0.3 wrote: items in status.items, one decided")
		legacyItem := func(ra *pimv1.RoleAssignment) pimv1.ReviewItem {
			got := getAssignment(ra)
			return pimv1.ReviewItem{ID: policy.ReviewItemID(string(got.UID)), Assignment: got.Name, AssignmentUID: string(got.UID),
				Subject: got.Spec.Subject, RoleRef: got.Spec.RoleRef, Type: got.Spec.Type, Recommendation: pimv1.ReviewDecisionApprove}
		}
		denied := legacyItem(decided)
		denied.Decision, denied.Reviewer, denied.Reason, denied.DecidedAt = pimv1.ReviewDecisionDeny, "dana", "left", &metav1.Time{Time: fakeClock.Now().Truncate(time.Second)}
		Eventually(func() error {
			got := getReview(rev)
			start := &metav1.Time{Time: fakeClock.Now().Add(time.Hour)}
			got.Status.State, got.Status.Instance, got.Status.StartedAt = pimv1.ReviewStateInProgress, 1, start
			got.Status.DueAt = &metav1.Time{Time: start.Add(time.Hour)}
			got.Status.Items, got.Status.Total, got.Status.Reviewed = []pimv1.ReviewItem{denied, legacyItem(open)}, 2, 1
			return k8s.Status().Update(ctx, got)
		}).Should(Succeed())
		fakeClock.Step(time.Hour)

		Eventually(func() []pimv1.ReviewItem { return getReview(rev).Status.Items }).Should(BeEmpty())
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateInProgress))
		Expect(getReview(rev).Status).To(MatchFields(IgnoreExtras, Fields{"Total": BeEquivalentTo(2), "Reviewed": BeEquivalentTo(1), "Denied": BeEquivalentTo(1)}))
		Expect(getItem(rev, decided).Status).To(MatchFields(IgnoreExtras, Fields{"Decision": Equal(pimv1.ReviewDecisionDeny), "Reviewer": Equal("dana"), "Reason": Equal("left")}))

		By("the open item is decided the new way, and the instance closes and applies")
		Expect(decide(as("dana", nil, nil), rev, open, "Approve: needed")).To(Succeed())
		Eventually(func() int32 { return getReview(rev).Status.Reviewed }).Should(BeEquivalentTo(2))
		fakeClock.Step(time.Hour)
		Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateApplied))
		Eventually(func() bool { return k8s.Get(ctx, keyOf(decided), &pimv1.RoleAssignment{}) != nil }).Should(BeTrue(), "the decision taken before the upgrade was applied")
		Expect(k8s.Get(ctx, keyOf(open), &pimv1.RoleAssignment{})).To(Succeed())
	})
})
