package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// The API server refuses malformed objects with the CRDs' CEL rules and
// schema, before any kubepim code runs.
var _ = Describe("CRD validation", func() {
	ctx := context.Background()

	DescribeTable("refuses a RoleAssignment",
		func(mutate func(*pimv1.RoleAssignment), message string) {
			ra := assignment(uniq("invalid"), "alice", "view", pimv1.AssignmentActive, nil, nil)
			mutate(ra)
			err := k8s.Create(ctx, ra)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("that ends before it starts", func(ra *pimv1.RoleAssignment) {
			ra.Spec.StartTime = &metav1.Time{Time: time.Now().Add(time.Hour)}
			ra.Spec.EndTime = &metav1.Time{Time: time.Now()}
		}, "spec.endTime must be after spec.startTime"),
		Entry("of a Role with no namespace", func(ra *pimv1.RoleAssignment) {
			ra.Spec.RoleRef.Kind = pimv1.RoleKindRole
		}, "a Role can only be assigned in a namespace"),
		Entry("to a ServiceAccount with no namespace", func(ra *pimv1.RoleAssignment) {
			ra.Spec.Subject = pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Name: "deployer"}
		}, "subject.namespace is required for a ServiceAccount"),
		Entry("to a User with a namespace", func(ra *pimv1.RoleAssignment) {
			ra.Spec.Subject.Namespace = "default"
		}, "must be empty for a User or Group"),
		Entry("of an unknown type", func(ra *pimv1.RoleAssignment) {
			ra.Spec.Type = "Forever"
		}, `Unsupported value: "Forever"`),
		Entry("of an unknown subject kind", func(ra *pimv1.RoleAssignment) {
			ra.Spec.Subject.Kind = "Robot"
		}, `Unsupported value: "Robot"`),
	)

	It("refuses changing who or what an assignment is for", func() {
		ra := assignment(uniq("immutable"), "alice", "view", pimv1.AssignmentEligible, nil, nil)
		create(ra)
		// Merge patches, as kubectl edit sends: no resourceVersion races
		// with the controller's own writes.
		change := func(mutate func(*pimv1.RoleAssignment)) error {
			got := &pimv1.RoleAssignment{}
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ra), got)).To(Succeed())
			patch := client.MergeFrom(got.DeepCopy())
			mutate(got)
			return k8s.Patch(ctx, got, patch)
		}
		Expect(change(func(ra *pimv1.RoleAssignment) { ra.Spec.Subject.Name = "mallory" })).To(MatchError(ContainSubstring("subject is immutable")))
		Expect(change(func(ra *pimv1.RoleAssignment) { ra.Spec.Type = pimv1.AssignmentActive })).To(MatchError(ContainSubstring("type is immutable")))
		Expect(change(func(ra *pimv1.RoleAssignment) {
			ra.Spec.EndTime = &metav1.Time{Time: time.Now().Add(time.Hour).Truncate(time.Second)}
		})).To(Succeed(), "endTime may move")
	})

	DescribeTable("refuses a RoleSetting",
		func(mutate func(*pimv1.RoleSetting), message string) {
			rs := roleSetting(uniq("invalid"), "view")
			mutate(rs)
			err := k8s.Create(ctx, rs)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("whose maxDuration exceeds 24h", func(rs *pimv1.RoleSetting) {
			rs.Spec.Activation.MaxDuration = metav1.Duration{Duration: 25 * time.Hour}
		}, "activation.maxDuration must be more than 0s and at most 24h"),
		Entry("whose idleTimeout is under 5m", func(rs *pimv1.RoleSetting) {
			rs.Spec.Activation.IdleTimeout = &metav1.Duration{Duration: time.Minute}
		}, "activation.idleTimeout must be at least 5m and at most 24h"),
		Entry("that requires approval from nobody", func(rs *pimv1.RoleSetting) {
			rs.Spec.Activation.Approval.Required = true
		}, "approval.approvers must name at least one User or Group"),
		Entry("that requires more approvals than approvers", func(rs *pimv1.RoleSetting) {
			rs.Spec.Activation.Approval = pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 2,
				Approvers: []pimv1.Principal{{Kind: "User", Name: "olivia"}}}
		}, "approval.requiredApprovals cannot exceed the number of named approvers"),
		Entry("of a Role with no namespace", func(rs *pimv1.RoleSetting) {
			rs.Spec.RoleRef.Kind = pimv1.RoleKindRole
		}, "roleRef.namespace is required for a Role"),
	)

	It("fills the documented defaults into a minimal RoleSetting", func() {
		rs := &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: uniq("minimal")},
			Spec: pimv1.RoleSettingSpec{RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: uniq("r")}}}
		// Send it as a client would from YAML: only roleRef.
		u := map[string]any{"apiVersion": "kubepim.io/v1alpha1", "kind": "RoleSetting",
			"metadata": map[string]any{"name": rs.Name},
			"spec":     map[string]any{"roleRef": map[string]any{"kind": "ClusterRole", "name": rs.Spec.RoleRef.Name}}}
		Expect(k8s.Create(ctx, unstructuredFrom(u))).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, rs) })
		got := &pimv1.RoleSetting{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(rs), got)).To(Succeed())
		a := got.Spec.Activation
		Expect(a.MaxDuration.Duration).To(Equal(8 * time.Hour))
		Expect(a.RequireJustification).To(HaveValue(BeTrue()))
		Expect(a.Approval.RequiredApprovals).To(Equal(int32(1)))
		Expect(a.Approval.Timeout.Duration).To(Equal(24 * time.Hour))
		Expect(got.Spec.Assignment.Eligible.AllowPermanent).To(HaveValue(BeTrue()))
		Expect(got.Spec.Assignment.Active.AllowPermanent).To(HaveValue(BeTrue()))
	})
})

var _ = Describe("RoleSetting", func() {
	ctx := context.Background()

	conflictOf := func(rs *pimv1.RoleSetting) func() metav1.ConditionStatus {
		return func() metav1.ConditionStatus {
			got := &pimv1.RoleSetting{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(rs), got); err != nil {
				return ""
			}
			if c := meta.FindStatusCondition(got.Status.Conditions, pimv1.ConditionConflict); c != nil && c.ObservedGeneration == got.Generation {
				return c.Status
			}
			return ""
		}
	}

	It("marks both of two RoleSettings of one role as in conflict, and clears it when one goes", func() {
		role := uniq("shared-role")
		first, second := roleSetting(uniq("first"), role), roleSetting(uniq("second"), role)
		create(first)
		Eventually(conflictOf(first)).Should(Equal(metav1.ConditionFalse))
		create(second)
		Eventually(conflictOf(first)).Should(Equal(metav1.ConditionTrue))
		Eventually(conflictOf(second)).Should(Equal(metav1.ConditionTrue))
		Expect(k8s.Delete(ctx, second)).To(Succeed())
		Eventually(conflictOf(first)).Should(Equal(metav1.ConditionFalse))
	})
})

func roleSetting(name, clusterRole string) *pimv1.RoleSetting {
	return &pimv1.RoleSetting{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: pimv1.RoleSettingSpec{
			RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: clusterRole},
			Activation: pimv1.ActivationPolicy{
				MaxDuration:          metav1.Duration{Duration: 8 * time.Hour},
				RequireJustification: ptr.To(true),
				Approval:             pimv1.ApprovalPolicy{RequiredApprovals: 1, Timeout: metav1.Duration{Duration: 24 * time.Hour}},
			},
			Assignment: pimv1.AssignmentPolicy{
				Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)},
				Active:   pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(true)},
			},
		},
	}
}
