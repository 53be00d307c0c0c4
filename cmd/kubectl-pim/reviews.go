package main

import (
	"context"
	"sort"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

type reviewItemRow struct {
	Review         string `json:"review"`
	Item           string `json:"item"`
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
	return listCommand(p, list[reviewItemRow]{
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
				if rev.Status.State != pimv1.ReviewStateInProgress {
					continue
				}
				for _, item := range rev.Status.Items {
					mayDecide := policy.MayReview(rev.Spec, item, scope.me) == nil
					if !scope.all && !mayDecide {
						continue
					}
					rows = append(rows, reviewItemRow{Review: rev.Name, Item: item.ID, Subject: item.Subject.Kind + " " + item.Subject.Name,
						Role: item.RoleRef.Kind + "/" + item.RoleRef.Name, Namespace: orAll(item.Namespace), Type: item.Type,
						Recommendation: string(item.Recommendation), Why: item.RecommendationReason, Decision: string(item.Decision), Reviewer: item.Reviewer,
						MayDecide: mayDecide})
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
}

func (p *pim) reviewCommand() *cobra.Command {
	review := &cobra.Command{Use: "review", Short: "Decide on access review items"}
	var approve, deny bool
	var reason string
	decide := &cobra.Command{
		Use:   "decide REVIEW ITEM (--approve|--deny) --reason TEXT",
		Short: "Keep (--approve) or remove (--deny) one reviewed assignment",
		Args:  cobra.ExactArgs(2),
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
			patch := client.MergeFrom(rev.DeepCopy())
			if rev.Annotations == nil {
				rev.Annotations = map[string]string{}
			}
			rev.Annotations[pimv1.AnnotationReviewDecisionPrefix+args[1]] = string(decision) + ": " + reason
			if err := p.c.Patch(ctx, rev, patch); err != nil {
				return admissionRefusal(err)
			}
			p.say("recorded %s on item %s of %s", decision, args[1], args[0])
			return nil
		},
	}
	decide.Flags().BoolVar(&approve, "approve", false, "Keep the assignment.")
	decide.Flags().BoolVar(&deny, "deny", false, "Remove the assignment when the review closes.")
	decide.Flags().StringVar(&reason, "reason", "", "Why.")
	review.AddCommand(decide)
	return review
}
