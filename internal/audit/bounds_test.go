package audit

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// TestEventsStayBounded: an entry at the bounds is recorded as it is; one
// past them (a 40 KiB reason, 40 details, a 50,000-subject binding's
// names) is cut to fit an AuditEvent, saying what was cut, and the hash
// covers what is stored, so the chain still verifies.
func TestEventsStayBounded(t *testing.T) {
	r := &Recorder{Clock: clocktesting.NewFakePassiveClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))}
	details := func(n, size int) map[string]string {
		d := map[string]string{}
		for i := range n {
			d[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", size)
		}
		return d
	}

	at := Entry{Action: pimv1.AuditAlertRaised, Reason: strings.Repeat("r", MaxReasonLength),
		Justification: strings.Repeat("j", MaxJustificationLength), Details: details(MaxDetails, MaxDetailLength)}
	s := r.spec(at)
	if s.Reason != at.Reason || s.Justification != at.Justification || len(s.Details) != MaxDetails {
		t.Fatalf("an entry at the bounds was changed: reason %d, justification %d, %d details", len(s.Reason), len(s.Justification), len(s.Details))
	}
	for k, v := range s.Details {
		if v != at.Details[k] {
			t.Errorf("detail %s at the bound was changed", k)
		}
	}

	var subjects []string
	for i := range 50000 {
		subjects = append(subjects, fmt.Sprintf("User user-%d", i))
	}
	past := Entry{Action: pimv1.AuditAlertRaised, Reason: strings.Repeat("r", 40<<10),
		Justification: strings.Repeat("j", 5000), Details: details(40, 100)}
	past.Details["k00"] = strings.Join(subjects, ", ")
	s = r.spec(past)
	if len(s.Reason) > MaxReasonLength || !strings.HasSuffix(s.Reason, "bytes cut)") {
		t.Errorf("reason: %d bytes, ends %q", len(s.Reason), s.Reason[len(s.Reason)-20:])
	}
	if len(s.Justification) > MaxJustificationLength || !strings.HasSuffix(s.Justification, "bytes cut)") {
		t.Errorf("justification: %d bytes", len(s.Justification))
	}
	if len(s.Details) != MaxDetails || !strings.Contains(s.Details["…"], "9 more details cut: k31, k32") {
		t.Errorf("details: %d, the last says %q", len(s.Details), s.Details["…"])
	}
	if v := s.Details["k00"]; len(v) > MaxDetailLength || !strings.HasSuffix(v, "bytes cut)") {
		t.Errorf("a 50,000-subject detail: %d bytes", len(v))
	}
	s.PreviousHash = "prev"
	s.Hash = Hash(s)
	if Hash(s) != s.Hash {
		t.Error("the hash does not cover what is stored")
	}
	if len(past.Details) != 40 {
		t.Error("the caller's details were changed")
	}
}
