package controllers_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/notify"
)

// eventNotes are the notes of all Events about obj.
func eventNotes(obj client.Object) []string {
	GinkgoHelper()
	var list eventsv1.EventList
	Expect(k8s.List(context.Background(), &list)).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() {
			out = append(out, e.Reason+": "+e.Note)
		}
	}
	return out
}

func getChannel(name string) *pimv1.NotificationChannel {
	GinkgoHelper()
	ch := &pimv1.NotificationChannel{}
	Expect(k8s.Get(context.Background(), client.ObjectKey{Name: name}, ch)).To(Succeed())
	return ch
}

var _ = Describe("Notification channel credentials", func() {
	It("never show a webhook URL's password, path or query in status or Events, yet say which host failed how", func() {
		raw := make([]byte, 16)
		_, _ = rand.Read(raw)
		token, password := hex.EncodeToString(raw), "pw-"+hex.EncodeToString(raw[:4])
		// Servers that fail: one hangs up on every request (Go's client
		// reports it as a *url.Error holding the URL, password masked as
		// ***); one refuses with 400 and echoes the request line, as many
		// proxies' error pages do.
		drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close()
		}))
		DeferCleanup(drop.Close)
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no route for POST "+r.URL.RequestURI(), http.StatusBadRequest)
		}))
		DeferCleanup(echo.Close)
		dropHost, echoHost := strings.TrimPrefix(drop.URL, "http://"), strings.TrimPrefix(echo.URL, "http://")

		userinfo, newline := uniq("userinfo"), uniq("newline")
		channelSecret(userinfo, map[string]string{"url": "http://pim:" + password + "@" + dropHost + "/broken/" + token + "?key=" + token})
		// As `kubectl create secret generic --from-file=url=hook.txt` writes it.
		channelSecret(newline, map[string]string{"url": echo.URL + "/nl/" + token + "\n"})
		createChannel(userinfo, pimv1.NotificationChannelSpec{Type: pimv1.ChannelWebhook, SecretRef: &pimv1.ChannelSecretReference{Name: userinfo}})
		createChannel(newline, pimv1.NotificationChannelSpec{Type: pimv1.ChannelSlack, SecretRef: &pimv1.ChannelSecretReference{Name: newline}})
		role := uniq("secret-url-pods")
		clusterRoleFor(role, "pods", "get")
		rs := roleSetting(uniq("secret-url"), role)
		rs.Spec.Notifications = pimv1.NotificationPolicy{Admins: pimv1.NotificationAudience{Channels: []string{userinfo, newline}}}
		create(rs)
		Eventually(settingObserved(rs)).Should(BeTrue())

		alice := uniq("alice")
		ra := assignmentFromNow(alice, role)
		create(ra)
		Eventually(stateOf(ra)).Should(Equal(pimv1.AssignmentStateEligible))

		By("reading the trimmed URL, and withholding an answer that repeats it")
		echoNote := notificationOf(ra, pimv1.EventEligibleAssigned, pimv1.AudienceAdmins, newline)
		Eventually(func() pimv1.NotificationPhase { return echoNote().Status.Phase }).Should(Equal(pimv1.NotificationFailed))
		Expect(echoNote().Status.LastError).To(Equal("webhook at " + echoHost + " answered 400 Bad Request: (the answer repeats part of the URL; not shown)"))
		Eventually(func() []string { return eventNotes(echoNote()) }).Should(ContainElement(ContainSubstring("DeliveryFailed: gave up after 1 attempt(s): webhook at " + echoHost + " answered 400")))
		Eventually(channelReady(newline)).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", pimv1.ReasonDeliveryFailing),
			HaveField("Message", ContainSubstring(echoHost+" answered 400"))))

		By("describing a dropped connection by host and class only, through three attempts")
		dropNote := notificationOf(ra, pimv1.EventEligibleAssigned, pimv1.AudienceAdmins, userinfo)
		for attempts := int32(1); attempts <= 3; attempts++ {
			Eventually(func() int32 { return dropNote().Status.Attempts }).Should(BeNumerically(">=", attempts))
			Expect(dropNote().Status.LastError).To(Equal("POST to " + dropHost + " failed: connection closed by the server"))
			fakeClock.Step(notify.Backoff(attempts))
		}
		Eventually(channelReady(userinfo)).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", pimv1.ReasonDeliveryFailing),
			HaveField("Message", ContainSubstring("POST to "+dropHost+" failed: connection closed by the server"))))
		Eventually(func() []string { return eventNotes(getChannel(userinfo)) }).Should(ContainElement(ContainSubstring("DeliveryFailing")))

		By("showing nothing of the secret anywhere kubepim writes")
		var texts []string
		for _, name := range []string{userinfo, newline} {
			ch := getChannel(name)
			texts = append(texts, ch.Status.LastError)
			for _, c := range ch.Status.Conditions {
				texts = append(texts, c.Message)
			}
			texts = append(texts, eventNotes(ch)...)
		}
		for _, n := range []*pimv1.Notification{echoNote(), dropNote()} {
			texts = append(texts, n.Status.LastError)
			texts = append(texts, eventNotes(n)...)
		}
		all := strings.Join(texts, "\n")
		Expect(all).To(And(ContainSubstring(dropHost), ContainSubstring(echoHost)))
		for _, secret := range []string{token, password, "/broken", "/nl", "key=", "***"} {
			Expect(all).NotTo(ContainSubstring(secret))
		}
	})
})
