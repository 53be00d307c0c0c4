package controllers_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
)

// eventsAbout lists the audit events about one object, in chain order.
func eventsAbout(uid string) []pimv1.AuditEvent {
	GinkgoHelper()
	var list pimv1.AuditEventList
	Expect(k8s.List(context.Background(), &list)).To(Succeed())
	var out []pimv1.AuditEvent
	for _, ev := range list.Items {
		if ev.Spec.Target != nil && ev.Spec.Target.UID == uid {
			out = append(out, ev)
		}
	}
	slices.SortFunc(out, func(a, b pimv1.AuditEvent) int { return int(a.Spec.Sequence - b.Spec.Sequence) })
	return out
}

func actionsAndActors(evs []pimv1.AuditEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Spec.Action+" by "+ev.Spec.Actor.Username)
	}
	return out
}

func verify() audit.Report {
	GinkgoHelper()
	rep, err := audit.Verify(context.Background(), k8s, kubepimNamespace)
	Expect(err).NotTo(HaveOccurred())
	return rep
}

var _ = Describe("Audit trail", Ordered, func() {
	ctx := context.Background()
	var ar *pimv1.ActivationRequest
	var alice, arUID string

	It("records each step of an approved activation exactly once, with its actor", func() {
		alice = uniq("alice")
		role, _ := eligibleFor(user(alice), nil)
		rs := roleSetting(uniq("audited"), role)
		rs.Spec.Activation.RequireTicket = true
		rs.Spec.Activation.Approval = pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour},
			Approvers: []pimv1.Principal{{Kind: "User", Name: "bob"}, {Kind: "Group", Name: "leads"}}}
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())

		ar = activation(uniq("audited"), role, time.Hour, "INC-42 database failover")
		ar.Spec.Ticket = &pimv1.Ticket{System: "jira", Number: "INC-42"}
		Expect(as(alice, []string{"dev"}, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStatePendingApproval))
		Expect(annotate(as("bob", []string{"leads", "everyone"}, nil), ar, pimv1.AnnotationApprove, "approved for the failover")).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		fakeClock.SetTime(getActivation(ar).Status.ExpiresAt.Time)
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))

		uid := string(getActivation(ar).UID)
		arUID = uid
		want := []string{
			"ActivationRequested by " + alice,
			"PendingApproval by kubepim:controller",
			"Approved by bob",
			"Activated by kubepim:controller",
			"Expired by kubepim:controller",
		}
		Eventually(func() []string { return actionsAndActors(eventsAbout(uid)) }).Should(Equal(want))
		evs := eventsAbout(uid)
		Expect(evs[0].Spec.Justification).To(Equal("INC-42 database failover"))
		Expect(evs[0].Spec.Ticket.Number).To(Equal("INC-42"))
		Expect(evs[0].Spec.Actor.Groups).To(ContainElement("dev"))
		Expect(evs[2].Spec.Actor.Groups).To(Equal([]string{"leads"}), "the groups through which bob may decide, not every group he is in")
		Expect(evs[2].Spec.Reason).To(Equal("approved for the failover"))
		Expect(evs[3].Spec.Subject.Name).To(Equal(alice))

		// A restarted manager reconciles everything again and writes nothing twice.
		stopMgr()
		stopMgr = startManager(fakeClock)
		Consistently(func() []string { return actionsAndActors(eventsAbout(uid)) }, "1s").Should(Equal(want))
	})

	It("stays gapless and records each action once while many activations are reconciled at once", func() {
		// The manager runs several workers per controller: these requests
		// are granted side by side, and their audit events all go through
		// one chain.
		const n = 12
		var reqs []*pimv1.ActivationRequest
		for i := range n {
			name := uniq(fmt.Sprintf("crowd%d", i))
			role, _ := eligibleFor(user(name), nil)
			ar := activation(uniq("crowd"), role, time.Hour, "parallel")
			reqs = append(reqs, ar)
			DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
			obj := ar.DeepCopy()
			go func() {
				defer GinkgoRecover()
				Expect(as(name, nil, nil).Create(ctx, obj)).To(Succeed())
			}()
		}
		for _, ar := range reqs {
			Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		}
		for _, ar := range reqs {
			uid := string(getActivation(ar).UID)
			Eventually(func() []string {
				var actions []string
				for _, ev := range eventsAbout(uid) {
					actions = append(actions, ev.Spec.Action)
				}
				return actions
			}).Should(Equal([]string{pimv1.AuditActivationRequested, pimv1.AuditActivated}))
		}
		Expect(verify().OK()).To(BeTrue(), verify().String())
	})

	It("records an assignment's life, with who made it", func() {
		role := uniq("audited-role")
		clusterRoleFor(role, "pods", "get")
		ra := assignment(uniq("audited"), uniq("frank"), role, pimv1.AssignmentActive, nil, in(time.Hour))
		Expect(as("platform-admin", []string{"system:masters"}, nil).Create(ctx, ra)).To(Succeed())
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateActive))
		fakeClock.Step(time.Hour)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateExpired))
		Expect(k8s.Delete(ctx, ra)).To(Succeed())
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(ra.UID))) }).Should(Equal([]string{
			"AssignmentCreated by platform-admin",
			"AssignmentActivated by kubepim:controller",
			"AssignmentExpired by kubepim:controller",
			"AssignmentRemoved by kubepim:controller",
		}))
	})

	It("refuses creating, changing and deleting events, even by a cluster admin", func() {
		root := as("root", []string{"system:masters"}, nil)
		ev := eventsAbout(arUID)[0]
		edited := ev.DeepCopy()
		edited.Spec.Actor.Username = "someone-else"
		Expect(root.Update(ctx, edited)).To(MatchError(ContainSubstring("audit events are immutable")))
		Expect(root.Delete(ctx, &ev)).To(MatchError(ContainSubstring("audit events are immutable")))
		fake := &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: uniq("fake")}, Spec: pimv1.AuditEventSpec{Time: metav1.Now(), Action: "Activated"}}
		Expect(root.Create(ctx, fake)).To(MatchError(ContainSubstring("audit events are immutable")))
	})

	It("verifies, and finds an event edited or removed at the storage level", func() {
		Expect(verify().OK()).To(BeTrue(), verify().String())
		ev := eventsAbout(arUID)[2]
		original := ev.DeepCopy()

		withWebhooksOff(func() {
			// The CEL rule refuses spec changes through the API too; someone
			// with etcd access is not stopped by it. Replace the object.
			Eventually(func() error { return k8s.Delete(ctx, &ev) }).Should(Succeed())
			forged := original.DeepCopy()
			forged.ResourceVersion, forged.UID = "", ""
			forged.Spec.Actor.Username = "mallory"
			Expect(k8s.Create(ctx, forged)).To(Succeed())
		})
		rep := verify()
		Expect(rep.OK()).To(BeFalse())
		Expect(rep.Problem).To(ContainSubstring(fmt.Sprintf("event %d was edited", original.Spec.Sequence)))
		Expect(rep.Event).To(Equal(original.Name))

		withWebhooksOff(func() {
			Eventually(func() error {
				return k8s.Delete(ctx, &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: original.Name}})
			}).Should(Succeed())
		})
		rep = verify()
		Expect(rep.OK()).To(BeFalse())
		Expect(rep.Problem).To(ContainSubstring(fmt.Sprintf("events %d to %d are missing", original.Spec.Sequence, original.Spec.Sequence)))

		restored := original.DeepCopy()
		restored.ResourceVersion, restored.UID = "", ""
		Expect(k8s.Create(ctx, restored)).To(MatchError(ContainSubstring("audit events are immutable")), "the admin is not kubepim")
		withWebhooksOff(func() {
			Eventually(func() error { return k8s.Create(ctx, restored.DeepCopy()) }).Should(Succeed())
		})
		Expect(verify().OK()).To(BeTrue(), verify().String())
	})

	It("exports CSV and JSON lines over HTTPS to callers allowed to list events", func() {
		auditor := serviceAccountToken("auditor", true)
		stranger := serviceAccountToken("stranger", false)

		status, body := getAudit(auditor, url.Values{"format": {"csv"}, "user": {alice}})
		Expect(status).To(Equal(http.StatusOK), body)
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		Expect(err).NotTo(HaveOccurred())
		Expect(rows[0]).To(Equal(audit.CSVHeader))
		var actions []string
		for _, row := range rows[1:] {
			if row[12] == ar.Name {
				actions = append(actions, row[2])
			}
		}
		Expect(actions).To(Equal([]string{"ActivationRequested", "PendingApproval", "Approved", "Activated", "Expired"}))

		status, body = getAudit(auditor, url.Values{"format": {"json"}, "action": {"Approved"}, "role": {ar.Spec.RoleRef.Name}})
		Expect(status).To(Equal(http.StatusOK), body)
		lines := strings.Split(strings.TrimSpace(body), "\n")
		Expect(lines).To(HaveLen(1))
		var ev map[string]any
		Expect(json.Unmarshal([]byte(lines[0]), &ev)).To(Succeed())
		Expect(ev["actor"]).To(HaveKeyWithValue("username", "bob"))

		status, _ = getAudit(stranger, url.Values{})
		Expect(status).To(Equal(http.StatusForbidden))
		status, _ = getAudit("not-a-token", url.Values{})
		Expect(status).To(Equal(http.StatusUnauthorized))
	})

	It("prunes past the retention and still verifies", func() {
		// The manager's own retention, with the manager's identity.
		managerClient, err := client.New(env.ManagerConfig, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		recorder := &audit.Recorder{Client: managerClient, Clock: fakeClock}
		before := verify()
		pruned, err := recorder.Prune(ctx, kubepimNamespace, time.Nanosecond)
		Expect(err).NotTo(HaveOccurred())
		Expect(pruned).To(BeNumerically(">", 0))
		after := verify()
		Expect(after.OK()).To(BeTrue(), after.String())
		Expect(after.First).To(BeNumerically(">", before.First))
		anchor, err := audit.ReadAnchor(ctx, k8s, kubepimNamespace)
		Expect(err).NotTo(HaveOccurred())
		Expect(anchor.Sequence).To(Equal(after.First - 1))

		// New events keep the chain whole after pruning.
		eligibleFor(user(uniq("alice")), nil)
		Eventually(func() bool { return verify().Last > after.Last }).Should(BeTrue())
		Expect(verify().OK()).To(BeTrue(), verify().String())
	})
})

// serviceAccountToken makes a ServiceAccount, allowed to list audit events
// or not, and returns a token the API server issued for it.
func serviceAccountToken(name string, mayList bool) string {
	GinkgoHelper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: uniq(name)}}
	create(sa)
	if mayList {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: uniq("audit-reader")},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"kubepim.io"}, Resources: []string{"auditevents"}, Verbs: []string{"list"}}}}
		create(role)
		create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}}})
	}
	tr := &authenticationv1.TokenRequest{}
	Expect(k8s.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
	return tr.Status.Token
}

// getAudit downloads from the manager's /audit endpoint.
func getAudit(token string, q url.Values) (int, string) {
	GinkgoHelper()
	wh := testEnv.WebhookInstallOptions
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(wh.LocalServingCAData)).To(BeTrue())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	u := fmt.Sprintf("https://%s:%d/audit?%s", wh.LocalServingHost, wh.LocalServingPort, q.Encode())
	req, err := http.NewRequest(http.MethodGet, u, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(body)
}

var _ = Describe("Audit trail of policy and assignment changes", func() {
	ctx := context.Background()

	It("records who set a RoleSetting and who changed an assignment", func() {
		role := uniq("changed-role")
		clusterRoleFor(role, "pods", "get")
		rs := roleSetting(uniq("changed"), role)
		Expect(as("platform-admin", []string{"system:masters"}, nil).Create(ctx, rs)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, rs) })
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(rs.UID))) }).
			Should(Equal([]string{"SettingChanged by platform-admin"}))
		// The trail says which policy took effect, in words.
		Expect(eventsAbout(string(rs.UID))[0].Spec.Details).To(HaveKeyWithValue("requireJustification", "true"))

		ra := assignment(uniq("changed"), "alice", role, pimv1.AssignmentEligible, nil, in(time.Hour))
		create(ra)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))
		got := getAssignment(ra)
		patch := client.MergeFrom(got.DeepCopy())
		got.Spec.EndTime = &metav1.Time{Time: fakeClock.Now().Add(2 * time.Hour)}
		Expect(as("lead", []string{"system:masters"}, nil).Patch(ctx, got, patch)).To(Succeed())
		Eventually(func() []string { return actionsAndActors(eventsAbout(string(ra.UID))) }).
			Should(ContainElement("AssignmentChanged by lead"))
		Expect(getAssignment(ra).Annotations[pimv1.AnnotationChangedBy]).To(Equal("lead"))
	})
})
