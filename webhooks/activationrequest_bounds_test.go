package webhooks

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

// groupName is a realistic directory group name, padded to 100 bytes.
func groupName(prefix string, i int) string {
	s := fmt.Sprintf("%s-%03d-", prefix, i)
	return s + strings.Repeat("g", 100-len(s))
}

// wideApproval: 64 approver groups (the most a policy names), quorum 10
// (the most it asks for).
func wideApproval() (*pimv1.RoleSetting, *activationMutator) {
	rs := approvalSetting()
	rs.Spec.Activation.Approval.RequiredApprovals = 10
	rs.Spec.Activation.Approval.Approvers = nil
	for i := range 64 {
		rs.Spec.Activation.Approval.Approvers = append(rs.Spec.Activation.Approval.Approvers,
			pimv1.Principal{Kind: pimv1.SubjectKindGroup, Name: groupName("approvers", i)})
	}
	c := fakeClient(rs)
	return rs, &activationMutator{handlerBase: testBase(c, allowing()), keys: testKeys(c),
		totp: &mfa.TOTPVerifier{Client: c, Namespace: testNamespace}}
}

// approverIn200Groups is in every approver group and 136 others.
func approverIn200Groups(name string) *pimv1.UserInfo {
	var groups []string
	for i := range 200 {
		if i < 64 {
			groups = append(groups, groupName("approvers", i))
		} else {
			groups = append(groups, groupName("staff", i))
		}
	}
	return user(name, groups...)
}

// decide has u approve (or deny) old with a 1 KiB reason, the longest.
func decide(t *testing.T, m *activationMutator, old *pimv1.ActivationRequest, u *pimv1.UserInfo, key string) (*pimv1.ActivationRequest, error) {
	t.Helper()
	ar := annotated(old.DeepCopy(), key, strings.Repeat("r", policy.MaxReasonLength))
	if errs := m.mutate(context.Background(), update(u, old, ar)); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return ar, nil
}

// TestApprovalRecordsHoldAQuorumOfApproversIn200Groups: the largest
// decision a policy allows — ten approvals (nine and a denial) by
// approvers each in 200 groups, 64 of them approver groups, with the
// longest reasons — fits, and each record keeps only the groups through
// which its approver could decide.
func TestApprovalRecordsHoldAQuorumOfApproversIn200Groups(t *testing.T) {
	for _, last := range []string{pimv1.AnnotationApprove, pimv1.AnnotationDeny} {
		t.Run(last, func(t *testing.T) {
			_, m := wideApproval()
			ar := pending(activation("wide", "alice"))
			for i := range 10 {
				key := pimv1.AnnotationApprove
				if i == 9 {
					key = last
				}
				next, err := decide(t, m, ar, approverIn200Groups(fmt.Sprintf("approver-%d", i)), key)
				if err != nil {
					t.Fatalf("decision %d refused: %v", i+1, err)
				}
				ar = next
			}
			signed, err := approval.Parse(ar)
			if err != nil || len(signed) != 10 {
				t.Fatalf("records = %d, %v; want 10", len(signed), err)
			}
			for _, s := range signed {
				if n := len(s.Record.Approver.Groups); n != 64 {
					t.Errorf("%s's record keeps %d groups, want the 64 deciding ones of 200", s.Record.Approver.Username, n)
				}
				for _, g := range s.Record.Approver.Groups {
					if strings.HasPrefix(g, "staff-") {
						t.Errorf("a record keeps %s, through which nobody decides", g)
					}
				}
			}
			n := len(ar.Annotations[pimv1.AnnotationDecisions])
			t.Logf("10 records of approvers in 200 groups (64 deciding): %d bytes (%d a record); the bound is %d", n, n/10, approval.MaxAnnotationBytes)
			if n > approval.MaxAnnotationBytes {
				t.Errorf("a full quorum takes %d bytes, over the %d kept", n, approval.MaxAnnotationBytes)
			}
		})
	}
}

// formerApprovers signs n records by people who are no longer approvers
// (the policy changed while the request waited): they count for nothing,
// so the request still waits, and records pile up.
func formerApprovers(t *testing.T, m *activationMutator, ar *pimv1.ActivationRequest, n int, groups []string) *pimv1.ActivationRequest {
	t.Helper()
	key, err := m.keys.Key(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var signed []approval.SignedRecord
	for i := range n {
		r := pimv1.ApprovalRecord{Approver: pimv1.UserInfo{Username: fmt.Sprintf("former-%d", i), Groups: groups},
			Decision: pimv1.DecisionApprove, Reason: "ok", Time: metav1.NewTime(testNow)}
		signed = append(signed, approval.SignedRecord{Record: r, Signature: approval.Sign(key, ar.UID, r)})
	}
	return annotated(ar, pimv1.AnnotationDecisions, approval.Encode(signed))
}

// TestApprovalRecordsBounded: the 64th record is kept, a 65th refused
// with a message that says why and what happens; so is a record that
// would take the annotation past its bytes.
func TestApprovalRecordsBounded(t *testing.T) {
	_, m := wideApproval()
	bob := approverIn200Groups("bob")

	at := formerApprovers(t, m, pending(activation("at", "alice")), approval.MaxRecords-1, nil)
	ar, err := decide(t, m, at, bob, pimv1.AnnotationApprove)
	if err != nil {
		t.Fatalf("the %dth record refused: %v", approval.MaxRecords, err)
	}
	if signed, _ := approval.Parse(ar); len(signed) != approval.MaxRecords {
		t.Fatalf("records = %d, want %d", len(signed), approval.MaxRecords)
	}

	past := formerApprovers(t, m, pending(activation("past", "alice")), approval.MaxRecords, nil)
	if _, err := decide(t, m, past, bob, pimv1.AnnotationApprove); err == nil ||
		!strings.Contains(err.Error(), fmt.Sprintf("already holds %d approval records", approval.MaxRecords)) ||
		!strings.Contains(err.Error(), "times out") {
		t.Errorf("a %dth record: %v; want a refusal saying the request is full and times out", approval.MaxRecords+1, err)
	}

	// Approvers deciding through 64 groups of 1 KiB names (the most the
	// API allows) fill the bytes before the count: two such records fit,
	// a third is refused.
	rs, _ := wideApproval()
	var huge []string
	for i := range 64 {
		huge = append(huge, fmt.Sprintf("%04d", i)+strings.Repeat("h", 1020))
	}
	rs.Spec.Activation.Approval.Approvers = nil
	for _, g := range huge {
		rs.Spec.Activation.Approval.Approvers = append(rs.Spec.Activation.Approval.Approvers, pimv1.Principal{Kind: pimv1.SubjectKindGroup, Name: g})
	}
	c := fakeClient(rs)
	m = &activationMutator{handlerBase: testBase(c, allowing()), keys: testKeys(c), totp: &mfa.TOTPVerifier{Client: c, Namespace: testNamespace}}
	carol := user("carol", huge...)
	if _, err := decide(t, m, formerApprovers(t, m, pending(activation("fits", "alice")), 1, huge), carol, pimv1.AnnotationApprove); err != nil {
		t.Errorf("a second record of 64 long groups refused: %v", err)
	}
	full := formerApprovers(t, m, pending(activation("full", "alice")), 2, huge)
	if _, err := decide(t, m, full, carol, pimv1.AnnotationApprove); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than the %d one request keeps", approval.MaxAnnotationBytes)) {
		t.Errorf("a record past %d bytes: %v; want a refusal that says so", approval.MaxAnnotationBytes, err)
	}
}
