package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// reviewPage is how many items one list request asks for: a review of
// 10,000 items is read page by page, never in one response.
const reviewPage = 500

type reviewItemRow struct {
	Review         string `json:"review"`
	Item           string `json:"item"`
	Name           string `json:"name"`
	Subject        string `json:"subject"`
	Role           string `json:"role"`
	Namespace      string `json:"namespace"`
	Type           string `json:"type"`
	Recommendation string `json:"recommendation"`
	Why            string `json:"why"`
	Decision       string `json:"decision,omitempty"`
	Reviewer       string `json:"reviewer,omitempty"`
	// MayDecide says whether the caller may decide on the item (with
	// --all, items of others are listed too).
	MayDecide bool `json:"mayDecide"`
}

func (r reviewItemRow) namespace() string { return r.Namespace }

func (p *pim) reviewsCommand() *cobra.Command {
	var only string
	var undecided bool
	cmd := listCommand(p, list[reviewItemRow]{
		use:   "reviews",
		short: "Items of running access reviews that I may decide on (--all: every item)",
		all:   "Show every item of the running access reviews, not only those I may decide on.",
		rows: func(ctx context.Context, scope listScope) ([]reviewItemRow, error) {
			var reviews pimv1.AccessReviewList
			if err := p.c.List(ctx, &reviews); err != nil {
				return nil, err
			}
			var rows []reviewItemRow
			for _, rev := range reviews.Items {
				if rev.Status.State != pimv1.ReviewStateInProgress || (only != "" && rev.Name != only) {
					continue
				}
				err := p.eachItem(ctx, &rev, func(item *pimv1.AccessReviewItem) {
					mayDecide := policy.MayReview(rev.Spec, item.Spec.Subject, item.Spec.ID, scope.me) == nil
					if (!scope.all && !mayDecide) || (undecided && item.Status.Decision != "") {
						return
					}
					rows = append(rows, reviewItemRow{Review: rev.Name, Item: item.Spec.ID, Name: item.Name,
						Subject: item.Spec.Subject.Kind + " " + item.Spec.Subject.Name, Role: item.Spec.RoleRef.Kind + "/" + item.Spec.RoleRef.Name,
						Namespace: orAll(item.Spec.Namespace), Type: item.Spec.Type, Recommendation: string(item.Spec.Recommendation),
						Why: item.Spec.RecommendationReason, Decision: string(item.Status.Decision), Reviewer: item.Status.Reviewer, MayDecide: mayDecide})
				})
				if err != nil {
					return nil, err
				}
			}
			sort.SliceStable(rows, func(i, j int) bool { return rows[i].Review < rows[j].Review })
			return rows, nil
		},
		header: "REVIEW\tITEM\tSUBJECT\tROLE\tNAMESPACE\tTYPE\tRECOMMENDATION\tWHY\tDECISION\tMINE",
		cells: func(r reviewItemRow) []string {
			mine := "no"
			if r.MayDecide {
				mine = "yes"
			}
			return []string{r.Review, r.Item, r.Subject, r.Role, r.Namespace, r.Type, r.Recommendation, r.Why, dash(r.Decision), mine}
		},
		empty: func(listScope) string { return "Nothing to review." },
	})
	cmd.Flags().StringVar(&only, "review", "", "Show the items of this AccessReview only.")
	cmd.Flags().BoolVar(&undecided, "undecided", false, "Show only items nobody has decided on yet.")
	return cmd
}

// eachItem calls f with each item of the review's current instance, read
// page by page (selected by label, which every Kubernetes version
// serves; field selectors on custom resources need 1.31).
func (p *pim) eachItem(ctx context.Context, rev *pimv1.AccessReview, f func(*pimv1.AccessReviewItem)) error {
	selector := client.MatchingLabels{pimv1.LabelReviewUID: string(rev.UID), pimv1.LabelReviewInstance: fmt.Sprint(rev.Status.Instance)}
	cont := ""
	for {
		var page pimv1.AccessReviewItemList
		if err := p.c.List(ctx, &page, selector, client.Limit(reviewPage), client.Continue(cont)); err != nil {
			return err
		}
		for i := range page.Items {
			if page.Items[i].Spec.ReviewUID == string(rev.UID) {
				f(&page.Items[i])
			}
		}
		if cont = page.Continue; cont == "" {
			return nil
		}
	}
}

func (p *pim) reviewCommand() *cobra.Command {
	review := &cobra.Command{Use: "review", Short: "Decide on access review items"}
	var approve, deny bool
	var reason string
	decide := &cobra.Command{
		Use:   "decide REVIEW ITEM (--approve|--deny) --reason TEXT",
		Short: "Keep (--approve) or remove (--deny) one reviewed assignment",
		Long: "Decide on an item of a running access review. ITEM is the item's id (the ITEM column of kubectl pim reviews) " +
			"or the AccessReviewItem's name. kubepim records the decision, signed, on the item.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if approve == deny {
				return usage("say --approve or --deny")
			}
			decision := pimv1.ReviewDecisionApprove
			if deny {
				decision = pimv1.ReviewDecisionDeny
			}
			ctx := cmd.Context()
			rev := &pimv1.AccessReview{}
			if err := p.c.Get(ctx, client.ObjectKey{Name: args[0]}, rev); err != nil {
				return notFound(err, "AccessReview", args[0])
			}
			name := args[1]
			if !strings.Contains(name, ".") {
				name = policy.ReviewItemName(rev.Name, string(rev.UID), rev.Status.Instance, name)
			}
			item := &pimv1.AccessReviewItem{}
			if err := p.c.Get(ctx, client.ObjectKey{Name: name}, item); err != nil {
				return notFound(err, "AccessReviewItem", name)
			}
			if item.Spec.ReviewUID != string(rev.UID) {
				return usage("AccessReviewItem %s belongs to review %s, not %s", name, item.Spec.Review, rev.Name)
			}
			patch := client.MergeFrom(item.DeepCopy())
			if item.Annotations == nil {
				item.Annotations = map[string]string{}
			}
			item.Annotations[pimv1.AnnotationDecision] = string(decision) + ": " + reason
			if err := p.c.Patch(ctx, item, patch); err != nil {
				return admissionRefusal(err)
			}
			p.say("recorded %s on item %s of %s", decision, item.Spec.ID, args[0])
			return nil
		},
	}
	decide.Flags().BoolVar(&approve, "approve", false, "Keep the assignment.")
	decide.Flags().BoolVar(&deny, "deny", false, "Remove the assignment when the review closes.")
	decide.Flags().StringVar(&reason, "reason", "", "Why.")
	review.AddCommand(decide)
	return review
}
