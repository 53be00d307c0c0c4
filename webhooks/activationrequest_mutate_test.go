package webhooks

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/mfa"
)

func activation(name, requester string) *pimv1.ActivationRequest {
	return &pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
		Spec: pimv1.ActivationRequestSpec{RoleRef: clusterRole("view"), Duration: metav1.Duration{Duration: time.Hour},
			Justification: "incident", Requester: user(requester)},
	}
}

func pending(ar *pimv1.ActivationRequest) *pimv1.ActivationRequest {
	ar.Status.State = pimv1.ActivationStatePendingApproval
	return ar
}

// approvalSetting requires bob's approval for ClusterRole view.
func approvalSetting() *pimv1.RoleSetting {
	return &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "view"}, Spec: pimv1.RoleSettingSpec{
		RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "view"},
		Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: 8 * time.Hour}, Approval: pimv1.ApprovalPolicy{
			Required: true, RequiredApprovals: 1, Approvers: []pimv1.Principal{{Kind: pimv1.SubjectKindUser, Name: "bob"}},
		}},
	}}
}

func activationMutatorFor(t *testing.T) *activationMutator {
	c := fakeClient(approvalSetting())
	return &activationMutator{handlerBase: testBase(c, allowing()), keys: testKeys(c),
		totp: &mfa.TOTPVerifier{Client: c, Namespace: testNamespace}}
}

func TestActivationMutatorCreate(t *testing.T) {
	alice := user("alice", "dev")
	withMFA := mfaUser("alice")
	for _, tc := range []struct {
		name    string
		user    *pimv1.UserInfo
		ar      *pimv1.ActivationRequest
		want    want
		mfa     string
		dropped []string
	}{
		{name: "stamps the requester over a typed one", user: alice, ar: activation("a", "mallory"), want: allowed},
		{name: "stamps an MFA claim", user: withMFA, ar: activation("a", ""), want: allowed, mfa: pimv1.MFAMethodClaim},
		{name: "drops a typed MFA proof and the actor stamps", user: alice,
			ar: func() *pimv1.ActivationRequest {
				ar := annotated(activation("a", ""), pimv1.AnnotationCancelledBy, "bob", pimv1.AnnotationDeactivatedBy, "bob")
				ar.Spec.MFA = &pimv1.MFAProof{Method: pimv1.MFAMethodTOTP}
				return ar
			}(), want: allowed, dropped: []string{pimv1.AnnotationCancelledBy, pimv1.AnnotationDeactivatedBy}},
		{name: "refuses an approval on a new request", user: alice, ar: annotated(activation("a", ""), pimv1.AnnotationApprove, "me"),
			want: refused("metadata.annotations[kubepim.io/approve]", "cannot be set on a new request")},
		{name: "refuses a denial on a new request", user: alice, ar: annotated(activation("a", ""), pimv1.AnnotationDeny, "no"),
			want: refused("metadata.annotations[kubepim.io/deny]", "cannot be set on a new request")},
		{name: "refuses records on a new request", user: alice, ar: annotated(activation("a", ""), pimv1.AnnotationDecisions, "[]"),
			want: refused("metadata.annotations[kubepim.io/decisions]", "cannot be set on a new request")},
		{name: "refuses a TOTP code without an enrollment, and drops it", user: alice, ar: annotated(activation("a", ""), pimv1.AnnotationTOTP, "123456"),
			want: refused("metadata.annotations[kubepim.io/totp]", ""), dropped: []string{pimv1.AnnotationTOTP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := activationMutatorFor(t)
			errs := m.mutate(context.Background(), create(tc.user, tc.ar))
			tc.want.check(t, errs)
			for _, k := range tc.dropped {
				if _, ok := tc.ar.Annotations[k]; ok {
					t.Errorf("annotation %s kept", k)
				}
			}
			if len(errs) > 0 {
				return
			}
			if got := tc.ar.Spec.Requester; got.Username != tc.user.Username || got.UID != tc.user.UID {
				t.Errorf("requester = %+v, want %+v", got, tc.user)
			}
			switch {
			case tc.mfa == "" && tc.ar.Spec.MFA != nil:
				t.Errorf("mfa = %+v, want none", tc.ar.Spec.MFA)
			case tc.mfa != "" && (tc.ar.Spec.MFA == nil || tc.ar.Spec.MFA.Method != tc.mfa || !tc.ar.Spec.MFA.VerifiedAt.Time.Equal(testNow)):
				t.Errorf("mfa = %+v, want %s at %s", tc.ar.Spec.MFA, tc.mfa, testNow)
			}
		})
	}
}

func TestActivationMutatorUpdate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		user  *pimv1.UserInfo
		old   *pimv1.ActivationRequest
		edit  func(*pimv1.ActivationRequest)
		want  want
		stamp map[string]string // annotations expected after (value "" = absent)
	}{
		{name: "stamps who cancelled", user: user("alice"), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationCancel, "not needed") },
			want: allowed, stamp: map[string]string{pimv1.AnnotationCancelledBy: "alice"}},
		{name: "stamps who deactivated", user: user("root"), old: activation("a", "alice"),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationDeactivate, "incident over") },
			want: allowed, stamp: map[string]string{pimv1.AnnotationDeactivatedBy: "root"}},
		{name: "puts back forged actor stamps", user: user("mallory"), old: annotated(activation("a", "alice"), pimv1.AnnotationCancelledBy, "alice"),
			edit: func(ar *pimv1.ActivationRequest) {
				annotated(ar, pimv1.AnnotationCancelledBy, "mallory", pimv1.AnnotationDeactivatedBy, "mallory", pimv1.AnnotationTOTP, "1")
			},
			want: allowed, stamp: map[string]string{pimv1.AnnotationCancelledBy: "alice", pimv1.AnnotationDeactivatedBy: "", pimv1.AnnotationTOTP: ""}},
		{name: "refuses writing records", user: user("bob"), old: pending(activation("a", "alice")),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationDecisions, "[]") },
			want: refused("metadata.annotations[kubepim.io/decisions]", "written by kubepim alone")},
		{name: "refuses approving and denying at once", user: user("bob"), old: pending(activation("a", "alice")),
			edit: func(ar *pimv1.ActivationRequest) {
				annotated(ar, pimv1.AnnotationApprove, "x", pimv1.AnnotationDeny, "y")
			},
			want: refused("metadata.annotations[kubepim.io/deny]", "approve or deny, not both")},
		{name: "refuses the requester's own approval", user: user("alice"), old: pending(activation("a", "alice")),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationApprove, "me") },
			want: refused("metadata.annotations[kubepim.io/approve]", "cannot decide on your own request")},
		{name: "refuses a non-approver", user: user("mallory"), old: pending(activation("a", "alice")),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationDeny, "no") },
			want: refused("metadata.annotations[kubepim.io/deny]", "mallory is not an approver")},
		{name: "refuses a decision without a reason", user: user("bob"), old: pending(activation("a", "alice")),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationApprove, " ") },
			want: refused("metadata.annotations[kubepim.io/approve]", "give a reason")},
		{name: "refuses a decision on a role that needs none", user: user("bob"),
			old: func() *pimv1.ActivationRequest {
				ar := activation("a", "alice")
				ar.Spec.RoleRef = clusterRole("edit")
				return ar
			}(),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationApprove, "ok") },
			want: refused("metadata.annotations[kubepim.io/approve]", "ClusterRole edit cluster-wide needs no approval")},
		{name: "turns an approval into a signed record", user: user("bob", "leads"), old: pending(activation("a", "alice")),
			edit: func(ar *pimv1.ActivationRequest) { annotated(ar, pimv1.AnnotationApprove, " go ahead ") },
			want: allowed, stamp: map[string]string{pimv1.AnnotationApprove: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := activationMutatorFor(t)
			ar := tc.old.DeepCopy()
			tc.edit(ar)
			tc.want.check(t, m.mutate(context.Background(), update(tc.user, tc.old, ar)))
			for k, v := range tc.stamp {
				if got := ar.Annotations[k]; got != v {
					t.Errorf("annotation %s = %q, want %q", k, got, v)
				}
			}
			if tc.want == allowed && ar.Annotations[pimv1.AnnotationDecisions] != "" {
				checkRecord(t, m, ar, tc.user)
			}
		})
	}
}

// checkRecord checks the one record in ar's decisions: the user's,
// signed by kubepim, with the groups through which they decide (none).
func checkRecord(t *testing.T, m *activationMutator, ar *pimv1.ActivationRequest, u *pimv1.UserInfo) {
	t.Helper()
	signed, err := approval.Parse(ar)
	if err != nil || len(signed) != 1 {
		t.Fatalf("records = %v, %v; want one", signed, err)
	}
	key, _ := m.keys.Key(context.Background())
	r := signed[0]
	if !approval.Verify(key, ar.UID, r) || r.Record.Approver.Username != u.Username || r.Record.Decision != pimv1.DecisionApprove ||
		r.Record.Reason != "go ahead" || len(r.Record.Approver.Groups) != 0 || !r.Record.Time.Time.Equal(testNow) {
		t.Errorf("record = %+v", r.Record)
	}
}
