package controllers_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// alertsOf returns the alert summary of a RoleSetting.
func alertsOf(rs *pimv1.RoleSetting) func() string {
	return func() string {
		got := &pimv1.RoleSetting{}
		if err := k8s.Get(context.Background(), keyOf(rs), got); err != nil {
			return err.Error()
		}
		return got.Status.AlertSummary
	}
}

// outsideBinding binds user to role the plain RBAC way, past kubepim.
func outsideBinding(role, user string) *rbacv1.ClusterRoleBinding {
	GinkgoHelper()
	b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: uniq("outside")},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
	create(b)
	return b
}

var _ = Describe("Security alerts", func() {
	ctx := context.Background()

	It("raises AssignedOutsidePIM for a binding made past kubepim, and clears it when it goes", func() {
		role := uniq("governed")
		clusterRoleFor(role, "pods", "get")
		rs := roleSetting(uniq("watched"), role)
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())
		Expect(alertsOf(rs)()).To(BeEmpty())

		b := outsideBinding(role, "sneaky")
		fakeClock.Step(5 * time.Minute) // the periodic pass
		Eventually(alertsOf(rs)).Should(Equal(pimv1.AlertAssignedOutsidePIM))
		Eventually(func() []string { return warningReasons(rs) }).Should(ContainElement(pimv1.AlertAssignedOutsidePIM))
		got := &pimv1.RoleSetting{}
		Expect(k8s.Get(ctx, keyOf(rs), got)).To(Succeed())
		Expect(got.Status.Alerts[0].Message).To(ContainSubstring("ClusterRoleBinding " + b.Name))
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(rs.UID))) }).
			Should(ContainElement("AlertRaised by kubepim:controller"))

		Expect(k8s.Delete(ctx, b)).To(Succeed())
		fakeClock.Step(5 * time.Minute)
		Eventually(alertsOf(rs)).Should(BeEmpty())
	})

	It("removes outside bindings in enforce mode, recording each", func() {
		role := uniq("enforced")
		clusterRoleFor(role, "pods", "get")
		b := outsideBinding(role, "sneaky")
		Eventually(func() bool { return canI("sneaky", nil, "get", "pods", "default") }).Should(BeTrue())
		rs := roleSetting(uniq("enforcing"), role)
		rs.Spec.Alerts.RemoveOutsideBindings = ptr.To(true)
		create(rs)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(b), &rbacv1.ClusterRoleBinding{}))
		}).Should(BeTrue())
		Expect(canI("sneaky", nil, "get", "pods", "default")).To(BeFalse())
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(getSetting(rs).UID))) }).
			Should(ContainElement("OutsideBindingRemoved by kubepim:controller"))
		Expect(alertsOf(rs)()).NotTo(ContainSubstring(pimv1.AlertAssignedOutsidePIM))
	})

	It("raises RoleNotRequiringMFA for a wildcard role, until MFA is required", func() {
		role := uniq("wildcard")
		clusterRoleFor(role, "secrets", "*")
		rs := roleSetting(uniq("no-mfa"), role)
		create(rs)
		Eventually(alertsOf(rs)).Should(Equal(pimv1.AlertRoleNotRequiringMFA))
		got := getSetting(rs)
		patch := client.MergeFrom(got.DeepCopy())
		got.Spec.Activation.RequireMFA = true
		Expect(k8s.Patch(ctx, got, patch)).To(Succeed())
		Eventually(alertsOf(rs)).Should(BeEmpty())
	})

	It("raises TooManyPermanentActive past the threshold", func() {
		role := uniq("standing")
		clusterRoleFor(role, "configmaps", "get")
		rs := roleSetting(uniq("threshold"), role)
		rs.Spec.Alerts.MaxPermanentActive = ptr.To[int32](1)
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())
		for _, u := range []string{"one", "two"} {
			ra := assignment(uniq("permanent"), u, role, pimv1.AssignmentActive, nil, nil)
			create(ra)
		}
		fakeClock.Step(5 * time.Minute)
		Eventually(alertsOf(rs)).Should(Equal(pimv1.AlertTooManyPermanentActive))
	})
})

func getSetting(rs *pimv1.RoleSetting) *pimv1.RoleSetting {
	GinkgoHelper()
	got := &pimv1.RoleSetting{}
	Expect(k8s.Get(context.Background(), keyOf(rs), got)).To(Succeed())
	return got
}
