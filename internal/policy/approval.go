package policy

import (
	"fmt"
	"slices"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// MaxReasonLength bounds the reason of an approval or a review decision: it
// is kept in a signed record inside one annotation, and an unbounded one
// would let one decider fill the annotation and keep everyone else from
// deciding.
const MaxReasonLength = 1024

// CheckReason refuses a reason too long to keep.
func CheckReason(reason string) error {
	if len(reason) > MaxReasonLength {
		return fmt.Errorf("the reason is %d bytes long; keep it to %d (link to a ticket for more)", len(reason), MaxReasonLength)
	}
	return nil
}

// DecidingGroups are the groups of a user that principals name: the groups
// through which the user may decide. A signed record keeps these alone,
// not every group the user is in (there may be hundreds), which is all an
// audit of the decision needs and keeps the record small.
func DecidingGroups(principals []pimv1.Principal, groups []string) []string {
	var out []string
	for _, g := range groups {
		if slices.ContainsFunc(principals, func(p pimv1.Principal) bool { return p.Kind == pimv1.SubjectKindGroup && p.Name == g }) {
			out = append(out, g)
		}
	}
	return out
}

// IsApprover reports whether user may approve under the policy: named as a
// User, or a member of a named Group at the time of the decision.
func IsApprover(p pimv1.ApprovalPolicy, user pimv1.UserInfo) bool {
	for _, a := range p.Approvers {
		switch a.Kind {
		case pimv1.SubjectKindUser:
			if a.Name == user.Username {
				return true
			}
		case pimv1.SubjectKindGroup:
			if slices.Contains(user.Groups, a.Name) {
				return true
			}
		}
	}
	return false
}

// ApprovalOutcome is where a request stands with its approvers.
type ApprovalOutcome int

const (
	// AwaitingApproval: not enough approvals, no denial.
	AwaitingApproval ApprovalOutcome = iota
	// Approved: requiredApprovals distinct approvers approved.
	Approved
	// Denied: an approver denied (a denial wins).
	Denied
)

// CountApprovals decides a request from its (verified) records: one denial
// denies; requiredApprovals distinct approvers approve. Records by the
// requester or by someone who is not an approver count for nothing.
func CountApprovals(p pimv1.ApprovalPolicy, requester string, records []pimv1.ApprovalRecord) (ApprovalOutcome, int) {
	approvers := map[string]bool{}
	for _, r := range records {
		if r.Approver.Username == requester || !IsApprover(p, r.Approver) {
			continue
		}
		if r.Decision == pimv1.DecisionDeny {
			return Denied, len(approvers)
		}
		if r.Decision == pimv1.DecisionApprove {
			approvers[r.Approver.Username] = true
		}
	}
	required := max(int(p.RequiredApprovals), 1)
	if len(approvers) >= required {
		return Approved, len(approvers)
	}
	return AwaitingApproval, len(approvers)
}

// CheckDecision says why user may not decide on a request now, or nil.
func CheckDecision(p pimv1.ApprovalPolicy, state pimv1.ActivationState, requester string, user pimv1.UserInfo, decision pimv1.ApprovalDecision, reason string, records []pimv1.ApprovalRecord) error {
	if user.Username == requester {
		return fmt.Errorf("you cannot decide on your own request: ask one of the approvers")
	}
	if state != pimv1.ActivationStatePendingApproval {
		return fmt.Errorf("this request is %s, not PendingApproval: there is nothing to decide", stateOrPending(state))
	}
	if !IsApprover(p, user) {
		return fmt.Errorf("%s is not an approver of this role; the approvers are %s", user.Username, describePrincipals(p.Approvers))
	}
	if reason == "" {
		return fmt.Errorf("give a reason: kubectl annotate activationrequest NAME kubepim.io/%s=\"<reason>\"", map[pimv1.ApprovalDecision]string{pimv1.DecisionApprove: "approve", pimv1.DecisionDeny: "deny"}[decision])
	}
	if err := CheckReason(reason); err != nil {
		return err
	}
	for _, r := range records {
		if r.Approver.Username == user.Username {
			return fmt.Errorf("%s already decided (%s) on this request", user.Username, r.Decision)
		}
	}
	if outcome, _ := CountApprovals(p, requester, records); outcome != AwaitingApproval {
		return fmt.Errorf("this request is already decided")
	}
	return nil
}

func describePrincipals(ps []pimv1.Principal) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += p.Kind + " " + p.Name
	}
	if s == "" {
		return "nobody"
	}
	return s
}
