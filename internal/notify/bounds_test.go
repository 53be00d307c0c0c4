package notify

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// TestBatches: a mail to a directory group of 50,000 people is split over
// Notifications of at most MaxRecipients, in order, everyone once; at the
// bound it is one; the unreachable are named up to MaxUnreachable, then
// counted.
func TestBatches(t *testing.T) {
	addrs := func(n, missing int) Addresses {
		var a Addresses
		for i := range n {
			a.Add(fmt.Sprintf("person-%d@example.com", i))
		}
		for i := range missing {
			a.Missing(fmt.Sprintf("nobody-%d", i))
		}
		return a
	}
	for _, tc := range []struct {
		name            string
		to, missing     int
		batches         int
		lastUnreachable string
	}{
		{name: "nobody reachable", to: 0, missing: 3, batches: 1, lastUnreachable: "nobody-2"},
		{name: "at the bound", to: MaxRecipients, missing: MaxUnreachable, batches: 1, lastUnreachable: fmt.Sprintf("nobody-%d", MaxUnreachable-1)},
		{name: "one past", to: MaxRecipients + 1, missing: MaxUnreachable + 1, batches: 2, lastUnreachable: "and 2 more without an address"},
		{name: "ten times a large group, and more", to: 50000, missing: 5000, batches: 50, lastUnreachable: "and 4901 more without an address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := addrs(tc.to, tc.missing)
			got := a.Batches()
			if len(got) != tc.batches {
				t.Fatalf("%d batches, want %d", len(got), tc.batches)
			}
			var all []string
			for i, b := range got {
				if len(b.To) > MaxRecipients || len(b.Unreachable) > MaxUnreachable {
					t.Errorf("batch %d: %d addresses, %d unreachable", i, len(b.To), len(b.Unreachable))
				}
				if i > 0 && len(b.Unreachable) > 0 {
					t.Errorf("batch %d names the unreachable again", i)
				}
				all = append(all, b.To...)
			}
			if !slices.Equal(all, a.To) {
				t.Errorf("the batches do not hold every address once, in order")
			}
			if u := got[0].Unreachable; u[len(u)-1] != tc.lastUnreachable {
				t.Errorf("last unreachable %q, want %q", u[len(u)-1], tc.lastUnreachable)
			}
		})
	}
}

// TestContentStaysBounded: a message quoting the longest justification
// keeps it whole; one quoting 64 decisions with 1 KiB reasons by
// approvers with 1 KiB names, for a requester with a 1 KiB name, is cut
// to fit a Notification, saying so.
func TestContentStaysBounded(t *testing.T) {
	ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "req"},
		Spec: pimv1.ActivationRequestSpec{RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: strings.Repeat("r", 253)},
			Duration: metav1.Duration{Duration: time.Hour}, Justification: strings.Repeat("j", 4096),
			Requester: &pimv1.UserInfo{Username: strings.Repeat("u", 1024)}}}
	c := ActivationContent(ar, policy.Occurrence{Event: pimv1.EventApprovalNeeded}, pimv1.AudienceApprovers)
	for _, f := range c.Facts {
		if f.Name == "Justification" && f.Value != ar.Spec.Justification {
			t.Errorf("the longest justification was cut")
		}
	}
	if len(c.Title) > MaxTitleLength || !strings.HasSuffix(c.Title, "bytes cut)") {
		t.Errorf("title of %d bytes", len(c.Title))
	}
	for i := range 64 {
		ar.Status.Approvals = append(ar.Status.Approvals, pimv1.ApprovalRecord{Approver: pimv1.UserInfo{Username: fmt.Sprintf("%d", i) + strings.Repeat("a", 1020)},
			Decision: pimv1.DecisionApprove, Reason: strings.Repeat("x", 1024)})
	}
	c = ActivationContent(ar, policy.Occurrence{Event: pimv1.EventApproved}, pimv1.AudienceRequester)
	found := false
	for _, f := range c.Facts {
		if len(f.Value) > MaxFactLength {
			t.Errorf("fact %s: %d bytes", f.Name, len(f.Value))
		}
		if f.Name == "Decisions" {
			found = strings.HasSuffix(f.Value, "bytes cut)")
		}
	}
	if !found {
		t.Error("the decisions fact does not say it was cut")
	}
}
