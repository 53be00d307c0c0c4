package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     string
		limit int
		cut   bool
	}{
		{"empty", "", 10, false},
		{"at the limit, kept whole", strings.Repeat("a", 1024), 1024, false},
		{"one byte past, cut", strings.Repeat("a", 1025), 1024, true},
		{"far past, cut", strings.Repeat("a", 1<<20), 4096, true},
		{"multi-byte characters are not split", strings.Repeat("é", 1000), 101, true},
		{"a limit smaller than the marker keeps only the marker", strings.Repeat("a", 100), 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Truncate(tc.s, tc.limit)
			if !tc.cut {
				if got != tc.s {
					t.Fatalf("Truncate changed a string within its limit: %q", got)
				}
				return
			}
			if !strings.HasSuffix(got, " bytes cut)") {
				t.Errorf("a cut string must say so, got %q", got[max(0, len(got)-40):])
			}
			if tc.limit >= 32 && len(got) > tc.limit {
				t.Errorf("Truncate(%d bytes, %d) = %d bytes, over the limit", len(tc.s), tc.limit, len(got))
			}
			if !utf8.ValidString(got) {
				t.Errorf("Truncate split a character: %q", got)
			}
			kept := strings.TrimSuffix(got[:strings.LastIndex(got, "…")], "")
			if want := fmt.Sprintf("… (%d bytes cut)", len(tc.s)-len(kept)); !strings.HasSuffix(got, want) {
				t.Errorf("the marker must count what was cut: got %q, want suffix %q", got[len(kept):], want)
			}
		})
	}
}

func TestFirstNames(t *testing.T) {
	names := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("n%d", i)
		}
		return out
	}
	if got := FirstNames(names(MaxNamesShown), MaxNamesShown); len(got) != MaxNamesShown || strings.Contains(strings.Join(got, ","), "more") {
		t.Errorf("at the limit every name is shown and nothing said cut: %v", got)
	}
	got := FirstNames(names(50000), MaxNamesShown)
	if len(got) != MaxNamesShown+1 || got[MaxNamesShown] != "and 49995 more" {
		t.Errorf("past the limit: %v, want %d names and \"and 49995 more\"", got, MaxNamesShown)
	}
}

// TestAlertsStayBounded raises every list-bearing alert over 50,000 items
// (ten times the 5,000 outside bindings a large cluster might have): each
// message names MaxNamesShown, says how many more, and fits in status.
func TestAlertsStayBounded(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	const n = 50000
	long := strings.Repeat("x", 900) // long names, near the 1 KiB a username may have
	in := AlertInput{Now: now}
	for i := range n {
		in.OutsideBindings = append(in.OutsideBindings, fmt.Sprintf("RoleBinding team-%d/%s", i, long))
		in.Assignments = append(in.Assignments, pimv1.RoleAssignment{Spec: pimv1.RoleAssignmentSpec{Type: pimv1.AssignmentActive,
			Subject: pimv1.Subject{Kind: "User", Name: fmt.Sprintf("u%d-%s", i, long[:200])}}})
	}
	for i := range n / 5 {
		user := fmt.Sprintf("busy%d-%s", i, long)
		for range DefaultFrequentActivations + 1 {
			in.Activations = append(in.Activations, pimv1.ActivationRequest{Spec: pimv1.ActivationRequestSpec{Requester: &pimv1.UserInfo{Username: user}},
				Status: pimv1.ActivationRequestStatus{ActivatedAt: &metav1.Time{Time: now.Add(-time.Hour)}}})
		}
	}
	alerts := EvaluateAlerts(in)
	want := map[string]string{
		pimv1.AlertAssignedOutsidePIM:     fmt.Sprintf("%d binding(s)", n),
		pimv1.AlertTooManyPermanentActive: fmt.Sprintf("%d permanent active", n),
		pimv1.AlertFrequentActivation:     fmt.Sprintf("%d user(s)", n/5),
	}
	for _, a := range alerts {
		if len(a.Message) > MaxAlertMessageLength {
			t.Errorf("%s: message is %d bytes, over %d", a.Type, len(a.Message), MaxAlertMessageLength)
		}
		if w, ok := want[a.Type]; ok {
			if !strings.Contains(a.Message, w) {
				t.Errorf("%s: message does not count all (%q): %.200s", a.Type, w, a.Message)
			}
			if !strings.Contains(a.Message, "more") {
				t.Errorf("%s: message does not say what was cut: %.200s", a.Type, a.Message)
			}
			delete(want, a.Type)
		}
	}
	if len(want) > 0 {
		t.Errorf("alerts not raised: %v", want)
	}

	// At the limit: five short names, all shown, nothing said cut.
	five := AlertInput{Now: now, OutsideBindings: []string{"ClusterRoleBinding a", "ClusterRoleBinding b", "ClusterRoleBinding c", "ClusterRoleBinding d", "ClusterRoleBinding e"}}
	got := EvaluateAlerts(five)
	if len(got) != 1 || !strings.Contains(got[0].Message, "ClusterRoleBinding e;") || strings.Contains(got[0].Message, "more") {
		t.Errorf("five outside bindings: %+v", got)
	}
}
