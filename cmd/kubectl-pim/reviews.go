package main

import (
	"fmt"
	"text/tabwriter"

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
}

func (p *pim) reviewsCommand() *cobra.Command {
	var all bool
	return &cobra.Command{
		Use:   "reviews",
		Short: "Items of running access reviews that I may decide on (--all: every item)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			me, err := p.whoami(ctx)
			if err != nil {
				return err
			}
			var reviews pimv1.AccessReviewList
			if err := p.c.List(ctx, &reviews); err != nil {
				return err
			}
			var rows []reviewItemRow
			for _, rev := range reviews.Items {
				if rev.Status.State != pimv1.ReviewStateInProgress {
					continue
				}
				for _, item := range rev.Status.Items {
					if !all && policy.MayReview(rev.Spec, item, me) != nil {
						continue
					}
					rows = append(rows, reviewItemRow{Review: rev.Name, Item: item.ID, Subject: item.Subject.Kind + " " + item.Subject.Name,
						Role: item.RoleRef.Kind + "/" + item.RoleRef.Name, Namespace: orAll(item.Namespace), Type: item.Type,
						Recommendation: item.Recommendation, Why: item.RecommendationReason, Decision: item.Decision, Reviewer: item.Reviewer})
				}
			}
			if p.output != "" && p.output != "table" {
				return p.print(rows)
			}
			if len(rows) == 0 {
				p.say("Nothing to review.")
				return nil
			}
			w := tabwriter.NewWriter(p.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "REVIEW\tITEM\tSUBJECT\tROLE\tNAMESPACE\tTYPE\tRECOMMENDATION\tWHY\tDECISION")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Review, r.Item, r.Subject, r.Role, r.Namespace, r.Type, r.Recommendation, r.Why, dash(r.Decision))
			}
			return w.Flush()
		},
	}
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
			rev.Annotations[pimv1.AnnotationReviewDecisionPrefix+args[1]] = decision + ": " + reason
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
