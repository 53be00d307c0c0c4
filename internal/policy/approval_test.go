package policy

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// apprPolicy names carol, dave and erin as Users and sre as a Group.
func apprPolicy(required int32) pimv1.ApprovalPolicy {
	return pimv1.ApprovalPolicy{
		Required: true,
		Approvers: []pimv1.Principal{
			{Kind: pimv1.SubjectKindUser, Name: "carol"},
			{Kind: pimv1.SubjectKindUser, Name: "dave"},
			{Kind: pimv1.SubjectKindUser, Name: "erin"},
			{Kind: pimv1.SubjectKindGroup, Name: "sre"},
		},
		RequiredApprovals: required,
	}
}

func apprRecord(user string, decision pimv1.ApprovalDecision, groups ...string) pimv1.ApprovalRecord {
	return pimv1.ApprovalRecord{
		Approver: pimv1.UserInfo{Username: user, Groups: groups},
		Decision: decision,
		Reason:   "looks fine",
		Time:     metav1.NewTime(actNow),
	}
}

func TestIsApprover(t *testing.T) {
	p := pimv1.ApprovalPolicy{Approvers: []pimv1.Principal{
		{Kind: pimv1.SubjectKindUser, Name: "carol"},
		{Kind: pimv1.SubjectKindGroup, Name: "sre"},
	}}
	cases := []struct {
		name string
		user pimv1.UserInfo
		want bool
	}{
		{"user by name", pimv1.UserInfo{Username: "carol"}, true},
		{"member of a group", pimv1.UserInfo{Username: "frank", Groups: []string{"devs", "sre"}}, true},
		{"neither", pimv1.UserInfo{Username: "mallory", Groups: []string{"devs"}}, false},
		{"a user named like the group", pimv1.UserInfo{Username: "sre"}, false},
		{"a group named like the user", pimv1.UserInfo{Username: "mallory", Groups: []string{"carol"}}, false},
		{"names are case-sensitive", pimv1.UserInfo{Username: "Carol", Groups: []string{"SRE"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsApprover(p, tc.user); got != tc.want {
				t.Fatalf("IsApprover(%+v) = %v, want %v", tc.user, got, tc.want)
			}
		})
	}
	if IsApprover(pimv1.ApprovalPolicy{}, pimv1.UserInfo{Username: "carol", Groups: []string{"sre"}}) {
		t.Error("a policy with no approvers has an approver")
	}
}

func TestCountApprovals(t *testing.T) {
	approve, deny := pimv1.DecisionApprove, pimv1.DecisionDeny
	cases := []struct {
		name      string
		required  int32
		records   []pimv1.ApprovalRecord
		want      ApprovalOutcome
		wantCount int
	}{
		{"no records", 1, nil, AwaitingApproval, 0},
		{"quorum of 1 met", 1, []pimv1.ApprovalRecord{apprRecord("carol", approve)}, Approved, 1},
		{"quorum of 2 not met by one", 2, []pimv1.ApprovalRecord{apprRecord("carol", approve)}, AwaitingApproval, 1},
		{"quorum of 2 met by two", 2, []pimv1.ApprovalRecord{apprRecord("carol", approve), apprRecord("dave", approve)}, Approved, 2},
		{"all three of 3", 3, []pimv1.ApprovalRecord{apprRecord("carol", approve), apprRecord("dave", approve), apprRecord("erin", approve)}, Approved, 3},
		{"a group member counts", 2, []pimv1.ApprovalRecord{apprRecord("carol", approve), apprRecord("frank", approve, "sre")}, Approved, 2},
		{"the same approver twice counts once", 2, []pimv1.ApprovalRecord{apprRecord("carol", approve), apprRecord("carol", approve)}, AwaitingApproval, 1},
		{"a deny alone", 1, []pimv1.ApprovalRecord{apprRecord("carol", deny)}, Denied, 0},
		{"a deny wins even after a quorum", 2, []pimv1.ApprovalRecord{apprRecord("carol", approve), apprRecord("dave", approve), apprRecord("erin", deny)}, Denied, 2},
		{"a deny wins before approvals", 1, []pimv1.ApprovalRecord{apprRecord("erin", deny), apprRecord("carol", approve)}, Denied, 0},
		{"the requester's approval is ignored", 1, []pimv1.ApprovalRecord{apprRecord("alice", approve, "sre")}, AwaitingApproval, 0},
		{"the requester's denial is ignored", 1, []pimv1.ApprovalRecord{apprRecord("alice", deny, "sre"), apprRecord("carol", approve)}, Approved, 1},
		{"a non-approver's approval is ignored", 1, []pimv1.ApprovalRecord{apprRecord("mallory", approve, "devs")}, AwaitingApproval, 0},
		{"a non-approver's denial is ignored", 1, []pimv1.ApprovalRecord{apprRecord("mallory", deny), apprRecord("dave", approve)}, Approved, 1},
		{"an unknown decision is ignored", 1, []pimv1.ApprovalRecord{apprRecord("carol", "Maybe")}, AwaitingApproval, 0},
		{"requiredApprovals 0 is 1: none", 0, nil, AwaitingApproval, 0},
		{"requiredApprovals 0 is 1: one", 0, []pimv1.ApprovalRecord{apprRecord("carol", approve)}, Approved, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, n := CountApprovals(apprPolicy(tc.required), "alice", tc.records)
			if got != tc.want || n != tc.wantCount {
				t.Fatalf("CountApprovals = (%v, %d), want (%v, %d)", got, n, tc.want, tc.wantCount)
			}
		})
	}
}

func TestCheckDecision(t *testing.T) {
	approve, deny := pimv1.DecisionApprove, pimv1.DecisionDeny
	pending := pimv1.ActivationStatePendingApproval
	carol := pimv1.UserInfo{Username: "carol"}
	cases := []struct {
		name     string
		policy   pimv1.ApprovalPolicy
		state    pimv1.ActivationState
		user     pimv1.UserInfo
		decision pimv1.ApprovalDecision
		reason   string
		records  []pimv1.ApprovalRecord
		wantErr  string // "" for none
	}{
		{name: "an approver approves", policy: apprPolicy(1), state: pending, user: carol, decision: approve, reason: "ok"},
		{name: "an approver denies", policy: apprPolicy(1), state: pending, user: carol, decision: deny, reason: "no"},
		{name: "a group member approves", policy: apprPolicy(1), state: pending, user: pimv1.UserInfo{Username: "frank", Groups: []string{"sre"}}, decision: approve, reason: "ok"},
		{name: "second of two", policy: apprPolicy(2), state: pending, user: carol, decision: approve, reason: "ok",
			records: []pimv1.ApprovalRecord{apprRecord("dave", approve)}},
		{name: "own request", policy: apprPolicy(1), state: pending, user: pimv1.UserInfo{Username: "alice", Groups: []string{"sre"}}, decision: approve, reason: "ok",
			wantErr: "you cannot decide on your own request: ask one of the approvers"},
		{name: "own request, even when not pending", policy: apprPolicy(1), state: pimv1.ActivationStateActive, user: pimv1.UserInfo{Username: "alice"}, decision: approve, reason: "ok",
			wantErr: "you cannot decide on your own request"},
		{name: "not PendingApproval", policy: apprPolicy(1), state: pimv1.ActivationStateActive, user: carol, decision: approve, reason: "ok",
			wantErr: "this request is Active, not PendingApproval: there is nothing to decide"},
		{name: "no state yet", policy: apprPolicy(1), state: "", user: carol, decision: approve, reason: "ok",
			wantErr: "this request is Pending, not PendingApproval"},
		{name: "not an approver", policy: apprPolicy(1), state: pending, user: pimv1.UserInfo{Username: "mallory", Groups: []string{"devs"}}, decision: approve, reason: "ok",
			wantErr: "mallory is not an approver of this role; the approvers are User carol, User dave, User erin, Group sre"},
		{name: "no approvers at all", policy: pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1}, state: pending, user: carol, decision: approve, reason: "ok",
			wantErr: "carol is not an approver of this role; the approvers are nobody"},
		{name: "empty reason to approve", policy: apprPolicy(1), state: pending, user: carol, decision: approve, reason: "",
			wantErr: `give a reason: kubectl annotate activationrequest NAME kubepim.io/approve="<reason>"`},
		{name: "empty reason to deny", policy: apprPolicy(1), state: pending, user: carol, decision: deny, reason: "",
			wantErr: `kubepim.io/deny="<reason>"`},
		{name: "already decided by the same approver", policy: apprPolicy(2), state: pending, user: carol, decision: approve, reason: "again",
			records: []pimv1.ApprovalRecord{apprRecord("carol", approve)},
			wantErr: "carol already decided (Approve) on this request"},
		{name: "already denied by the same approver", policy: apprPolicy(2), state: pending, user: carol, decision: approve, reason: "changed my mind",
			records: []pimv1.ApprovalRecord{apprRecord("carol", deny)},
			wantErr: "carol already decided (Deny) on this request"},
		{name: "already approved by quorum", policy: apprPolicy(1), state: pending, user: carol, decision: deny, reason: "late",
			records: []pimv1.ApprovalRecord{apprRecord("dave", approve)},
			wantErr: "this request is already decided"},
		{name: "already denied by another", policy: apprPolicy(2), state: pending, user: carol, decision: approve, reason: "ok",
			records: []pimv1.ApprovalRecord{apprRecord("erin", deny)},
			wantErr: "this request is already decided"},
		{name: "a non-approver's record does not decide", policy: apprPolicy(1), state: pending, user: carol, decision: approve, reason: "ok",
			records: []pimv1.ApprovalRecord{apprRecord("mallory", deny)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDecision(tc.policy, tc.state, "alice", tc.user, tc.decision, tc.reason, tc.records)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("CheckDecision: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("CheckDecision = nil, want %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("CheckDecision = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
