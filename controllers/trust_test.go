package controllers_test

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
	"github.com/kubepim/kubepim/test/kubepimtest"
)

// Trust boundaries, tried as the hostile user: each spec acts as a user
// holding only the roles kubepim ships (kubepim-requester is bound to
// every authenticated user by the suite) plus what the spec says.
var _ = Describe("Trust boundaries", func() {
	ctx := context.Background()

	// bindAs binds a shipped ClusterRole to a user for this spec.
	bindAs := func(clusterRole, name string) {
		GinkgoHelper()
		remove, err := env.Bind(clusterRole, rbacv1.UserKind, name)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(remove)
	}

	Describe("a binding forged to carry an activation's timing", func() {
		var mallory, ns, role string
		var ar *pimv1.ActivationRequest

		// A namespace admin: may create RoleBindings in her namespace, and
		// holds an empty Role there (binding it needs no other power).
		BeforeEach(func() {
			mallory, ns = uniq("mallory"), uniq("mallory-ns")
			Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
			Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: ns}})).To(Succeed())
			Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "binder", Namespace: ns},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"create", "get", "list"}}}})).To(Succeed())
			Expect(k8s.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "mallory-binds", Namespace: ns},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "binder"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: mallory}}})).To(Succeed())
			Eventually(func() bool {
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: mallory,
					ResourceAttributes: &authorizationv1.ResourceAttributes{Group: rbacv1.GroupName, Resource: "rolebindings", Verb: "create", Namespace: ns}}}
				Expect(k8s.Create(ctx, sar)).To(Succeed())
				return sar.Status.Allowed
			}).Should(BeTrue())

			role, _ = eligibleFor(user(mallory), nil)
			rs := roleSetting(uniq("forge"), role)
			rs.Spec.Activation.MaxDuration = metav1.Duration{Duration: time.Hour}
			rs.Spec.Activation.Approval = pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: 24 * time.Hour},
				Approvers: []pimv1.Principal{{Kind: "User", Name: "bob"}}}
			create(rs)
			Eventually(settingObserved(rs)).Should(BeTrue())
		})

		// forge creates, as mallory, a RoleBinding in her namespace dressed
		// up as the grant of ar, expiring in 2099.
		forge := func(name string, extra map[string]string) *rbacv1.RoleBinding {
			GinkgoHelper()
			annotations := map[string]string{
				pimv1.AnnotationOwnerName:       ar.Name,
				pimv1.AnnotationActivatedAt:     fakeClock.Now().UTC().Format(time.RFC3339),
				pimv1.AnnotationExpiresAt:       "2099-01-01T00:00:00Z",
				pimv1.AnnotationTimingSignature: "c2lnbmVkIGJ5IG1hbGxvcnk=",
			}
			for k, v := range extra {
				annotations[k] = v
			}
			rb := &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
					Labels: map[string]string{pimv1.LabelManagedBy: pimv1.ManagedByValue, pimv1.LabelOwnerKind: "ActivationRequest",
						pimv1.LabelOwnerUID: string(getActivation(ar).UID)},
					Annotations: annotations},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "empty"},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: mallory}},
			}
			Expect(as(mallory, nil, nil).Create(ctx, rb)).To(Succeed())
			return rb
		}

		// approveAndCheck has bob approve, then checks that the activation
		// lasts the 10 minutes asked (no less, and no more than rounding to
		// the second adds), on the request and on the
		// real binding, and ends then.
		approveAndCheck := func() {
			GinkgoHelper()
			Expect(annotate(as("bob", nil, nil), ar, pimv1.AnnotationApprove, "ok")).To(Succeed())
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
			got := getActivation(ar)
			heldFor(got, 10*time.Minute)
			Expect(got.Status.ExpiresAt.Year()).NotTo(Equal(2099))
			ref := got.Status.Binding
			Expect(ref).NotTo(BeNil())
			var granted client.Object = &rbacv1.ClusterRoleBinding{}
			if ref.Kind == "RoleBinding" {
				granted = &rbacv1.RoleBinding{}
			}
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, granted)).To(Succeed())
			Expect(granted.GetAnnotations()[pimv1.AnnotationExpiresAt]).To(Equal(got.Status.ExpiresAt.UTC().Format(time.RFC3339)))

			fakeClock.Step(10 * time.Minute)
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))
			Eventually(func() bool { return canI(mallory, nil, "list", "pods", ns) }).Should(BeFalse())
		}

		It("in another namespace does not lengthen the activation, and is removed", func() {
			ar = activation(uniq("stretch"), role, 10*time.Minute, "INC-1")
			Expect(as(mallory, nil, nil).Create(ctx, ar)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStatePendingApproval))
			forged := forge("kubepim-ar-"+ar.Name, nil)

			approveAndCheck()
			Eventually(func() error { return k8s.Get(ctx, keyOf(forged), &rbacv1.RoleBinding{}) }).Should(MatchError(ContainSubstring("not found")),
				"a binding that claims to be the request's grant but is not the one kubepim wants is revoked")
		})

		It("under the grant's own name and namespace does not lengthen it either: the timing is not kubepim's signature", func() {
			ar = activation(uniq("stretch"), role, 10*time.Minute, "INC-2")
			ar.Spec.Namespace = ns // the grant is then RoleBinding kubepim-ar-<name> in ns
			Expect(as(mallory, nil, nil).Create(ctx, ar)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStatePendingApproval))
			forge("kubepim-ar-"+ar.Name, nil)

			approveAndCheck()
			Expect(warningReasons(getActivation(ar))).To(ContainElement("ForgedTiming"))
		})
	})

	Describe("a running AccessReview", func() {
		var mallory, dana, pam, role string
		var rev *pimv1.AccessReview
		var mine, other *pimv1.RoleAssignment

		BeforeEach(func() {
			mallory, dana, pam = uniq("mallory"), uniq("dana"), uniq("pam")
			bindAs(kubepimtest.RoleAdmin, pam) // a PIM administrator
			role = uniq("reviewed")
			clusterRoleFor(role, "pods", "get")
			mine = assignment(uniq("mine"), mallory, role, pimv1.AssignmentEligible, nil, nil)
			other = assignment(uniq("other"), uniq("victim"), role, pimv1.AssignmentEligible, nil, nil)
			create(mine)
			create(other)
			rev = review(uniq("quarterly"), role, func(s *pimv1.AccessReviewSpec) {
				s.Reviewers = []pimv1.Principal{{Kind: "User", Name: dana}}
				s.Duration = metav1.Duration{Duration: 24 * time.Hour}
			})
			Expect(as(pam, nil, nil).Create(ctx, rev)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, rev) })
			Eventually(reviewState(rev)).Should(Equal(pimv1.ReviewStateInProgress))
		})

		// change patches the review as c after mutate.
		change := func(c client.Client, mutate func(*pimv1.AccessReview)) error {
			got := getReview(rev)
			patch := client.MergeFrom(got.DeepCopy())
			mutate(got)
			return c.Patch(ctx, got, patch)
		}

		It("cannot be rewritten by an assignee with the shipped requester role", func() {
			attacker := as(mallory, nil, nil)
			for what, mutate := range map[string]func(*pimv1.AccessReview){
				"name herself reviewer": func(r *pimv1.AccessReview) {
					r.Spec.Reviewers = append(r.Spec.Reviewers, pimv1.Principal{Kind: "User", Name: mallory})
				},
				"switch to self-review": func(r *pimv1.AccessReview) { r.Spec.ReviewerType = pimv1.ReviewerTypeSelf },
				"close it at once with default Deny": func(r *pimv1.AccessReview) {
					r.Spec.Duration = metav1.Duration{Duration: time.Second}
					r.Spec.Settings.DefaultDecision = pimv1.ReviewDecisionDeny
				},
				"narrow its scope": func(r *pimv1.AccessReview) { r.Spec.Scope.Namespaces = []string{"nowhere"} },
				"have it garbage-collected": func(r *pimv1.AccessReview) {
					r.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: "gone", UID: "00000000-0000-0000-0000-000000000000"}}
				},
				"block its deletion": func(r *pimv1.AccessReview) { r.Finalizers = append(r.Finalizers, "example.com/hold") },
				"forge decision records": func(r *pimv1.AccessReview) {
					r.Annotations[pimv1.AnnotationReviewDecisions] = `[{"record":{"seq":99,"instance":1,"item":"x","reviewer":{"username":"dana"},"decision":"Deny","time":"2026-01-01T00:00:00Z"},"signature":"AAAA"}]`
				},
				"decide the old way, on the review": func(r *pimv1.AccessReview) {
					r.Annotations[pimv1.AnnotationReviewDecisionPrefix+policy.ReviewItemID(string(getAssignment(other).UID))] = "Deny: x"
				},
			} {
				Expect(change(attacker, mutate)).To(MatchError(Or(ContainSubstring("needs the verb \"manage\""), ContainSubstring("written by kubepim alone"),
					ContainSubstring("decisions are made on the review's items now"))), what)
			}
			// A forged changer is put back by the mutating webhook.
			_ = change(attacker, func(r *pimv1.AccessReview) { r.Annotations[pimv1.AnnotationChangedBy] = mallory })
			got := getReview(rev)
			Expect(got.Spec.Reviewers).To(Equal([]pimv1.Principal{{Kind: "User", Name: dana}}))
			Expect(got.Spec.Duration.Duration).To(Equal(24 * time.Hour))
			Expect(got.Annotations[pimv1.AnnotationChangedBy]).To(Equal(pam))

			By("deciding on others is still refused, and the named reviewer still decides with patch alone")
			Expect(decide(attacker, rev, other, "Deny: not needed")).To(MatchError(ContainSubstring("not a reviewer")))
			Expect(decide(as(dana, nil, nil), rev, other, "Approve: needed")).To(Succeed())
		})

		It("keeps its items kubepim's: no forged item, status, record or metadata from an assignee", func() {
			attacker := as(mallory, nil, nil)
			theirs := getItem(rev, other)
			By("creating an item for someone else's assignment, denied")
			forged := &pimv1.AccessReviewItem{ObjectMeta: metav1.ObjectMeta{Name: uniq("forged")}, Spec: theirs.Spec}
			Expect(attacker.Create(ctx, forged)).To(MatchError(ContainSubstring("forbidden")))
			By("even a PIM administrator (all verbs on kubepim.io) cannot create an item or write its decision")
			Expect(as(pam, nil, nil).Create(ctx, forged.DeepCopy())).To(MatchError(ContainSubstring("AccessReviewItems are created by kubepim")))
			denied := theirs.DeepCopy()
			denied.Status.Decision, denied.Status.Reviewer = pimv1.ReviewDecisionDeny, dana
			Expect(as(pam, nil, nil).Status().Update(ctx, denied)).To(MatchError(ContainSubstring("may not write it")))
			Expect(attacker.Status().Update(ctx, denied.DeepCopy())).To(MatchError(ContainSubstring("forbidden")))
			By("deleting an item, so that the review no longer removes that assignment")
			Expect(as(pam, nil, nil).Delete(ctx, getItem(rev, mine))).To(MatchError(ContainSubstring("may not delete one")))
			Expect(attacker.Delete(ctx, getItem(rev, mine))).To(MatchError(ContainSubstring("forbidden")))
			By("changing its spec, metadata or records")
			for what, mutate := range map[string]func(*pimv1.AccessReviewItem){
				"point it at another assignment": func(i *pimv1.AccessReviewItem) { i.Spec.Assignment = mine.Name },
				"have it garbage-collected": func(i *pimv1.AccessReviewItem) {
					i.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Namespace", Name: "gone", UID: "00000000-0000-0000-0000-000000000000"}}
				},
				"block its deletion": func(i *pimv1.AccessReviewItem) { i.Finalizers = append(i.Finalizers, "example.com/hold") },
				"forge a decision record": func(i *pimv1.AccessReviewItem) {
					i.Annotations = map[string]string{pimv1.AnnotationReviewDecisions: `[{"record":{"seq":1,"instance":1,"item":"` + i.Spec.ID + `","reviewer":{"username":"` + dana + `"},"decision":"Deny","time":"2026-01-01T00:00:00Z"},"signature":"AAAA"}]`}
				},
			} {
				got := getItem(rev, other)
				patch := client.MergeFrom(got.DeepCopy())
				mutate(got)
				Expect(attacker.Patch(ctx, got, patch)).To(MatchError(Or(ContainSubstring("needs the verb \"manage\""), ContainSubstring("written by kubepim alone"),
					ContainSubstring("never changes"))), what)
			}
			Expect(getItem(rev, other).Status.Decision).To(BeEmpty())
		})

		It("cannot be created by a requester, nor with autoApply by a manager who may not remove assignments", func() {
			own := review(uniq("mine"), role, func(s *pimv1.AccessReviewSpec) {
				s.Reviewers = []pimv1.Principal{{Kind: "User", Name: mallory}}
				s.Settings.DefaultDecision = pimv1.ReviewDecisionDeny
			})
			Expect(as(mallory, nil, nil).Create(ctx, own)).To(MatchError(ContainSubstring("forbidden")))

			// Even with create on accessreviews (RBAC) and the manage verb,
			// removing assignments needs delete on roleassignments.
			gitops := uniq("gitops")
			grantUser(gitops, rbacv1.PolicyRule{APIGroups: []string{"kubepim.io"}, Resources: []string{"accessreviews"}, Verbs: []string{"create", "update", "patch", "get", "manage"}})
			Eventually(func() bool { return canIIn(gitops, "kubepim.io", "manage", "accessreviews") }).Should(BeTrue())
			Expect(as(gitops, nil, nil).Create(ctx, own.DeepCopy())).To(MatchError(ContainSubstring(`needs the verb "delete" on roleassignments.kubepim.io`)))
			noApply := own.DeepCopy()
			noApply.Spec.Settings.AutoApply = ptr.To(false)
			Expect(as(gitops, nil, nil).Create(ctx, noApply)).To(Succeed())
			DeferCleanup(func() { _ = k8s.Delete(ctx, noApply) })

			// With create alone (no manage), nothing.
			creator := uniq("creator")
			grantUser(creator, rbacv1.PolicyRule{APIGroups: []string{"kubepim.io"}, Resources: []string{"accessreviews"}, Verbs: []string{"create"}})
			Eventually(func() bool { return canIIn(creator, "kubepim.io", "create", "accessreviews") }).Should(BeTrue())
			another := review(uniq("another"), role, func(s *pimv1.AccessReviewSpec) { s.Reviewers = []pimv1.Principal{{Kind: "User", Name: creator}} })
			another.Spec.Settings.AutoApply = ptr.To(false)
			Expect(as(creator, nil, nil).Create(ctx, another)).To(MatchError(ContainSubstring(`needs the verb "manage"`)))
		})

		It("records who created and who changed it, and a change by an administrator stands", func() {
			Eventually(func() []string { return actionsAndActors(eventsAbout(string(getReview(rev).UID))) }).
				Should(ContainElement(pimv1.AuditReviewCreated + " by " + pam))
			created := eventsAbout(string(getReview(rev).UID))[0]
			Expect(created.Spec.Details).To(HaveKeyWithValue("autoApply", "true"))
			Expect(created.Spec.Details).To(HaveKeyWithValue("reviewers", "User "+dana))
			Expect(change(as(pam, nil, nil), func(r *pimv1.AccessReview) { r.Spec.Duration = metav1.Duration{Duration: 48 * time.Hour} })).To(Succeed())
			Eventually(func() []string { return actionsAndActors(eventsAbout(string(getReview(rev).UID))) }).
				Should(ContainElement(pimv1.AuditReviewChanged + " by " + pam))
			Expect(getReview(rev).Annotations[pimv1.AnnotationChangedBy]).To(Equal(pam))
		})

		It("refuses a reason long enough to crowd other reviewers out, and decisions after the instance closed", func() {
			huge := "Approve: " + strings.Repeat("a", 200<<10)
			Expect(decide(as(dana, nil, nil), rev, other, huge)).To(MatchError(ContainSubstring("keep it to 1024")))
			Expect(decide(as(dana, []string{"everyone", "leads"}, nil), rev, other, "Approve: fine")).To(Succeed())
			Eventually(func() string { return getItem(rev, other).Status.DecidedVia }).Should(Equal("User " + dana))
			uid := string(getReview(rev).UID)
			Eventually(func() []string { return actionsAndActors(eventsAbout(uid)) }).Should(ContainElement(pimv1.AuditReviewDecision + " by " + dana))
			for _, ev := range eventsAbout(uid) {
				if ev.Spec.Action == pimv1.AuditReviewDecision {
					Expect(ev.Spec.Actor.Groups).To(BeEmpty(), "the record keeps only the groups through which the reviewer decides")
				}
			}

			// Once the instance is due a decision is refused, whether or not
			// kubepim has closed it yet (internal tests of the webhook pin
			// the first case).
			fakeClock.Step(24 * time.Hour)
			Expect(decide(as(dana, nil, nil), rev, other, "Deny: too late")).To(MatchError(Or(
				ContainSubstring("decisions are no longer taken"), ContainSubstring("nothing to decide"))))
		})

		It("records two decisions by one reviewer within one second, both, in order", func() {
			key := other
			Expect(decide(as(dana, nil, nil), rev, key, "Approve: first look")).To(Succeed())
			Expect(decide(as(dana, nil, nil), rev, key, "Deny: on second thought")).To(Succeed())
			uid := string(getReview(rev).UID)
			decisions := func() []string {
				var out []string
				for _, ev := range eventsAbout(uid) {
					if ev.Spec.Action == pimv1.AuditReviewDecision {
						out = append(out, ev.Spec.Reason)
					}
				}
				return out
			}
			Eventually(decisions).Should(Equal([]string{"Approve: first look", "Deny: on second thought"}))
			Eventually(func() pimv1.ReviewDecision { return getItem(rev, other).Status.Decision }).Should(Equal(pimv1.ReviewDecisionDeny))
			Expect(verify().OK()).To(BeTrue(), verify().String())

			By("once recorded, a record leaves the annotation: it holds only decisions waiting")
			Expect(decide(as(dana, nil, nil), rev, key, "Approve: third")).To(Succeed())
			Eventually(decisions).Should(HaveLen(3))
			Eventually(func() int64 { return getItem(rev, other).Status.DecisionsRecorded }).Should(BeEquivalentTo(3))
			Expect(decide(as(dana, nil, nil), rev, key, "Approve: fourth")).To(Succeed())
			Expect(strings.Count(getItem(rev, other).Annotations[pimv1.AnnotationReviewDecisions], `"item"`)).To(Equal(1))
		})
	})

	It("refuses anyone but the requester changing a request's metadata (an owner reference would have it garbage-collected)", func() {
		victim, mallory := uniq("victim"), uniq("mallory")
		role, _ := eligibleFor(user(victim), nil)
		ar := activation(uniq("victims"), role, time.Hour, "on call")
		Expect(as(victim, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))

		for what, mutate := range map[string]func(*pimv1.ActivationRequest){
			"an owner reference to a missing owner": func(a *pimv1.ActivationRequest) {
				a.OwnerReferences = []metav1.OwnerReference{{APIVersion: "kubepim.io/v1alpha1", Kind: "ActivationRequest", Name: "gone", UID: "00000000-0000-0000-0000-000000000001"}}
			},
			"a finalizer": func(a *pimv1.ActivationRequest) { a.Finalizers = []string{"example.com/hold"} },
			"a label":     func(a *pimv1.ActivationRequest) { a.Labels = map[string]string{"x": "y"} },
		} {
			got := getActivation(ar)
			patch := client.MergeFrom(got.DeepCopy())
			mutate(got)
			Expect(as(mallory, nil, nil).Patch(ctx, got, patch)).To(MatchError(ContainSubstring("only the requester")), what)
		}
		By("a deactivation's reason, once given, stays what the trail records")
		admin := uniq("pam")
		bindAs(kubepimtest.RoleAdmin, admin)
		Expect(annotate(as(admin, nil, nil), ar, pimv1.AnnotationDeactivate, "incident INC-9: contain")).To(Succeed())
		Expect(annotate(as(mallory, nil, nil), ar, pimv1.AnnotationDeactivate, "routine")).To(MatchError(ContainSubstring("cannot be removed or changed")))
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateDeactivated))

		got := getActivation(ar)
		Expect(got.Annotations[pimv1.AnnotationDeactivate]).To(Equal("incident INC-9: contain"))
		Expect(got.OwnerReferences).To(BeEmpty())
		Expect(got.Finalizers).To(BeEmpty())
		Expect(canI(victim, nil, "list", "pods", "default")).To(BeFalse())
	})

	It("refuses a requester padding their own request so that an administrator's deactivation no longer fits", func() {
		requester := uniq("padder")
		role, _ := eligibleFor(user(requester), nil)
		ar := activation(uniq("padded"), role, time.Hour, "on call")
		Expect(as(requester, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(annotate(as(requester, nil, nil), ar, "example.com/pad", strings.Repeat("p", 200<<10))).To(MatchError(ContainSubstring("keep them under")))
		Expect(annotate(as(requester, nil, nil), ar, "example.com/note", "small notes are fine")).To(Succeed())
	})

	It("ends an activation at expiry even when its holder put a finalizer on the binding", func() {
		holder := uniq("holder")
		role, _ := eligibleFor(user(holder), nil)
		// The holder may edit ClusterRoleBindings (a platform engineer).
		grantUser(holder, rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterrolebindings"}, Verbs: []string{"get", "patch"}})
		ar := activation(uniq("held"), role, 10*time.Minute, "INC-11")
		Expect(as(holder, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		ref := getActivation(ar).Status.Binding
		b := &rbacv1.ClusterRoleBinding{}
		Expect(k8s.Get(ctx, types.NamespacedName{Name: ref.Name}, b)).To(Succeed())
		patch := client.MergeFrom(b.DeepCopy())
		b.Finalizers = []string{"example.com/keep-my-access"}
		Expect(as(holder, nil, nil).Patch(ctx, b, patch)).To(Succeed())
		DeferCleanup(func() {
			if got := (&rbacv1.ClusterRoleBinding{}); k8s.Get(ctx, client.ObjectKeyFromObject(b), got) == nil {
				got.Finalizers = nil
				_ = k8s.Update(ctx, got)
			}
		})

		fakeClock.Step(10 * time.Minute)
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(b), &rbacv1.ClusterRoleBinding{}))
		}).Should(BeTrue(), "gone, not only marked for deletion")
		Expect(canI(holder, nil, "list", "pods", "default")).To(BeFalse())
	})

	Describe("namespaces", func() {
		It("refuses a request or an assignment in something that is not a namespace name", func() {
			mallory := uniq("mallory")
			role, _ := eligibleFor(user(mallory), nil)
			bad := activation(uniq("bad-ns"), role, time.Hour, "x")
			bad.Spec.Namespace = "Bad_NS!"
			err := as(mallory, nil, nil).Create(ctx, bad)
			Expect(err).To(MatchError(ContainSubstring("must be a namespace name")))
			Expect(k8s.Get(ctx, keyOf(bad), &pimv1.ActivationRequest{})).To(MatchError(ContainSubstring("not found")), "nothing was stored")

			ra := assignment(uniq("traversal"), mallory, role, pimv1.AssignmentEligible, nil, nil)
			ra.Spec.Namespace = "../kube-system"
			Expect(k8s.Create(ctx, ra)).To(MatchError(ContainSubstring("must be a namespace name")))

			ra = assignment(uniq("sa"), "", role, pimv1.AssignmentEligible, nil, nil)
			ra.Spec.Subject = pimv1.Subject{Kind: pimv1.SubjectKindServiceAccount, Name: "robot", Namespace: "kube_system"}
			Expect(k8s.Create(ctx, ra)).To(MatchError(ContainSubstring("spec.subject.namespace in body should match")))
		})
	})
})
