package webhooks

import (
	"testing"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// A reviewer's annotation value is free text: it parses to Approve or Deny
// with a trimmed reason, or is refused; never anything else.
func FuzzParseReviewDecision(f *testing.F) {
	for _, seed := range []string{"Approve: needed", "deny:", "DENY : gone", "Approve", "approve:: x", "", ":", "Deny\n: x", "Approved: x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		decision, reason, ok := parseReviewDecision(value)
		if !ok {
			if decision != "" || reason != "" {
				t.Fatalf("refused %q but returned %q %q", value, decision, reason)
			}
			return
		}
		if decision != pimv1.ReviewDecisionApprove && decision != pimv1.ReviewDecisionDeny {
			t.Fatalf("%q parsed to decision %q", value, decision)
		}
		if len(reason) > len(value) {
			t.Fatalf("reason %q longer than the value %q", reason, value)
		}
	})
}
