package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// Access reviews. A review of 10,000 assignments is 10,000
// AccessReviewItems: the console reads them page by page with the API's
// limit and continue token, selected by label as kubectl pim does, and
// never holds more than a few pages for one page view.

// maxReviewListCalls bounds the list calls of one page view: when most
// items are not the user's to decide, a page shows what those calls found
// and links to the next.
const maxReviewListCalls = 10

// reviewSummary is one AccessReview in the list.
type reviewSummary struct {
	Rev *pimv1.AccessReview
	// As is how the user takes part: "User carol", "Group leads", "Self",
	// or "" when the review does not name them.
	As        string
	Reviewers string
}

// reviews lists the access reviews, running first, with their progress
// and due date and whether the user reviews in them.
func (s *Server) reviews(q *request) {
	var list pimv1.AccessReviewList
	if err := q.c.List(q.r.Context(), &list); err != nil {
		s.apiError(q, err)
		return
	}
	rows := make([]reviewSummary, 0, len(list.Items))
	for i := range list.Items {
		rev := &list.Items[i]
		rows = append(rows, reviewSummary{Rev: rev, As: policy.ReviewsAs(rev.Spec, q.me), Reviewers: policy.DescribeReviewers(rev.Spec)})
	}
	running := func(r reviewSummary) int {
		if r.Rev.Status.State == pimv1.ReviewStateInProgress {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(rows, func(a, b reviewSummary) int {
		if d := running(a) - running(b); d != 0 {
			return d
		}
		return strings.Compare(a.Rev.Name, b.Rev.Name)
	})
	q.page(s, http.StatusOK, "reviews", page{Title: "Access reviews", Nav: "reviews", Data: rows})
}

// itemRow is one AccessReviewItem with what the user may do with it.
type itemRow struct {
	Item *pimv1.AccessReviewItem
	// Via is how the user may decide on it; Why, why they may not.
	Via, Why string
}

// reviewView is one review's page of items.
type reviewView struct {
	reviewSummary
	Items []itemRow
	// Open says decisions are taken (the instance is in progress).
	Open bool
	// All shows every item, not only those the user may decide on;
	// Undecided only those nobody decided yet.
	All, Undecided bool
	// Scanned is how many items this page read; Next, the link to the
	// next page ("" on the last); First, whether this is the first page.
	Scanned int
	Next    string
	First   bool
	// Self is this page's link, FirstURL the first page's.
	Self, FirstURL string
}

// reviewPage shows the items of a review's current instance that the user
// may decide on, page by page.
func (s *Server) reviewPage(q *request) {
	ctx := q.r.Context()
	rev := &pimv1.AccessReview{}
	if err := q.c.Get(ctx, client.ObjectKey{Name: q.r.PathValue("name")}, rev); err != nil {
		s.apiError(q, err)
		return
	}
	query := q.r.URL.Query()
	v := reviewView{reviewSummary: reviewSummary{Rev: rev, As: policy.ReviewsAs(rev.Spec, q.me), Reviewers: policy.DescribeReviewers(rev.Spec)},
		Open: rev.Status.State == pimv1.ReviewStateInProgress, All: query.Get("all") != "", Undecided: query.Get("undecided") != "",
		First: query.Get("continue") == ""}
	link := func(cont string) string {
		p := url.Values{}
		if v.All {
			p.Set("all", "1")
		}
		if v.Undecided {
			p.Set("undecided", "1")
		}
		if cont != "" {
			p.Set("continue", cont)
		}
		u := "/reviews/" + url.PathEscape(rev.Name)
		if len(p) > 0 {
			u += "?" + p.Encode()
		}
		return u
	}
	v.Self, v.FirstURL = link(query.Get("continue")), link("")
	if rev.Status.Instance == 0 {
		q.page(s, http.StatusOK, "review", page{Title: "Access review " + rev.Name, Nav: "reviews", Data: v})
		return
	}
	selector := client.MatchingLabels{pimv1.LabelReviewUID: string(rev.UID), pimv1.LabelReviewInstance: fmt.Sprint(rev.Status.Instance)}
	cont := query.Get("continue")
	for calls := 0; calls < maxReviewListCalls; calls++ {
		var list pimv1.AccessReviewItemList
		if err := q.c.List(ctx, &list, selector, client.Limit(int64(s.opts.ReviewPageSize)), client.Continue(cont)); err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				q.page(s, http.StatusGone, "review", page{Title: "Access review " + rev.Name, Nav: "reviews", Data: v,
					Error: "The list has changed too much since the previous page was read (its continue token expired). Start again from the first page."})
				return
			}
			s.apiError(q, err)
			return
		}
		for i := range list.Items {
			item := &list.Items[i]
			if item.Spec.ReviewUID != string(rev.UID) {
				continue
			}
			v.Scanned++
			row := itemRow{Item: item}
			if via, err := policy.ReviewerVia(rev.Spec, item.Spec.Subject, item.Spec.ID, q.me); err != nil {
				row.Why = err.Error()
			} else {
				row.Via = via
			}
			if (row.Via == "" && !v.All) || (v.Undecided && item.Status.Decision != "") {
				continue
			}
			v.Items = append(v.Items, row)
		}
		cont = list.Continue
		if cont == "" || len(v.Items) >= s.opts.ReviewPageSize {
			break
		}
	}
	if cont != "" {
		v.Next = link(cont)
	}
	q.page(s, http.StatusOK, "review", page{Title: "Access review " + rev.Name, Nav: "reviews", Data: v})
}

// decideItem records a reviewer's decision by annotating the item as the
// user (kubepim.io/decision: "Approve: <reason>"), as kubectl pim review
// decide does: kubepim's webhook checks who may, and its refusal is shown
// as given.
func (s *Server) decideItem(q *request) {
	review, name := q.r.PathValue("name"), q.r.PathValue("item")
	f := q.r.PostForm
	back := "/reviews/" + url.PathEscape(review)
	if b := f.Get("back"); b != "" {
		back = localPath(b)
	}
	decision := pimv1.ReviewDecision(f.Get("decision"))
	if decision != pimv1.ReviewDecisionApprove && decision != pimv1.ReviewDecisionDeny {
		q.flashAndGo(s, back, "Choose Approve or Deny.", true)
		return
	}
	reason := strings.TrimSpace(f.Get("reason"))
	ctx := q.r.Context()
	item := &pimv1.AccessReviewItem{}
	if err := q.c.Get(ctx, client.ObjectKey{Name: name}, item); err != nil {
		q.flashAndGo(s, back, refusal(err), true)
		return
	}
	if item.Spec.Review != review {
		q.flashAndGo(s, back, fmt.Sprintf("Item %s belongs to review %s, not %s.", name, item.Spec.Review, review), true)
		return
	}
	patch := client.MergeFrom(item.DeepCopy())
	if item.Annotations == nil {
		item.Annotations = map[string]string{}
	}
	item.Annotations[pimv1.AnnotationDecision] = string(decision) + ": " + reason
	if err := q.c.Patch(ctx, item, patch); err != nil {
		q.flashAndGo(s, back, refusal(err), true)
		return
	}
	what := "keep"
	if decision == pimv1.ReviewDecisionDeny {
		what = "remove"
	}
	q.flashAndGo(s, back, fmt.Sprintf("You decided %s on %s %s's %s %s (%s): %s it. kubepim records it in a moment.",
		decision, item.Spec.Subject.Kind, item.Spec.Subject.Name, item.Spec.RoleRef.Kind, item.Spec.RoleRef.Name, scope(item.Spec.Namespace), what), false)
}
