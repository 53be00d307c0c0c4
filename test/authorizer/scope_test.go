package authorizer

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var _ = Describe("A reduced-scope activation in access mode authorizer", func() {
	It("allows exactly its subset while the role allows it, with no role or binding, and ends when the role shrinks", func() {
		alice := uniq("alice")
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: uniq("pod-admin")}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
		}}
		Expect(k8s.Create(ctx, role)).To(Succeed())
		ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: uniq("eligible")}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: alice},
			RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role.Name},
			Type:    pimv1.AssignmentEligible,
		}}
		Expect(k8s.Create(ctx, ra)).To(Succeed())

		ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: uniq(alice)}, Spec: pimv1.ActivationRequestSpec{
			RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role.Name}, Namespace: "prod",
			Duration: metav1.Duration{Duration: time.Hour}, Justification: "authorizer test",
			Permissions: []pimv1.PermissionRule{{Verbs: []string{"get", "delete"}, APIGroups: []string{""}, Resources: []string{"pods"}}},
		}}
		Eventually(func() error { return as(alice).Create(ctx, ar) }).Should(Succeed())
		got := activeRequest(ar)
		Expect(got.Status.Scope).To(Equal(pimv1.ScopeReduced))
		Expect(got.Status.Binding).To(BeNil())
		Expect(got.Status.GeneratedRole).To(BeNil())

		Eventually(func() bool { return allowed(alice, "get", "pods", "prod") }).Should(BeTrue())
		Expect(allowed(alice, "delete", "pods", "prod")).To(BeTrue())
		Expect(allowed(alice, "list", "pods", "prod")).To(BeFalse())
		Expect(allowed(alice, "get", "secrets", "prod")).To(BeFalse())
		Expect(allowed(alice, "get", "pods", "dev")).To(BeFalse())

		By("the role losing delete: delete goes at once, and the request ends")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(role), role)).To(Succeed())
		role.Rules[0].Verbs = []string{"get", "list"}
		Expect(k8s.Update(ctx, role)).To(Succeed())
		Eventually(func() bool { return allowed(alice, "delete", "pods", "prod") }).Should(BeFalse())
		Eventually(func() pimv1.ActivationState {
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ar), got)).To(Succeed())
			return got.Status.State
		}).Should(Equal(pimv1.ActivationStateFailed))
		Expect(got.Status.Message).To(ContainSubstring("does not allow delete pods"))
		Expect(allowed(alice, "get", "pods", "prod")).To(BeFalse())
	})
})
