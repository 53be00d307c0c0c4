package controllers_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var seq int

// uniq returns a name no other spec uses.
func uniq(prefix string) string {
	seq++
	return fmt.Sprintf("%s-%d", prefix, seq)
}

func assignment(name, user, role string, typ string, start, end *time.Time) *pimv1.RoleAssignment {
	ra := &pimv1.RoleAssignment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: user},
			RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role},
			Type:    typ,
		},
	}
	if start != nil {
		ra.Spec.StartTime = &metav1.Time{Time: *start}
	}
	if end != nil {
		ra.Spec.EndTime = &metav1.Time{Time: *end}
	}
	return ra
}

func create(obj client.Object) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), obj)).To(Succeed())
	DeferCleanup(func() { _ = k8s.Delete(context.Background(), obj) })
}

func stateOf(ra *pimv1.RoleAssignment) func() pimv1.AssignmentState {
	return func() pimv1.AssignmentState {
		got := &pimv1.RoleAssignment{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(ra), got); err != nil {
			return pimv1.AssignmentState(err.Error())
		}
		return got.Status.State
	}
}

func in(d time.Duration) *time.Time {
	t := fakeClock.Now().Add(d)
	return &t
}

// managedBindingsOf lists the ClusterRoleBindings kubepim keeps for an owner.
func managedBindingsOf(ownerName string) []rbacv1.ClusterRoleBinding {
	GinkgoHelper()
	var list rbacv1.ClusterRoleBindingList
	Expect(k8s.List(context.Background(), &list, client.MatchingLabels{pimv1.LabelManagedBy: pimv1.ManagedByValue})).To(Succeed())
	var out []rbacv1.ClusterRoleBinding
	for _, b := range list.Items {
		if b.Annotations[pimv1.AnnotationOwnerName] == ownerName {
			out = append(out, b)
		}
	}
	return out
}

var _ = Describe("RoleAssignment", func() {
	ctx := context.Background()

	Describe("an Active assignment", func() {
		It("grants at startTime and revokes at endTime as the clock moves", func() {
			user, role := uniq("alice"), uniq("pod-reader")
			clusterRoleFor(role, "pods", "get", "list")
			ra := assignment(uniq("active"), user, role, pimv1.AssignmentActive, in(time.Hour), in(3*time.Hour))
			create(ra)

			Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateScheduled))
			Expect(canI(user, nil, "list", "pods", "default")).To(BeFalse())
			Consistently(func() []rbacv1.ClusterRoleBinding { return managedBindingsOf(ra.Name) }, "300ms").Should(BeEmpty())

			fakeClock.Step(time.Hour)
			Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateActive))
			Eventually(func() bool { return canI(user, nil, "list", "pods", "default") }).Should(BeTrue())
			Expect(canI(user, nil, "delete", "pods", "default")).To(BeFalse(), "only what the role grants")

			fakeClock.Step(2*time.Hour - time.Second)
			Consistently(func() bool { return canI(user, nil, "list", "pods", "default") }, "300ms").Should(BeTrue(), "still in force a second before endTime")

			fakeClock.Step(time.Second)
			Eventually(func() bool { return canI(user, nil, "list", "pods", "default") }).Should(BeFalse())
			Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateExpired))
			Expect(managedBindingsOf(ra.Name)).To(BeEmpty())

			got := &pimv1.RoleAssignment{}
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ra), got)).To(Succeed())
			Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			Expect(meta.IsStatusConditionFalse(got.Status.Conditions, pimv1.ConditionGranted)).To(BeTrue())
			Expect(got.Status.Binding).To(BeNil())
		})

		It("binds in a namespace with a RoleBinding, and nowhere else", func() {
			user, role := uniq("bob"), uniq("secret-reader")
			clusterRoleFor(role, "secrets", "get")
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: uniq("team")}}
			create(ns)
			ra := assignment(uniq("ns-active"), user, role, pimv1.AssignmentActive, nil, in(time.Hour))
			ra.Spec.Namespace = ns.Name
			create(ra)

			Eventually(func() bool { return canI(user, nil, "get", "secrets", ns.Name) }).Should(BeTrue())
			Expect(canI(user, nil, "get", "secrets", "default")).To(BeFalse())
			got := &pimv1.RoleAssignment{}
			Eventually(func() *pimv1.BindingReference {
				_ = k8s.Get(ctx, client.ObjectKeyFromObject(ra), got)
				return got.Status.Binding
			}).ShouldNot(BeNil())
			Expect(got.Status.Binding.Kind).To(Equal("RoleBinding"))
			Expect(got.Status.Binding.Namespace).To(Equal(ns.Name))
		})

		It("grants a Group and a ServiceAccount", func() {
			group, role := uniq("sre"), uniq("cm-reader")
			clusterRoleFor(role, "configmaps", "get")
			ra := assignment(uniq("group"), "", role, pimv1.AssignmentActive, nil, in(time.Hour))
			ra.Spec.Subject = pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: group}
			create(ra)
			Eventually(func() bool { return canI("carol", []string{group}, "get", "configmaps", "default") }).Should(BeTrue())
			Expect(canI("carol", []string{"other"}, "get", "configmaps", "default")).To(BeFalse())

			sa := assignment(uniq("sa"), "", role, pimv1.AssignmentActive, nil, in(time.Hour))
			sa.Spec.Subject = pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Name: "deployer", Namespace: "default"}
			create(sa)
			Eventually(func() bool {
				return canI("system:serviceaccount:default:deployer", nil, "get", "configmaps", "default")
			}).Should(BeTrue())
		})

		It("removes access when the assignment is deleted", func() {
			user, role := uniq("dave"), uniq("node-reader")
			clusterRoleFor(role, "nodes", "get")
			ra := assignment(uniq("deleted"), user, role, pimv1.AssignmentActive, nil, nil)
			create(ra)
			Eventually(func() bool { return canI(user, nil, "get", "nodes", "") }).Should(BeTrue())
			Expect(k8s.Delete(ctx, ra)).To(Succeed())
			Eventually(func() bool { return canI(user, nil, "get", "nodes", "") }).Should(BeFalse())
			Expect(managedBindingsOf(ra.Name)).To(BeEmpty())
		})
	})

	It("grants nothing for an Eligible assignment", func() {
		user, role := uniq("erin"), uniq("pod-admin")
		clusterRoleFor(role, "pods", "*")
		ra := assignment(uniq("eligible"), user, role, pimv1.AssignmentEligible, nil, in(time.Hour))
		create(ra)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))
		Consistently(func() bool { return canI(user, nil, "get", "pods", "default") }, "500ms").Should(BeFalse())
		Expect(managedBindingsOf(ra.Name)).To(BeEmpty())
		fakeClock.Step(time.Hour)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateExpired))
	})

	Describe("drift", func() {
		var ra *pimv1.RoleAssignment
		var user string
		BeforeEach(func() {
			var role string
			user, role = uniq("frank"), uniq("svc-reader")
			clusterRoleFor(role, "services", "get")
			ra = assignment(uniq("drift"), user, role, pimv1.AssignmentActive, nil, in(time.Hour))
			create(ra)
			Eventually(func() bool { return canI(user, nil, "get", "services", "") }).Should(BeTrue())
		})

		It("puts back a binding someone deleted", func() {
			b := managedBindingsOf(ra.Name)
			Expect(b).To(HaveLen(1))
			Expect(k8s.Delete(ctx, &b[0])).To(Succeed())
			Eventually(func() []rbacv1.ClusterRoleBinding { return managedBindingsOf(ra.Name) }).Should(HaveLen(1))
			Expect(managedBindingsOf(ra.Name)[0].UID).NotTo(Equal(b[0].UID))
			Eventually(func() bool { return canI(user, nil, "get", "services", "") }).Should(BeTrue())
		})

		It("undoes an edit of the binding's subjects", func() {
			b := managedBindingsOf(ra.Name)[0]
			b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"})
			Expect(k8s.Update(ctx, &b)).To(Succeed())
			Eventually(func() []rbacv1.Subject { return managedBindingsOf(ra.Name)[0].Subjects }).Should(HaveLen(1))
			// The authorizer learns of the repaired binding by its own watch.
			Eventually(func() bool { return canI("mallory", nil, "get", "services", "") }).Should(BeFalse())
		})

		It("repairs a binding whose managed-by label was removed", func() {
			b := managedBindingsOf(ra.Name)[0]
			delete(b.Labels, pimv1.LabelManagedBy)
			b.Subjects = append(b.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"})
			Expect(k8s.Update(ctx, &b)).To(Succeed())
			Eventually(func() []rbacv1.Subject {
				bs := managedBindingsOf(ra.Name)
				if len(bs) != 1 {
					return nil
				}
				return bs[0].Subjects
			}).Should(HaveLen(1))
		})
	})

	It("removes a managed binding whose owner does not exist", func() {
		role := uniq("orphan-role")
		clusterRoleFor(role, "pods", "get")
		orphan := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{
				Name: uniq("kubepim-ra-orphan"),
				Labels: map[string]string{
					pimv1.LabelManagedBy: pimv1.ManagedByValue,
					pimv1.LabelOwnerKind: "RoleAssignment",
				},
				Annotations: map[string]string{pimv1.AnnotationOwnerName: uniq("no-such-assignment")},
			},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "ghost"}},
		}
		Expect(k8s.Create(ctx, orphan)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(orphan), &rbacv1.ClusterRoleBinding{}))
		}).Should(BeTrue())
	})

	It("never takes over a binding it does not manage", func() {
		user, role := uniq("gina"), uniq("ep-reader")
		clusterRoleFor(role, "endpoints", "get")
		name := uniq("taken")
		squatter := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "kubepim-ra-" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "someone-else"}},
		}
		create(squatter)
		ra := assignment(name, user, role, pimv1.AssignmentActive, nil, in(time.Hour))
		create(ra)
		Eventually(func() string {
			got := &pimv1.RoleAssignment{}
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(ra), got)
			if c := meta.FindStatusCondition(got.Status.Conditions, pimv1.ConditionReady); c != nil {
				return c.Reason
			}
			return ""
		}).Should(Equal(pimv1.ReasonBindingConflict))
		Expect(canI(user, nil, "get", "endpoints", "")).To(BeFalse())
		kept := &rbacv1.ClusterRoleBinding{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(squatter), kept)).To(Succeed())
		Expect(kept.Subjects).To(Equal(squatter.Subjects))
	})

	It("revokes at once what became overdue while the manager was down", func() {
		user, role := uniq("hank"), uniq("ns-reader")
		clusterRoleFor(role, "namespaces", "get")
		ra := assignment(uniq("restart"), user, role, pimv1.AssignmentActive, nil, in(2*time.Hour))
		create(ra)
		Eventually(func() bool { return canI(user, nil, "get", "namespaces", "") }).Should(BeTrue())

		stopMgr()
		fakeClock.Step(3 * time.Hour)
		Expect(canI(user, nil, "get", "namespaces", "")).To(BeTrue(), "nobody revokes while the manager is down")
		stopMgr = startManager(fakeClock)
		Eventually(func() bool { return canI(user, nil, "get", "namespaces", "") }).Should(BeFalse())
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateExpired))
	})

	Describe("on the real clock", Ordered, func() {
		BeforeAll(func() {
			stopMgr()
			stopMgr = startManager(clock.RealClock{})
			DeferCleanup(func() {
				stopMgr()
				stopMgr = startManager(fakeClock)
			})
		})

		It("revokes within a second of endTime", func() {
			user, role := uniq("ivan"), uniq("lag-reader")
			clusterRoleFor(role, "pods", "get")
			// Whole seconds: that is all an endTime keeps.
			end := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
			ra := assignment(uniq("lag"), user, role, pimv1.AssignmentActive, nil, &end)
			create(ra)
			Eventually(func() bool { return canI(user, nil, "get", "pods", "") }).Should(BeTrue())

			Eventually(func() bool { return canI(user, nil, "get", "pods", "") }).
				WithTimeout(10 * time.Second).WithPolling(10 * time.Millisecond).Should(BeFalse())
			lag := time.Since(end)
			AddReportEntry("revoke lag", lag.String())
			GinkgoWriter.Printf("revoke lag after endTime: %v\n", lag)
			Expect(lag).To(BeNumerically(">=", 0), "access must last until endTime")
			Expect(lag).To(BeNumerically("<", time.Second))
		})
	})
})
