package audit

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// ev is an event of the trail for the history tests.
func ev(seq int64, at time.Time, action, actor, subject, role, ns, target string, details map[string]string) pimv1.AuditEvent {
	kind := "ActivationRequest"
	if len(action) > 10 && action[:10] == "Assignment" {
		kind = "RoleAssignment"
	}
	s := pimv1.AuditEventSpec{Sequence: seq, Time: metav1.NewTime(at), Action: action, Namespace: ns, Details: details,
		RoleRef: &pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role},
		Target:  &pimv1.AuditObjectReference{Kind: kind, Name: target, UID: "uid-" + target}}
	if subject != "" {
		s.Subject = &pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: subject}
	}
	if actor != "" {
		s.Actor = &pimv1.UserInfo{Username: actor}
	}
	return pimv1.AuditEvent{Spec: s}
}

func TestWho(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	stamp := func(n int) string { return h(n).Format(time.RFC3339) }
	requested := ev(1, h(0), pimv1.AuditActivationRequested, "alice", "alice", "admin", "prod", "req-a", nil)
	requested.Spec.Justification, requested.Spec.Ticket = "incident 42", &pimv1.Ticket{System: "jira", Number: "OPS-1"}
	trail := []pimv1.AuditEvent{
		// Listed out of order: Intervals sorts by sequence.
		ev(4, h(3), pimv1.AuditDeactivated, "alice", "alice", "admin", "prod", "req-a", nil),
		requested,
		ev(2, h(0), pimv1.AuditApproved, "carol", "alice", "admin", "prod", "req-a", nil),
		ev(3, h(1), pimv1.AuditActivated, "", "alice", "admin", "prod", "req-a", map[string]string{"activatedAt": stamp(1), "expiresAt": stamp(5)}),
		// bob: cluster-wide, never recorded as ended: due to end at h(8).
		ev(5, h(2), pimv1.AuditActivated, "", "bob", "admin", "", "req-b", map[string]string{"activatedAt": stamp(2), "expiresAt": stamp(8)}),
		// dave: an active assignment in staging, end time moved, then removed.
		ev(6, h(4), pimv1.AuditAssignmentCreated, "root", "dave", "admin", "staging", "ra-d", map[string]string{"type": "Active"}),
		ev(7, h(4), pimv1.AuditAssignmentActivated, "", "dave", "admin", "staging", "ra-d", map[string]string{"type": "Active", "endTime": stamp(20)}),
		ev(8, h(5), pimv1.AuditAssignmentChanged, "root", "dave", "admin", "staging", "ra-d", map[string]string{"endTime": stamp(30)}),
		ev(9, h(6), pimv1.AuditAssignmentRemoved, "root", "dave", "admin", "staging", "ra-d", nil),
		// erin: a permanent active assignment, still in force.
		ev(10, h(7), pimv1.AuditAssignmentActivated, "", "erin", "admin", "prod", "ra-e", map[string]string{"type": "Active"}),
		// Another role, and an end whose beginning was pruned.
		ev(11, h(1), pimv1.AuditActivated, "", "frank", "view", "prod", "req-f", map[string]string{"activatedAt": stamp(1), "expiresAt": stamp(2)}),
		ev(12, h(2), pimv1.AuditExpired, "", "gina", "admin", "prod", "req-g", nil),
		// An eligible assignment grants nothing.
		ev(13, h(0), pimv1.AuditAssignmentCreated, "root", "hal", "admin", "prod", "ra-h", map[string]string{"type": "Eligible"}),
		// An extension: the old request ends Extended, the new one begins.
		ev(14, h(9), pimv1.AuditActivated, "", "ivan", "admin", "prod", "req-i1", map[string]string{"activatedAt": stamp(9), "expiresAt": stamp(10)}),
		ev(15, h(10), pimv1.AuditActivated, "", "ivan", "admin", "prod", "req-i2", map[string]string{"activatedAt": stamp(10), "expiresAt": stamp(12)}),
		ev(16, h(10), pimv1.AuditExtended, "", "ivan", "admin", "prod", "req-i1", nil),
	}
	held := Intervals(trail)
	if len(held) != 7 {
		t.Fatalf("Intervals = %d intervals, want 7: %+v", len(held), held)
	}
	a := held[0]
	if a.Target.Name != "req-a" || !a.From.Equal(h(1)) || !a.Until.Equal(h(3)) || !a.Ended || a.EndedBy != pimv1.AuditDeactivated ||
		a.EndedByActor != "alice" || a.Justification != "incident 42" || a.Ticket.Number != "OPS-1" || len(a.Approvers) != 1 || a.Approvers[0] != "carol" || a.Via != ViaActivation {
		t.Errorf("alice's activation = %+v", a)
	}
	for _, got := range held {
		switch got.Subject.Name {
		case "bob":
			if got.Ended || !got.Until.Equal(h(8)) {
				t.Errorf("bob's = %+v, want due to end at h(8), not recorded as ended", got)
			}
		case "dave":
			if got.Via != ViaAssignment || got.AssignedBy != "root" || !got.Until.Equal(h(6)) || got.EndedBy != pimv1.AuditAssignmentRemoved {
				t.Errorf("dave's = %+v", got)
			}
		case "erin":
			if !got.Until.IsZero() || got.Ended {
				t.Errorf("erin's = %+v, want no end", got)
			}
		}
	}

	names := func(hs []Held) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Subject.Name+"/"+h.Target.Name)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    WhoQuery
		want []string
	}{
		{"at an instant, every scope", WhoQuery{Role: "admin", From: h(2), To: h(2)}, []string{"alice/req-a", "bob/req-b"}},
		{"the end is excluded", WhoQuery{Role: "admin", From: h(3), To: h(3)}, []string{"bob/req-b"}},
		{"the start is included", WhoQuery{Role: "admin", From: h(1), To: h(1)}, []string{"alice/req-a"}},
		{"a range", WhoQuery{Role: "admin", From: h(0), To: h(24)},
			[]string{"alice/req-a", "bob/req-b", "dave/ra-d", "erin/ra-e", "ivan/req-i1", "ivan/req-i2"}},
		{"a namespace keeps cluster-wide grants", WhoQuery{Role: "admin", Namespace: "staging", From: h(0), To: h(24)},
			[]string{"bob/req-b", "dave/ra-d"}},
		{"a permanent assignment covers the future", WhoQuery{Role: "admin", Namespace: "prod", From: h(1000), To: h(1000)}, []string{"erin/ra-e"}},
		{"an unrecorded end is the due one", WhoQuery{Role: "admin", From: h(8), To: h(8)}, []string{"erin/ra-e"}},
		{"an extension hands over", WhoQuery{Role: "admin", Namespace: "prod", From: h(11), To: h(11)}, []string{"erin/ra-e", "ivan/req-i2"}},
		{"another role", WhoQuery{Role: "view", From: h(0), To: h(24)}, []string{"frank/req-f"}},
		{"a kind that does not match", WhoQuery{Role: "view", RoleKind: pimv1.RoleKindRole, From: h(0), To: h(24)}, nil},
		{"before anything", WhoQuery{Role: "admin", From: h(-5), To: h(-1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := names(Who(held, tc.q))
			if len(got) != len(tc.want) {
				t.Fatalf("Who = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Who = %v, want %v", got, tc.want)
				}
			}
		})
	}
}
