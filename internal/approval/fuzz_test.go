package approval

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// The decisions annotations are user input until the webhook has looked at
// them: parsing any value must neither panic nor yield a record that
// verifies without kubepim's key.
func FuzzParseReview(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	rec := ReviewRecord{Seq: 1, Instance: 1, Item: "abc", Reviewer: pimv1.UserInfo{Username: "dana"}, Decision: pimv1.ReviewDecisionDeny, Time: metav1.Unix(1e9, 0)}
	f.Add(EncodeReview([]SignedReviewRecord{{Record: rec, Signature: SignReview(key, "uid", rec)}}))
	f.Add(`[{"record":{"seq":99,"instance":1,"item":"x","reviewer":{"username":"dana"},"decision":"Deny","time":"2026-01-01T00:00:00Z"},"signature":"AAAA"}]`)
	f.Add(`[]`)
	f.Add(`{}`)
	f.Add(`[{"record":null}]`)
	f.Fuzz(func(t *testing.T, raw string) {
		records, err := ParseReview(raw)
		if err != nil {
			return
		}
		for _, s := range records {
			if VerifyReview([]byte("another key, not the one signing!"), "uid", s) {
				t.Fatalf("a record verified under a key that never signed it: %+v", s)
			}
		}
		// What parses re-encodes to something that parses the same.
		again, err := ParseReview(EncodeReview(records))
		if err != nil || len(again) != len(records) {
			t.Fatalf("round trip: %v, %d != %d", err, len(again), len(records))
		}
	})
}

func FuzzParseApprovals(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	rec := pimv1.ApprovalRecord{Approver: pimv1.UserInfo{Username: "bob"}, Decision: pimv1.DecisionApprove, Reason: "ok", Time: metav1.Unix(1e9, 0)}
	f.Add(Encode([]SignedRecord{{Record: rec, Signature: Sign(key, "uid", rec)}}))
	f.Add(`[{"record":{"approver":{"username":"bob"},"decision":"Approve"},"signature":"AAAA"}]`)
	f.Add(`not json`)
	f.Fuzz(func(t *testing.T, raw string) {
		ar := &pimv1.ActivationRequest{}
		ar.Annotations = map[string]string{pimv1.AnnotationDecisions: raw}
		records, err := Parse(ar)
		if err != nil {
			return
		}
		for _, s := range records {
			if Verify([]byte("another key, not the one signing!"), "uid", s) {
				t.Fatalf("a record verified under a key that never signed it: %+v", s)
			}
		}
	})
}

// A grant's timing signature binds every part of it: changing the owner,
// the binding or either end (to any other whole second) makes it fail.
func FuzzVerifyTiming(f *testing.F) {
	f.Add("uid-1", "RoleBinding/ns/kubepim-ar-x", int64(1_800_000_000), int64(600), "uid-1", "RoleBinding/ns/kubepim-ar-x", int64(1_800_000_000), int64(4_000_000_000))
	f.Add("uid-1", "ClusterRoleBinding//kubepim-ar-x", int64(0), int64(1), "uid-2", "ClusterRoleBinding//kubepim-ar-x", int64(0), int64(1))
	f.Fuzz(func(t *testing.T, uid, binding string, start, length int64, uid2, binding2 string, start2, length2 int64) {
		key := []byte("0123456789abcdef0123456789abcdef")
		clamp := func(s int64) time.Time { return time.Unix(s%(1<<34), 0).UTC() }
		signed := GrantTiming{OwnerUID: types.UID(uid), Binding: binding, Start: clamp(start), End: clamp(start + length)}
		other := GrantTiming{OwnerUID: types.UID(uid2), Binding: binding2, Start: clamp(start2), End: clamp(start2 + length2)}
		sig := SignTiming(key, signed)
		if !VerifyTiming(key, signed, sig) {
			t.Fatal("kubepim's own signature does not verify")
		}
		same := signed.OwnerUID == other.OwnerUID && signed.Binding == other.Binding && signed.Start.Equal(other.Start) && signed.End.Equal(other.End)
		if !same && VerifyTiming(key, other, sig) {
			t.Fatalf("a signature for %+v verified %+v", signed, other)
		}
	})
}
