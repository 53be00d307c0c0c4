package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/test/notifysink"
)

// notifyFixture is a role whose RoleSetting notifies through real servers
// started by the test: a mail server that wants STARTTLS and a password,
// and an HTTP server behind a Slack, a Teams and a JSON webhook channel.
type notifyFixture struct {
	role                      string
	email, slack, teams, hook string // channel names
	web                       *notifysink.HTTP
	mail                      *notifysink.SMTP
	setting                   *pimv1.RoleSetting
}

const (
	platformAddr = "platform@example.com"
	carolAddr    = "carol@example.com"
	daveAddr     = "dave@example.com"
)

func newNotifyFixture(requireApproval bool, approversGroup string) *notifyFixture {
	GinkgoHelper()
	f := &notifyFixture{role: uniq("notify-pods"), email: uniq("email"), slack: uniq("slack"), teams: uniq("teams"), hook: uniq("hook")}
	f.web = notifysink.NewHTTP()
	DeferCleanup(f.web.Close)
	var err error
	f.mail, err = notifysink.NewSMTP("127.0.0.1:0", true, "kubepim", "mail-password")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(f.mail.Close)

	port := portOf(f.mail.Addr)
	channelSecret(f.email, map[string]string{"username": "kubepim", "password": "mail-password"})
	createChannel(f.email, pimv1.NotificationChannelSpec{Type: pimv1.ChannelSMTP, SecretRef: &pimv1.ChannelSecretReference{Name: f.email},
		SMTP:     &pimv1.SMTPSettings{Host: "127.0.0.1", Port: port, Security: pimv1.SMTPStartTLS, From: "pim@example.com"},
		CABundle: f.mail.CertPEM})
	for name, typ := range map[string]string{f.slack: pimv1.ChannelSlack, f.teams: pimv1.ChannelTeams, f.hook: pimv1.ChannelWebhook} {
		channelSecret(name, map[string]string{"url": f.web.URL + "/" + name})
		createChannel(name, pimv1.NotificationChannelSpec{Type: typ, SecretRef: &pimv1.ChannelSecretReference{Name: name}})
	}

	clusterRoleFor(f.role, "pods", "get", "list")
	f.setting = roleSetting(uniq("notify"), f.role)
	f.setting.Spec.Notifications = pimv1.NotificationPolicy{
		EmailChannel: f.email,
		Admins:       pimv1.NotificationAudience{Emails: []string{platformAddr}, Channels: []string{f.slack, f.teams, f.hook}},
	}
	if requireApproval {
		f.setting.Spec.Activation.Approval = pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: 24 * time.Hour},
			Approvers: []pimv1.Principal{{Kind: "User", Name: "carol"}, {Kind: "Group", Name: approversGroup}}}
	}
	create(f.setting)
	Eventually(settingObserved(f.setting)).Should(BeTrue())
	return f
}

func portOf(addr string) int32 {
	GinkgoHelper()
	_, p, err := net.SplitHostPort(addr)
	Expect(err).NotTo(HaveOccurred())
	port, err := strconv.Atoi(p)
	Expect(err).NotTo(HaveOccurred())
	return int32(port)
}

func channelSecret(name string, data map[string]string) {
	GinkgoHelper()
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: kubepimNamespace}, StringData: data})
}

func createChannel(name string, spec pimv1.NotificationChannelSpec) *pimv1.NotificationChannel {
	GinkgoHelper()
	ch := &pimv1.NotificationChannel{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(ch)
	return ch
}

// setDirectory writes the user directory the manager reads addresses from.
func setDirectory(users map[string]string, groups map[string][]string) {
	GinkgoHelper()
	u, _ := json.Marshal(users)
	g, _ := json.Marshal(groups)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubepim-user-directory", Namespace: kubepimNamespace},
		Data: map[string]string{"users": string(u), "groups": string(g)}}
	if err := k8s.Create(context.Background(), cm); apierrors.IsAlreadyExists(err) {
		Expect(k8s.Update(context.Background(), cm)).To(Succeed())
	} else {
		Expect(err).NotTo(HaveOccurred())
	}
}

// mailsWith returns the decoded mails to an address whose subject contains
// s.
func (f *notifyFixture) mailsWith(to, s string) func() []notifysink.Message {
	return func() []notifysink.Message {
		var out []notifysink.Message
		for _, m := range f.mail.Mails(to) {
			msg, err := m.Parse()
			Expect(err).NotTo(HaveOccurred())
			if strings.Contains(msg.Subject, s) {
				out = append(out, msg)
			}
		}
		return out
	}
}

// postsWith returns the posts to a channel whose body contains s.
func (f *notifyFixture) postsWith(channel, s string) func() []notifysink.Post {
	return func() []notifysink.Post {
		var out []notifysink.Post
		for _, p := range f.web.Posts("/" + channel) {
			if strings.Contains(string(p.Body), s) {
				out = append(out, p)
			}
		}
		return out
	}
}

// expectNoDuplicates checks that no message was delivered twice: mails by
// Message-ID and address, posts by the notification they carry.
func (f *notifyFixture) expectNoDuplicates() {
	GinkgoHelper()
	seen := map[string]bool{}
	for _, m := range f.mail.Mails("") {
		msg, err := m.Parse()
		Expect(err).NotTo(HaveOccurred())
		key := msg.Header.Get("Message-Id") + " to " + m.To
		Expect(seen).NotTo(HaveKey(key), "mail delivered twice")
		seen[key] = true
	}
	for _, p := range f.web.Posts("") {
		key := p.Path + " " + p.Header.Get("X-Kubepim-Notification")
		Expect(seen).NotTo(HaveKey(key), "post delivered twice")
		seen[key] = true
	}
}

// notificationOf finds the Notification of an event for an audience on a
// channel about source.
func notificationOf(source client.Object, event, audience, channel string) func() *pimv1.Notification {
	return func() *pimv1.Notification {
		var list pimv1.NotificationList
		Expect(k8s.List(context.Background(), &list, client.InNamespace(kubepimNamespace))).To(Succeed())
		for i, n := range list.Items {
			if n.Spec.Source.UID == string(source.GetUID()) && n.Spec.Event == event && n.Spec.Audience == audience && n.Spec.Channel == channel {
				return &list.Items[i]
			}
		}
		return &pimv1.Notification{}
	}
}

func channelReady(name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		ch := &pimv1.NotificationChannel{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, ch); err != nil {
			return nil
		}
		return meta.FindStatusCondition(ch.Status.Conditions, pimv1.ConditionReady)
	}
}

func notificationCount(channel, result string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "kubepim_notifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["channel"] == channel && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

var _ = Describe("Notifications", func() {
	ctx := context.Background()

	It("tells approvers, the requester and admins through mail, Slack, Teams and a JSON webhook, with retries and no repeats", func() {
		alice, approvers := uniq("alice"), uniq("approvers")
		aliceAddr, aliceClaim := alice+"@example.com", alice+"@idp.example.com"
		setDirectory(map[string]string{alice: aliceAddr, "carol": carolAddr}, map[string][]string{approvers: {daveAddr}})
		f := newNotifyFixture(true, approvers)

		By("announcing an eligible assignment to the assignee and the admins")
		ra := assignmentFromNow(alice, f.role)
		create(ra)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))
		Eventually(f.mailsWith(aliceAddr, "Eligible: User "+alice+" may activate ClusterRole "+f.role)).Should(HaveLen(1))
		Expect(f.mailsWith(aliceAddr, "Eligible")()[0].Body).To(ContainSubstring("kubectl pim activate " + f.role + " --for 1h"))
		Eventually(f.mailsWith(platformAddr, "Eligible: User "+alice)).Should(HaveLen(1))
		Eventually(f.postsWith(f.slack, "Eligible: User "+alice)).Should(HaveLen(1))

		By("asking the approvers, by mail and on every admin channel, with the commands to decide")
		f.web.FailFirst("/"+f.hook, 2)
		f.mail.FailRcpt(carolAddr, 1)
		ar := activation(uniq("notified"), f.role, time.Hour, "failover of db-7")
		ar.Spec.Ticket = &pimv1.Ticket{System: "jira", Number: "OPS-42"}
		Expect(as(alice, nil, map[string][]string{"email": {aliceClaim}}).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStatePendingApproval))

		Eventually(f.mailsWith(daveAddr, "Approval needed: "+alice+" requests ClusterRole "+f.role+" cluster-wide for 1h")).Should(HaveLen(1))
		mail := f.mailsWith(daveAddr, "Approval needed")()[0]
		Expect(mail.Body).To(ContainSubstring(fmt.Sprintf(`kubectl pim approve %s --reason "REASON"`, ar.Name)))
		Expect(mail.Body).To(ContainSubstring(fmt.Sprintf(`kubectl pim deny %s --reason "REASON"`, ar.Name)))
		Expect(mail.Body).To(ContainSubstring("failover of db-7"))
		Expect(mail.Body).To(ContainSubstring("jira:OPS-42"))
		Expect(mail.Body).To(ContainSubstring(consoleURL+"/requests/"+ar.Name), "a link to the request in the console (--console-url)")
		Expect(mail.Header.Get("To")).To(Equal("<" + daveAddr + ">"))
		Expect(mail.Header.Get("Importance")).To(Equal("high"), "an approval request is critical")
		Eventually(f.mailsWith(aliceClaim, "Approval needed")).Should(HaveLen(1), "the requester hears at the address of their email claim")
		Expect(f.mail.Mails(aliceAddr)).To(HaveLen(1), "and not at the directory's, which only the assignment used")

		By("retrying a mail server that refuses one recipient for now, without mailing the other twice")
		approversMail := notificationOf(ar, pimv1.EventApprovalNeeded, pimv1.AudienceApprovers, f.email)
		Eventually(func() []string { n := approversMail(); return n.Status.DeliveredTo }).Should(Equal([]string{daveAddr}))
		n := approversMail()
		Expect(n.Status.Phase).To(Equal(pimv1.NotificationPending))
		Expect(n.Status.LastError).To(ContainSubstring("451"))
		Expect(n.Status.NextAttemptTime.Sub(n.Status.LastAttemptTime.Time)).To(Equal(time.Second))

		By("retrying a webhook that fails twice, backing off 1s then 2s")
		hookPost := notificationOf(ar, pimv1.EventApprovalNeeded, pimv1.AudienceAdmins, f.hook)
		Eventually(func() int32 { return hookPost().Status.Attempts }).Should(Equal(int32(1)))
		fakeClock.Step(time.Second)
		Eventually(func() pimv1.NotificationPhase { return approversMail().Status.Phase }).Should(Equal(pimv1.NotificationDelivered))
		Expect(approversMail().Status.DeliveredTo).To(ConsistOf(daveAddr, carolAddr))
		Eventually(f.mailsWith(carolAddr, "Approval needed")).Should(HaveLen(1))
		Eventually(func() int32 { return hookPost().Status.Attempts }).Should(Equal(int32(2)))
		n = hookPost()
		Expect(n.Status.Phase).To(Equal(pimv1.NotificationPending))
		Expect(n.Status.NextAttemptTime.Sub(n.Status.LastAttemptTime.Time)).To(Equal(2 * time.Second))
		Expect(f.postsWith(f.hook, "")()).To(HaveLen(1), "only the eligible assignment so far")
		fakeClock.Step(2 * time.Second)
		Eventually(func() pimv1.NotificationPhase { return hookPost().Status.Phase }).Should(Equal(pimv1.NotificationDelivered))
		Expect(f.mail.Mails(aliceAddr)).To(HaveLen(1))

		var doc map[string]any
		Expect(json.Unmarshal(f.postsWith(f.hook, pimv1.EventApprovalNeeded)()[0].Body, &doc)).To(Succeed())
		Expect(doc).To(HaveKeyWithValue("event", pimv1.EventApprovalNeeded))
		Expect(doc).To(HaveKeyWithValue("critical", true))
		Expect(doc).To(HaveKeyWithValue("source", HaveKeyWithValue("name", ar.Name)))
		Expect(doc["actions"]).To(ContainElement(HaveKeyWithValue("command", fmt.Sprintf(`kubectl pim approve %s --reason "REASON"`, ar.Name))))
		Expect(doc["facts"]).To(ContainElement(And(HaveKeyWithValue("name", "Ticket"), HaveKeyWithValue("value", "jira:OPS-42"))))

		var slack map[string]any
		Eventually(f.postsWith(f.slack, "Approval needed")).Should(HaveLen(1))
		Expect(json.Unmarshal(f.postsWith(f.slack, "Approval needed")()[0].Body, &slack)).To(Succeed())
		Expect(slack["text"]).To(ContainSubstring("Approval needed: " + alice))
		Expect(slack["blocks"]).To(ContainElement(HaveKeyWithValue("type", "header")))
		Expect(string(f.postsWith(f.slack, "Approval needed")()[0].Body)).To(ContainSubstring("```kubectl pim approve " + ar.Name))

		var teams struct {
			Type        string `json:"type"`
			Attachments []struct {
				ContentType string `json:"contentType"`
				Content     struct {
					Type    string           `json:"type"`
					Version string           `json:"version"`
					Body    []map[string]any `json:"body"`
				} `json:"content"`
			} `json:"attachments"`
		}
		Eventually(f.postsWith(f.teams, "Approval needed")).Should(HaveLen(1))
		Expect(json.Unmarshal(f.postsWith(f.teams, "Approval needed")()[0].Body, &teams)).To(Succeed())
		Expect(teams.Type).To(Equal("message"))
		Expect(teams.Attachments).To(HaveLen(1))
		Expect(teams.Attachments[0].ContentType).To(Equal("application/vnd.microsoft.card.adaptive"))
		Expect(teams.Attachments[0].Content.Type).To(Equal("AdaptiveCard"))
		Expect(teams.Attachments[0].Content.Body).To(ContainElement(HaveKeyWithValue("type", "FactSet")))

		By("telling the requester of the approval and the activation")
		Expect(annotate(as("carol", nil, nil), ar, pimv1.AnnotationApprove, "go ahead")).To(Succeed())
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Eventually(f.mailsWith(aliceClaim, "Approved: "+alice+"'s activation")).Should(HaveLen(1))
		Eventually(f.mailsWith(aliceClaim, "Activated: "+alice+" holds ClusterRole "+f.role)).Should(HaveLen(1))
		Expect(f.mailsWith(aliceClaim, "Approved")()[0].Body).To(ContainSubstring("carol approved: go ahead"))
		Eventually(f.postsWith(f.slack, "Activated: "+alice)).Should(HaveLen(1))
		Expect(f.mailsWith(carolAddr, "Approved")()).To(BeEmpty(), "approvers are not told of decisions by default")

		By("reminding the requester 15 minutes before the end, and telling of the expiry")
		expires := getActivation(ar).Status.ExpiresAt.Time
		fakeClock.SetTime(expires.Add(-15 * time.Minute))
		Eventually(f.mailsWith(aliceClaim, "Expiring in 15m: "+alice+"'s activation")).Should(HaveLen(1))
		Expect(f.mailsWith(aliceClaim, "Expiring")()[0].Body).To(ContainSubstring("kubectl pim extend " + ar.Name))
		fakeClock.SetTime(expires)
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateExpired))
		Eventually(f.mailsWith(aliceClaim, "Expired: "+alice+"'s activation")).Should(HaveLen(1))
		Eventually(f.postsWith(f.teams, "Expired: "+alice)).Should(HaveLen(1))
		Expect(f.postsWith(f.slack, "Expiring")()).To(BeEmpty(), "admins are not reminded by default")
		Eventually(f.mailsWith(platformAddr, "Expired: "+alice)).Should(HaveLen(1))
		Eventually(f.postsWith(f.slack, "Expired: "+alice)).Should(HaveLen(1))
		Eventually(f.postsWith(f.hook, "Expired: "+alice)).Should(HaveLen(1))
		// Mail: the assignee 1; platform 4 (eligible, approval needed,
		// activated, expired); dave and carol 1 each; the requester 5
		// (approval needed, approved, activated, expiring, expired). Each
		// admin channel 4.
		Expect(f.mail.Mails("")).To(HaveLen(12))
		Expect(f.web.Posts("")).To(HaveLen(12))
		f.expectNoDuplicates()
		Eventually(channelReady(f.hook)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(notificationCount(f.hook, "retried")).To(BeNumerically(">=", 2))

		By("sending nothing again after a restart of the manager")
		// Every delivery is recorded before the restart: one interrupted
		// between sending and recording is sent again (at least once).
		Eventually(func() []string {
			var list pimv1.NotificationList
			Expect(k8s.List(ctx, &list, client.InNamespace(kubepimNamespace))).To(Succeed())
			var pending []string
			for _, n := range list.Items {
				if (n.Spec.Source.UID == string(ra.UID) || n.Spec.Source.UID == string(ar.UID)) && n.Status.Phase != pimv1.NotificationDelivered {
					pending = append(pending, n.Name+" "+string(n.Status.Phase))
				}
			}
			return pending
		}).Should(BeEmpty())
		delivered := len(f.mail.Mails("")) + len(f.web.Posts(""))
		stopMgr()
		stopMgr = startManager(fakeClock)
		bob := uniq("bob")
		later := assignmentFromNow(bob, f.role)
		create(later)
		// The restarted manager has looked at everything again by the time
		// it announces something new.
		Eventually(f.postsWith(f.hook, "Eligible: User "+bob)).Should(HaveLen(1))
		Eventually(f.postsWith(f.slack, "Eligible: User "+bob)).Should(HaveLen(1))
		Eventually(f.postsWith(f.teams, "Eligible: User "+bob)).Should(HaveLen(1))
		Eventually(f.mailsWith(platformAddr, "Eligible: User "+bob)).Should(HaveLen(1))
		f.expectNoDuplicates()
		Consistently(func() int { return len(f.mail.Mails("")) + len(f.web.Posts("")) }, "1s").Should(Equal(delivered+4),
			"bob has no address: only the admins heard of his assignment")
		f.expectNoDuplicates()
		bobMail := notificationOf(later, pimv1.EventEligibleAssigned, pimv1.AudienceRequester, f.email)
		Eventually(func() []string { return warningReasons(bobMail()) }).Should(ContainElement("DeliveryFailed"))
		Expect(bobMail().Status.LastError).To(ContainSubstring("no email address for " + bob))
	})

	It("grants while a channel hangs, and reports channels that cannot deliver", func() {
		alice := uniq("alice")
		setDirectory(map[string]string{alice: alice + "@example.com"}, nil)
		f := newNotifyFixture(false, "")
		release := f.web.Hold("/" + f.slack)
		DeferCleanup(release)
		f.web.AlwaysAnswer("/"+f.hook, http.StatusBadRequest)
		Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: f.teams, Namespace: kubepimNamespace}})).To(Succeed())

		role, ra := f.role, assignmentFromNow(alice, f.role)
		create(ra)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))
		ar := activation(uniq("while-hung"), role, time.Hour, "on call")
		Expect(as(alice, nil, nil).Create(ctx, ar)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, ar) })
		Eventually(activationState(ar)).Should(Equal(pimv1.ActivationStateActive))
		Expect(canI(alice, nil, "list", "pods", "default")).To(BeTrue())
		Eventually(f.mailsWith(alice+"@example.com", "Activated")).Should(HaveLen(1))
		Expect(f.postsWith(f.slack, "")()).To(BeEmpty(), "Slack still hangs")

		By("giving up at once on a webhook that refuses the message for good")
		hook := notificationOf(ar, pimv1.EventActivated, pimv1.AudienceAdmins, f.hook)
		Eventually(func() pimv1.NotificationPhase { n := hook(); return n.Status.Phase }).Should(Equal(pimv1.NotificationFailed))
		Expect(hook().Status.LastError).To(ContainSubstring("400"))
		Eventually(channelReady(f.hook)).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", pimv1.ReasonDeliveryFailing)))
		Eventually(func() []string { return warningReasons(hook()) }).Should(ContainElement("DeliveryFailed"))
		Expect(notificationCount(f.hook, "failed")).To(BeNumerically(">=", 1))

		By("saying which Secret is missing")
		Eventually(channelReady(f.teams)).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", pimv1.ReasonSecretMissing)))

		By("delivering what waited once the channel answers")
		release()
		Eventually(f.postsWith(f.slack, "Activated: "+alice)).Should(HaveLen(1))
	})
})

// assignmentFromNow makes user eligible for role from the fake clock's now:
// notifications go out for what happened lately by that clock.
func assignmentFromNow(user, role string) *pimv1.RoleAssignment {
	now := fakeClock.Now()
	return assignment(uniq("eligible"), user, role, pimv1.AssignmentEligible, &now, nil)
}
