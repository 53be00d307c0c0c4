package controllers_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/controllers"
	"github.com/kubepim/kubepim/internal/grant"
)

// Reduced-scope activations (issue #19) in bindings mode: the suite's
// manager grants them with a role it generates, under the shipped
// manager RBAC (config/rbac/role.yaml, with escalate on roles).
var _ = Describe("A reduced-scope ActivationRequest", func() {
	ctx := context.Background()

	// podAdmin is a fresh ClusterRole allowing get, list and delete on
	// pods and get on secrets; user is made eligible for it cluster-wide.
	podAdmin := func(user string) string {
		GinkgoHelper()
		role := uniq("pod-admin")
		create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
		}})
		ra := assignment(uniq("eligible"), user, role, pimv1.AssignmentEligible, nil, nil)
		create(ra)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))
		return role
	}
	scoped := func(role, namespace string, ps ...pimv1.PermissionRule) *pimv1.ActivationRequest {
		ar := activation(uniq("scoped"), role, time.Hour, "INC-19: read one pod")
		ar.Spec.Namespace, ar.Spec.Permissions = namespace, ps
		return ar
	}
	getPods := pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}
	canName := func(user, verb, resource, namespace, name string) bool {
		GinkgoHelper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: namespace, Name: name}}}
		Expect(k8s.Create(ctx, sar)).To(Succeed())
		return sar.Status.Allowed
	}
	generated := func(ar *pimv1.ActivationRequest) *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: grant.ScopedRoleName(ar), Namespace: ar.Spec.Namespace}}
	}
	gone := func(obj client.Object) func() bool {
		return func() bool { return apierrors.IsNotFound(k8s.Get(ctx, keyOf(obj), obj)) }
	}

	It("grants only its subset, with a Role generated for it, and removes binding and Role at expiry", func() {
		alice := uniq("alice")
		role := podAdmin(alice)
		ar := scoped(role, "default", getPods)
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		got := getActivation(ar)
		Expect(got.Status.Scope).To(Equal(pimv1.ScopeReduced))
		Expect(got.Status.GeneratedRole).NotTo(BeNil())
		Expect(got.Status.GeneratedRole.Kind).To(Equal(pimv1.RoleKindRole))

		// The audit trail records what was asked, and what was granted with.
		var requested, activated *pimv1.AuditEvent
		for _, ev := range eventsAbout(string(got.UID)) {
			switch ev.Spec.Action {
			case pimv1.AuditActivationRequested:
				requested = &ev
			case pimv1.AuditActivated:
				activated = &ev
			}
		}
		Expect(requested).NotTo(BeNil())
		Expect(requested.Spec.Details).To(HaveKeyWithValue("scope", "get pods"))
		Expect(activated).NotTo(BeNil())
		Expect(activated.Spec.Details).To(HaveKeyWithValue("generatedRole", "Role/"+grant.ScopedRoleName(got)))

		// Exactly the subset: get pods in default, nothing else the role allows.
		Expect(canI(alice, nil, "get", "pods", "default")).To(BeTrue())
		Expect(canI(alice, nil, "delete", "pods", "default")).To(BeFalse())
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeFalse())
		Expect(canI(alice, nil, "get", "secrets", "default")).To(BeFalse())
		Expect(canI(alice, nil, "get", "pods", "kube-system")).To(BeFalse())

		// The generated Role: the request's rules, kubepim's labels, owned
		// by the request; the binding refers to it.
		gen := generated(got)
		Expect(k8s.Get(ctx, keyOf(gen), gen)).To(Succeed())
		Expect(string(gen.UID)).To(Equal(got.Status.GeneratedRole.UID))
		Expect(gen.Rules).To(Equal([]rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}))
		Expect(gen.Labels).To(HaveKeyWithValue(pimv1.LabelManagedBy, pimv1.ManagedByValue))
		Expect(gen.OwnerReferences).To(ConsistOf(HaveField("UID", got.UID)))
		b := &rbacv1.RoleBinding{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: got.Status.Binding.Name}, b)).To(Succeed())
		Expect(b.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: gen.Name}))

		fakeClock.SetTime(got.Status.ExpiresAt.Time)
		Eventually(func() bool { return canI(alice, nil, "get", "pods", "default") }).Should(BeFalse())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))
		Eventually(gone(b)).Should(BeTrue())
		Eventually(gone(gen)).Should(BeTrue())
		Expect(getActivation(ar).Status.GeneratedRole).To(BeNil())
	})

	It("grants a cluster-wide subset with a generated ClusterRole, resource names included", func() {
		alice := uniq("alice")
		role := podAdmin(alice)
		ar := scoped(role, "", pimv1.PermissionRule{Verbs: []string{"get", "delete"}, APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{"web"}})
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(getActivation(ar).Status.GeneratedRole.Kind).To(Equal(pimv1.RoleKindClusterRole))
		Expect(canName(alice, "delete", "pods", "prod", "web")).To(BeTrue())
		Expect(canName(alice, "get", "pods", "dev", "web")).To(BeTrue())
		Expect(canName(alice, "get", "pods", "prod", "db")).To(BeFalse())
		Expect(canI(alice, nil, "list", "pods", "prod")).To(BeFalse())
		Expect(canName(alice, "get", "secrets", "prod", "web")).To(BeFalse())
	})

	It("narrows a namespaced Role too, and ends when that Role shrinks", func() {
		alice := uniq("alice")
		role := uniq("ns-pod-admin")
		r := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: "default"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}, Verbs: []string{"get", "list"}}}}
		create(r)
		ra := assignment(uniq("eligible"), alice, role, pimv1.AssignmentEligible, nil, nil)
		ra.Spec.RoleRef.Kind, ra.Spec.Namespace = pimv1.RoleKindRole, "default"
		create(ra)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))
		ar := scoped(role, "default", pimv1.PermissionRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods/log"}})
		ar.Spec.RoleRef.Kind = pimv1.RoleKindRole
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: alice,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "log", Namespace: "default", Name: "web"}}}
		Expect(k8s.Create(ctx, sar)).To(Succeed())
		Expect(sar.Status.Allowed).To(BeTrue())
		Expect(canI(alice, nil, "get", "pods", "default")).To(BeFalse())

		Expect(k8s.Get(ctx, keyOf(r), r)).To(Succeed())
		r.Rules[0].Resources = []string{"pods"}
		Expect(k8s.Update(ctx, r)).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateFailed))
		Expect(getActivation(ar).Status.Message).To(ContainSubstring("Role " + role + " in namespace default does not allow get pods/log"))
		Eventually(gone(generated(getActivation(ar)))).Should(BeTrue())
	})

	It("is refused when it asks for what the role does not allow, naming it", func() {
		alice := uniq("alice")
		role := podAdmin(alice)
		ar := scoped(role, "default", getPods, pimv1.PermissionRule{Verbs: []string{"list", "get"}, APIGroups: []string{""}, Resources: []string{"secrets"}})
		err := as(alice, nil, nil).Create(ctx, ar)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("spec.permissions[1]"))
		Expect(err.Error()).To(ContainSubstring("ClusterRole " + role + " in namespace default does not allow list secrets"))
		Expect(err.Error()).NotTo(ContainSubstring("get secrets"))

		ar = scoped(role, "default", pimv1.PermissionRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}})
		err = as(alice, nil, nil).Create(ctx, ar)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("nonResourceURLs"))
	})

	It("is refused, at once, when its permissions break down into too many combinations", func() {
		alice := uniq("alice")
		role := podAdmin(alice)
		sixteen := func(p string) []string {
			out := make([]string, 16)
			for i := range out {
				out[i] = fmt.Sprintf("%s%d", p, i)
			}
			return out
		}
		wide := pimv1.PermissionRule{Verbs: sixteen("v"), APIGroups: sixteen("g"), Resources: sixteen("r"), ResourceNames: sixteen("n")}
		ps := make([]pimv1.PermissionRule, 16)
		for i := range ps {
			ps[i] = wide
		}
		ar := scoped(role, "default", ps...)
		start := time.Now()
		err := as(alice, nil, nil).Create(ctx, ar)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("combinations"))
		Expect(time.Since(start)).To(BeNumerically("<", 3*time.Second))
	})

	It("ends, and revokes, when the role no longer covers the subset", func() {
		alice := uniq("alice")
		role := podAdmin(alice)
		ar := scoped(role, "default", pimv1.PermissionRule{Verbs: []string{"get", "delete"}, APIGroups: []string{""}, Resources: []string{"pods"}})
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(canI(alice, nil, "delete", "pods", "default")).To(BeTrue())
		gen := generated(getActivation(ar))

		cr := &rbacv1.ClusterRole{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: role}, cr)).To(Succeed())
		cr.Rules[0].Verbs = []string{"get", "list"}
		Expect(k8s.Update(ctx, cr)).To(Succeed())

		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateFailed))
		got := getActivation(ar)
		Expect(got.Status.Message).To(ContainSubstring("the role no longer allows the reduced scope"))
		Expect(got.Status.Message).To(ContainSubstring("delete pods"))
		ready := findCondition(got.Status.Conditions, pimv1.ConditionReady)
		Expect(ready).NotTo(BeNil())
		Expect(ready.Reason).To(Equal(controllers.ReasonScopeNotCovered))
		Expect(canI(alice, nil, "delete", "pods", "default")).To(BeFalse())
		Expect(canI(alice, nil, "get", "pods", "default")).To(BeFalse())
		Eventually(gone(gen)).Should(BeTrue())
	})

	It("undoes an edit of the generated role, and a binding made to it grants nothing past the activation", func() {
		alice, mallory := uniq("alice"), uniq("mallory")
		role := podAdmin(alice)
		// alice may also create RoleBindings in default: RBAC lets her
		// bind the generated Role, whose permissions she holds while active.
		binder := uniq("binder")
		create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: binder, Namespace: "default"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"create"}}}})
		create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: binder, Namespace: "default"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: alice}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: binder}})
		ar := scoped(role, "default", getPods)
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		got := getActivation(ar)
		gen := generated(got)

		// Someone widens the generated Role: kubepim puts it back.
		Expect(k8s.Get(ctx, keyOf(gen), gen)).To(Succeed())
		gen.Rules = append(gen.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
		Expect(k8s.Update(ctx, gen)).To(Succeed())
		Eventually(func() []rbacv1.PolicyRule {
			_ = k8s.Get(ctx, keyOf(gen), gen)
			return gen.Rules
		}).Should(HaveLen(1))
		Eventually(func() bool { return canI(alice, nil, "get", "secrets", "default") }).Should(BeFalse())

		// alice binds the generated Role to mallory.
		copied := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: uniq("copy"), Namespace: "default"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: mallory}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: gen.Name}}
		Expect(as(alice, nil, nil).Create(ctx, copied)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, copied) })
		Eventually(func() bool { return canI(mallory, nil, "get", "pods", "default") }).Should(BeTrue())

		// At expiry the generated Role goes, and with it what the copy granted.
		fakeClock.SetTime(got.Status.ExpiresAt.Time)
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))
		Eventually(gone(gen)).Should(BeTrue())
		Eventually(func() bool { return canI(mallory, nil, "get", "pods", "default") }).Should(BeFalse())
		Expect(canI(alice, nil, "get", "pods", "default")).To(BeFalse())
	})

	It("removes, for a role governed in enforce mode, a binding someone makes to the generated role, and keeps the activation's own", func() {
		alice, mallory := uniq("alice"), uniq("mallory")
		role := podAdmin(alice)
		rs := roleSetting(uniq("enforcing"), role)
		rs.Spec.Alerts.RemoveOutsideBindings = ptr.To(true)
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())
		ar := scoped(role, "default", getPods)
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		got := getActivation(ar)

		// Someone who may create bindings binds the generated Role to mallory.
		copied := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: uniq("copy"), Namespace: "default"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: mallory}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: grant.ScopedRoleName(got)}}
		create(copied)
		Eventually(gone(copied)).Should(BeTrue())
		Expect(canI(mallory, nil, "get", "pods", "default")).To(BeFalse())
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(getSetting(rs).UID))) }).
			Should(ContainElement("OutsideBindingRemoved by kubepim:controller"))

		// The activation's own binding is kubepim's: it stays.
		Consistently(func() bool { return canI(alice, nil, "get", "pods", "default") }, "500ms").Should(BeTrue())
		Expect(activationState(ar)()).To(Equal(pimv1.ActivationStateActive))
	})

	// mallory may manage Roles and RoleBindings in default (a namespace
	// admin, say) but may not read pods: RBAC lets her bind only roles
	// whose rules she holds — an empty role, for one.
	roleManager := func(mallory string) {
		GinkgoHelper()
		name := uniq("role-manager")
		create(&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles", "rolebindings"}, Verbs: []string{"get", "create", "update", "delete"}}}})
		create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: mallory}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}})
	}
	bindTo := func(who, user, roleName string) *rbacv1.RoleBinding {
		GinkgoHelper()
		b := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: uniq("prebound"), Namespace: "default"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: roleName}}
		Expect(as(who, nil, nil).Create(ctx, b)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, b) })
		return b
	}

	It("never widens a role someone bound while it was narrower: a pre-made, empty, labelled role is refused", func() {
		alice, mallory := uniq("alice"), uniq("mallory")
		role := podAdmin(alice)
		roleManager(mallory)
		ar := scoped(role, "default", getPods)
		ar.Spec.StartTime = &metav1.Time{Time: fakeClock.Now().Add(time.Hour)}
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateScheduled))
		got := getActivation(ar)

		// While it waits, mallory makes "its" role with kubepim's labels
		// and no rules, and binds it to herself (nothing to escalate).
		forged := grant.ForScope(got).(*rbacv1.Role)
		forged.Rules = nil
		Expect(as(mallory, nil, nil).Create(ctx, forged)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, forged) })
		bindTo(mallory, mallory, forged.Name)

		fakeClock.SetTime(got.Status.ActivatedAt.Time)
		Eventually(activationState(ar)).ShouldNot(Equal(pimv1.ActivationStateScheduled))
		Consistently(func() bool { return canI(mallory, nil, "get", "pods", "default") }, "2s").Should(BeFalse(), "mallory got alice's scope")
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateFailed))
		Expect(getActivation(ar).Status.Message).To(ContainSubstring(forged.Name))
		Expect(canI(mallory, nil, "get", "pods", "default")).To(BeFalse())
		Expect(canI(alice, nil, "get", "pods", "default")).To(BeFalse())
		Consistently(func() bool { return canI(mallory, nil, "get", "pods", "default") }, "500ms").Should(BeFalse())
	})

	It("never creates its role under a name a binding already refers to", func() {
		alice, mallory := uniq("alice"), uniq("mallory")
		role := podAdmin(alice)
		roleManager(mallory)
		ar := scoped(role, "default", getPods)
		ar.Spec.StartTime = &metav1.Time{Time: fakeClock.Now().Add(time.Hour)}
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateScheduled))
		got := getActivation(ar)

		// mallory makes an empty role of the generated name, binds it to
		// herself, and deletes the role: her binding waits for the name.
		empty := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: grant.ScopedRoleName(got), Namespace: "default"}}
		Expect(as(mallory, nil, nil).Create(ctx, empty)).To(Succeed())
		bindTo(mallory, mallory, empty.Name)
		Expect(as(mallory, nil, nil).Delete(ctx, empty)).To(Succeed())

		fakeClock.SetTime(got.Status.ActivatedAt.Time)
		Eventually(activationState(ar)).ShouldNot(Equal(pimv1.ActivationStateScheduled))
		Consistently(func() bool { return canI(mallory, nil, "get", "pods", "default") }, "2s").Should(BeFalse(), "mallory got alice's scope")
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateFailed))
		Expect(getActivation(ar).Status.Message).To(ContainSubstring("already refer"))
		Expect(canI(mallory, nil, "get", "pods", "default")).To(BeFalse())
		Eventually(gone(generated(got))).Should(BeTrue())
	})

	It("ends, rather than restores, when its role is narrowed or deleted (a restore would widen what others bound)", func() {
		alice, mallory := uniq("alice"), uniq("mallory")
		role := podAdmin(alice)
		roleManager(mallory)
		for _, how := range []string{"narrow", "delete"} {
			ar := scoped(role, "default", getPods)
			Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
			gen := generated(getActivation(ar))
			Expect(k8s.Get(ctx, keyOf(gen), gen)).To(Succeed())
			if how == "narrow" {
				gen.Rules = nil
				Expect(as(mallory, nil, nil).Update(ctx, gen)).To(Succeed())
			} else {
				Expect(as(mallory, nil, nil).Delete(ctx, gen)).To(Succeed())
			}
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateFailed), how)
			Expect(getActivation(ar).Status.Message).To(ContainSubstring("generated"), how)
			Eventually(gone(gen)).Should(BeTrue(), how)
			Expect(canI(alice, nil, "get", "pods", "default")).To(BeFalse(), how)
		}
	})

	It("never binds a generated-looking role it did not write as it stands", func() {
		alice := uniq("alice")
		role := podAdmin(alice)
		ar := scoped(role, "default", getPods)
		ar.Spec.StartTime = &metav1.Time{Time: fakeClock.Now().Add(time.Hour)}
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateScheduled))
		got := getActivation(ar)

		// Before it starts, someone makes "its" role: kubepim's labels,
		// an owner reference to the request, and more rules.
		forged := grant.ForScope(got).(*rbacv1.Role)
		forged.Rules = append(forged.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
		create(forged)

		fakeClock.SetTime(got.Status.ActivatedAt.Time)
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(canI(alice, nil, "get", "pods", "default")).To(BeTrue())
		Expect(canI(alice, nil, "get", "secrets", "default")).To(BeFalse())
		gen := generated(got)
		Expect(k8s.Get(ctx, keyOf(gen), gen)).To(Succeed())
		Expect(gen.Rules).To(HaveLen(1))
	})
})

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
