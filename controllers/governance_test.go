package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// grantUser gives user the rules of a fresh ClusterRole, cluster-wide.
func grantUser(user string, rules ...rbacv1.PolicyRule) {
	GinkgoHelper()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: uniq("grant")}, Rules: rules}
	create(role)
	create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}})
	// RBAC reaches the authorizer's cache a moment later.
	Eventually(func() bool {
		r := rules[0]
		return canIIn(user, r.APIGroups[0], r.Verbs[0], r.Resources[0])
	}).Should(BeTrue())
}

var kubepimWriter = rbacv1.PolicyRule{APIGroups: []string{"kubepim.io"}, Resources: []string{"roleassignments", "rolesettings"},
	Verbs: []string{"get", "list", "create", "update", "patch", "delete"}}

var _ = Describe("Assignment governance", func() {
	ctx := context.Background()

	Describe("the role's assignment rules", func() {
		var role string
		BeforeEach(func() {
			role = uniq("governed")
			clusterRoleFor(role, "pods", "get")
			rs := roleSetting(uniq("rules"), role)
			hour := metav1.Duration{Duration: time.Hour}
			rs.Spec.Assignment = pimv1.AssignmentPolicy{
				Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(false)},
				Active:   pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(false), MaxDuration: &hour, RequireJustification: true, RequireMFA: true},
			}
			create(rs)
			Eventually(settingObserved(rs)).Should(BeTrue())
		})

		admin := func(mfa bool) map[string][]string {
			if mfa {
				return map[string][]string{"amr": {"pwd", "mfa"}}
			}
			return nil
		}

		It("refuses a permanent eligible assignment", func() {
			err := as("root", []string{"system:masters"}, nil).Create(ctx, assignment(uniq("perm"), "alice", role, pimv1.AssignmentEligible, nil, nil))
			Expect(err).To(MatchError(ContainSubstring("eligible assignments of ClusterRole " + role + " cluster-wide cannot be permanent: set spec.endTime")))
		})

		It("refuses an active assignment that is too long, unjustified, or made without MFA, all at once", func() {
			ra := assignment(uniq("long"), "alice", role, pimv1.AssignmentActive, nil, in(3*time.Hour))
			err := as("root", []string{"system:masters"}, admin(false)).Create(ctx, ra)
			Expect(err).To(MatchError(ContainSubstring("may last at most 1h0m0s")))
			Expect(err).To(MatchError(ContainSubstring("require a justification")))
			Expect(err).To(MatchError(ContainSubstring("require the assigner to have signed in with multi-factor authentication")))
		})

		It("accepts one that keeps the rules", func() {
			ra := assignment(uniq("ok"), "alice", role, pimv1.AssignmentActive, nil, in(30*time.Minute))
			ra.Spec.Justification = "incident INC-9"
			Expect(as("root", []string{"system:masters"}, admin(true)).Create(ctx, ra)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ra) })
			Expect(getAssignment(ra).Spec.AssignedBy.Username).To(Equal("root"))
		})
	})

	Describe("the escalation guard", func() {
		It("refuses assigning a role the assigner could not bind, to anyone", func() {
			ops := uniq("ops")
			grantUser(ops, kubepimWriter)
			admin := uniq("all-powerful")
			clusterRoleFor(admin, "secrets", "*")
			for _, subject := range []string{ops, "someone-else"} {
				err := as(ops, nil, nil).Create(ctx, assignment(uniq("escalate"), subject, admin, pimv1.AssignmentEligible, nil, nil))
				Expect(err).To(MatchError(ContainSubstring(ops + " may not grant ClusterRole " + admin + " cluster-wide through kubepim")))
			}
		})

		It("allows an assigner who may bind the role", func() {
			ops, role := uniq("ops"), uniq("bindable")
			clusterRoleFor(role, "secrets", "*")
			grantUser(ops, kubepimWriter, rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"}, ResourceNames: []string{role}})
			ra := assignment(uniq("bind"), "alice", role, pimv1.AssignmentEligible, nil, nil)
			Expect(as(ops, nil, nil).Create(ctx, ra)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ra) })
		})

		It("allows an assigner who holds every permission of the role, in that scope", func() {
			lead, role := uniq("lead"), uniq("cm-reader")
			clusterRoleFor(role, "configmaps", "get", "list")
			grantUser(lead, kubepimWriter, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}})
			ra := assignment(uniq("holds"), "alice", role, pimv1.AssignmentEligible, nil, nil)
			Expect(as(lead, nil, nil).Create(ctx, ra)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ra) })

			more := uniq("cm-writer")
			clusterRoleFor(more, "configmaps", "get", "delete")
			Expect(as(lead, nil, nil).Create(ctx, assignment(uniq("more"), "alice", more, pimv1.AssignmentEligible, nil, nil))).
				To(MatchError(ContainSubstring("may not grant")))
		})

		It("refuses weakening a role's policy without bind or manage, and allows strengthening it", func() {
			gitops, role := uniq("gitops"), uniq("guarded")
			clusterRoleFor(role, "secrets", "*")
			grantUser(gitops, kubepimWriter)
			strict := roleSetting(uniq("strict"), role)
			strict.Spec.Activation.RequireMFA = true
			Expect(as(gitops, nil, nil).Create(ctx, strict)).To(Succeed(), "stricter than the defaults")
			DeferCleanup(func() { _ = k8s.Delete(ctx, strict) })

			got := &pimv1.RoleSetting{}
			Expect(k8s.Get(ctx, keyOf(strict), got)).To(Succeed())
			patch := client.MergeFrom(got.DeepCopy())
			got.Spec.Activation.RequireMFA = false
			got.Spec.Activation.MaxDuration = metav1.Duration{Duration: 24 * time.Hour}
			err := as(gitops, nil, nil).Patch(ctx, got, patch)
			Expect(err).To(MatchError(ContainSubstring("this weakens the policy of ClusterRole " + role)))
			Expect(err).To(MatchError(ContainSubstring("activation.requireMFA turned off")))
			Expect(as(gitops, nil, nil).Delete(ctx, strict)).To(MatchError(ContainSubstring("this weakens the policy")))

			grantUser(gitops, rbacv1.PolicyRule{APIGroups: []string{"kubepim.io"}, Resources: []string{"rolesettings"}, Verbs: []string{"manage"}})
			Expect(as(gitops, nil, nil).Patch(ctx, got, patch)).To(Succeed())
		})
	})
})
