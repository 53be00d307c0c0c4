package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/pquerna/otp/totp"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func getRequest(name string) *pimv1.ActivationRequest {
	GinkgoHelper()
	ar := &pimv1.ActivationRequest{}
	Expect(env.Client.Get(context.Background(), client.ObjectKey{Name: name}, ar)).To(Succeed())
	return ar
}

// requestName is the request whose page the tab shows.
func (t *tab) requestName() string {
	GinkgoHelper()
	loc, err := chromedp.Run(t.ctx, chromedp.Location())
	Expect(err).NotTo(HaveOccurred())
	u, err := url.Parse(loc)
	Expect(err).NotTo(HaveOccurred())
	name, ok := strings.CutPrefix(u.Path, "/requests/")
	Expect(ok).To(BeTrue(), "not on a request's page: %s", loc)
	return name
}

// sessionCookie is the tab's console session cookie.
func (t *tab) sessionCookie() *network.Cookie {
	GinkgoHelper()
	res, err := chromedp.Call(t.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{consoleURL}})
	Expect(err).NotTo(HaveOccurred())
	for _, c := range res.Cookies {
		if c.Name == sessionCookie {
			return c
		}
	}
	Fail("no session cookie")
	return nil
}

// consoleClient is a Go HTTP client that trusts the console and follows no
// redirect.
func consoleClient() *http.Client {
	hc := idp.HTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc
}

var _ = Describe("The console in a browser", Ordered, func() {
	It("lets alice sign in with password and TOTP, activate a role from My roles at a chosen start, hold it, and deactivate it", func() {
		alice := newTab("alice")
		alice.signIn()
		Expect(alice.text(".who")).To(ContainSubstring("MFA"), "her sign-in used a second factor")
		row := alice.text(`#eligible tr[data-role="pod-debugger"]`)
		Expect(row).To(ContainSubstring("pod-debugger"))
		Expect(row).To(ContainSubstring("all namespaces"))
		Expect(row).To(ContainSubstring("at most 4h"))
		Expect(row).To(ContainSubstring("MFA"))
		Expect(allowed("alice", []string{"developers"}, "get", "pods", "prod")).To(BeFalse())

		alice.do(chromedp.Click(chromedp.CSS(`#eligible tr[data-role="pod-debugger"] a.button`)), chromedp.WaitVisible(chromedp.ID("activate")))
		Expect(alice.text("#policy")).To(ContainSubstring("satisfied by your sign-in"))
		Expect(eval[bool](alice, `document.getElementById("totp") === null`)).To(BeTrue(), "no one-time code asked: the sign-in's amr satisfies MFA")
		Expect(alice.text("#duration-help")).To(ContainSubstring("Default 1h, at most 4h"))
		start := time.Now().UTC().Add(4 * time.Second).Truncate(time.Second)
		alice.do(chromedp.SetValue(chromedp.ID("namespace"), "prod"), chromedp.SetValue(chromedp.ID("duration"), "30m"),
			chromedp.SetValue(chromedp.ID("start"), inputTime(start)),
			chromedp.SendKeys(chromedp.ID("justification"), "INC-4711: pods crash-looping in prod"),
			chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("state")))
		Expect(alice.text("#flash")).To(ContainSubstring("created"))
		name := alice.requestName()
		alice.waitText("#state", "Active")
		ar := getRequest(name)
		Expect(ar.Spec.Requester.Username).To(Equal("alice"))
		Expect(ar.Spec.StartTime.Time).To(BeTemporally("==", start))
		Expect(ar.Status.ActivatedAt.Time).To(BeTemporally(">=", start))
		Expect(ar.Spec.MFA).NotTo(BeNil())
		Expect(ar.Spec.MFA.Method).To(Equal(pimv1.MFAMethodClaim), "the ID token's amr reached the webhook through the API server")
		Eventually(func() bool { return allowed("alice", []string{"developers"}, "get", "pods", "prod") }).Should(BeTrue())
		Expect(allowed("alice", []string{"developers"}, "get", "pods", "default")).To(BeFalse())

		alice.do(chromedp.Navigate(consoleURL+"/roles"), chromedp.WaitVisible(chromedp.ID("active")))
		Expect(alice.text(`#active tr[data-role="pod-debugger"]`)).To(ContainSubstring("Active"))
		alice.do(chromedp.Navigate(consoleURL+"/requests"), chromedp.WaitVisible(chromedp.ID("requests")))
		Expect(alice.text(`#requests tr[data-name="` + name + `"]`)).To(ContainSubstring("INC-4711"))

		alice.do(chromedp.Navigate(consoleURL+"/requests/"+name), chromedp.SendKeys(chromedp.ID("deactivate-reason"), "fixed"),
			chromedp.Click(chromedp.ID("deactivate")), chromedp.WaitVisible(chromedp.ID("flash")))
		Expect(alice.text("#flash")).To(ContainSubstring("deactivated"))
		Eventually(func() bool { return allowed("alice", []string{"developers"}, "get", "pods", "prod") }).Should(BeFalse())
		Eventually(func() pimv1.ActivationState { return getRequest(name).Status.State }).Should(Equal(pimv1.ActivationStateDeactivated))
		Expect(getRequest(name).Annotations[pimv1.AnnotationDeactivatedBy]).To(Equal("alice"))
	})

	It("gets bob's request approved by carol in the browser, and shows mallory kubepim's refusal", func() {
		bob := newTab("bob")
		bob.signIn()
		row := bob.text(`#eligible tr[data-role="secret-reader"]`)
		Expect(row).To(ContainSubstring("Group sre"))
		Expect(row).To(ContainSubstring("1 approval"))
		Expect(row).To(ContainSubstring("ticket"))
		bob.do(chromedp.Click(chromedp.CSS(`#eligible tr[data-role="secret-reader"] a.button`)), chromedp.WaitVisible(chromedp.ID("activate")))
		Expect(eval[string](bob, `document.getElementById("namespace").value`)).To(Equal("prod"))
		bob.do(chromedp.SetValue(chromedp.ID("duration"), "30m"),
			chromedp.SendKeys(chromedp.ID("justification"), "rotate the payments DB password"),
			chromedp.SendKeys(chromedp.ID("ticketSystem"), "jira"), chromedp.SendKeys(chromedp.ID("ticketNumber"), "OPS-88"),
			chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("state")))
		name := bob.requestName()
		bob.waitText("#state", "PendingApproval")
		Expect(eval[bool](bob, `document.getElementById("decide-h") === null`)).To(BeTrue(), "no decision form on one's own request")
		Expect(allowed("bob", []string{"sre"}, "get", "secrets", "prod")).To(BeFalse())

		mallory := newTab("mallory")
		mallory.signIn()
		mallory.do(chromedp.Navigate(consoleURL+"/approvals"), chromedp.WaitVisible(chromedp.ID("none")))
		mallory.do(chromedp.Navigate(consoleURL+"/requests/"+name), chromedp.WaitVisible(chromedp.ID("reason-"+name)))
		Expect(mallory.text("#main")).To(ContainSubstring("does not name you as an approver"))
		mallory.do(chromedp.SendKeys(chromedp.ID("reason-"+name), "looks fine to me"), chromedp.Click(chromedp.ID("approve-"+name)),
			chromedp.WaitVisible(chromedp.ID("flash")))
		Expect(mallory.text("#flash")).To(ContainSubstring("mallory is not an approver of this role; the approvers are Group sre-leads, User carol"))
		Expect(getRequest(name).Status.Approvals).To(BeEmpty())

		carol := newTab("carol")
		carol.signIn()
		carol.do(chromedp.Navigate(consoleURL+"/approvals"), chromedp.WaitVisible(chromedp.CSS(`article[data-name="`+name+`"]`)))
		card := carol.text(`article[data-name="` + name + `"]`)
		Expect(card).To(ContainSubstring("bob"))
		Expect(card).To(ContainSubstring("rotate the payments DB password"))
		Expect(card).To(ContainSubstring("jira OPS-88"))
		Expect(card).To(ContainSubstring("Role secret-reader"))
		carol.do(chromedp.SendKeys(chromedp.ID("reason-"+name), "ticket checked"), chromedp.Click(chromedp.ID("approve-"+name)),
			chromedp.WaitVisible(chromedp.ID("flash")))
		Expect(carol.text("#flash")).To(ContainSubstring("You approved " + name))

		bob.waitText("#state", "Active")
		Expect(bob.text("#decisions")).To(ContainSubstring("carol: Approve — ticket checked"))
		Eventually(func() bool { return allowed("bob", []string{"sre"}, "get", "secrets", "prod") }).Should(BeTrue())
		approvals := getRequest(name).Status.Approvals
		Expect(approvals).To(HaveLen(1))
		Expect(approvals[0].Approver.Username).To(Equal("carol"))
	})

	It("asks for a one-time code when the sign-in had no second factor, and shows kubepim's refusal in the form", func() {
		dave := newTab("dave")
		dave.signIn()
		Expect(dave.text(".who")).NotTo(ContainSubstring("MFA"))
		dave.do(chromedp.Click(chromedp.CSS(`#eligible tr[data-role="pod-debugger"] a.button`)), chromedp.WaitVisible(chromedp.ID("totp")))
		Expect(dave.text("#policy")).To(ContainSubstring("give a one-time code below"))
		dave.do(chromedp.SetValue(chromedp.ID("namespace"), "prod"),
			chromedp.SendKeys(chromedp.ID("justification"), "INC-4712: node pressure"),
			chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("error")))
		Expect(dave.text("#error")).To(ContainSubstring("MFA"))
		Expect(eval[string](dave, `document.getElementById("justification").value`)).To(Equal("INC-4712: node pressure"), "what was typed is kept")
		code, err := totp.GenerateCode(daveTOTP, time.Now())
		Expect(err).NotTo(HaveOccurred())
		dave.do(chromedp.SendKeys(chromedp.ID("totp"), code), chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("state")))
		dave.waitText("#state", "Active")
		ar := getRequest(dave.requestName())
		Expect(ar.Spec.MFA.Method).To(Equal(pimv1.MFAMethodTOTP))
		Expect(ar.Annotations).NotTo(HaveKey(pimv1.AnnotationTOTP), "the webhook strips the code")
	})

	It("refreshes an ID token about to expire, and ends a session after its maximum age", func() {
		alice := newTab("alice")
		alice.signIn()
		cookie := alice.sessionCookie()
		var before session
		Expect(console.getCookieValue(cookie.Value, &before)).To(Succeed())
		get := func() (*http.Response, string) {
			req, err := http.NewRequest(http.MethodGet, consoleURL+"/roles", nil)
			Expect(err).NotTo(HaveOccurred())
			req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
			resp, err := consoleClient().Do(req)
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp, string(body)
		}
		DeferCleanup(func() { consoleClock.Set(0) })
		consoleClock.Set(time.Until(before.Expiry) - 30*time.Second)
		resp, body := get()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("pod-debugger"))
		var fresh *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie {
				fresh = c
			}
		}
		Expect(fresh).NotTo(BeNil(), "the refreshed session is stored")
		var after session
		Expect(console.getCookieValue(fresh.Value, &after)).To(Succeed())
		Expect(after.IDToken).NotTo(Equal(before.IDToken))
		Expect(after.RefreshToken).NotTo(Equal(before.RefreshToken), "the provider rotates refresh tokens")
		Expect(after.Started).To(Equal(before.Started))
		Expect(after.CSRF).To(Equal(before.CSRF))

		consoleClock.Set(13 * time.Hour)
		resp, body = get()
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
		Expect(body).To(ContainSubstring("Your session has ended"))
		Expect(body).NotTo(ContainSubstring("pod-debugger"))
	})

	It("shows a justification with markup as text, never as markup", func() {
		const hostile = `<script>document.title="pwned"</script><img src=x onerror="document.title='pwned'">`
		alice := newTab("alice")
		alice.signIn()
		alice.do(chromedp.Navigate(consoleURL+"/activate?kind=ClusterRole&role=pod-debugger"), chromedp.WaitVisible(chromedp.ID("activate")),
			chromedp.SetValue(chromedp.ID("namespace"), "default"), chromedp.SetValue(chromedp.ID("duration"), "1h"),
			chromedp.SetValue(chromedp.ID("justification"), hostile), chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("state")))
		alice.waitText("#state", "Active")
		Expect(alice.text(".justification")).To(Equal(hostile))
		Expect(eval[string](alice, `document.title`)).NotTo(ContainSubstring("pwned"))
		Expect(eval[int](alice, `document.querySelectorAll("main script, main img").length`)).To(BeZero())
		alice.do(chromedp.Navigate(consoleURL+"/requests"), chromedp.WaitVisible(chromedp.ID("requests")))
		Expect(alice.text(`#requests tr[data-state="Active"] .text`)).To(Equal(hostile))
		Expect(eval[int](alice, `document.querySelectorAll("main script, main img").length`)).To(BeZero())
	})

	It("refuses a cross-site POST, and a POST without the session's CSRF token", func() {
		var list pimv1.ActivationRequestList
		Expect(env.Client.List(context.Background(), &list)).To(Succeed())
		var name string
		for _, ar := range list.Items {
			if ar.Spec.Requester.Username == "alice" && ar.Status.State == pimv1.ActivationStateActive {
				name = ar.Name
			}
		}
		Expect(name).NotTo(BeEmpty(), "the previous spec left alice an active request")
		alice := newTab("alice")
		alice.signIn()

		// Another site (localhost is not 127.0.0.1) posts the deactivation
		// form to the console from alice's browser.
		target := consoleURL + "/requests/" + name + "/deactivate"
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		evil := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!DOCTYPE html><form method="post" action="%s"><input name="reason" value="pwned"><input name="csrf" value="guess"><button id="go">win a prize</button></form>`, target)
		})}
		go func() { _ = evil.Serve(ln) }()
		DeferCleanup(evil.Close)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		alice.do(chromedp.Navigate("http://localhost:"+port+"/"), chromedp.Click(chromedp.ID("go")), chromedp.WaitVisible(chromedp.ID("error")))
		Expect(alice.text("#error")).To(ContainSubstring("another site"))
		Expect(getRequest(name).Status.State).To(Equal(pimv1.ActivationStateActive))
		Expect(getRequest(name).Annotations).NotTo(HaveKey(pimv1.AnnotationDeactivate))

		// The same POST with alice's session cookie but no token, or a wrong
		// one, from a client that sends no Origin: the token alone refuses it.
		cookie := alice.sessionCookie()
		post := func(csrf string) (int, string) {
			form := url.Values{"reason": {"pwned"}}
			if csrf != "" {
				form.Set("csrf", csrf)
			}
			req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
			resp, err := consoleClient().Do(req)
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		status, body := post("")
		Expect(status).To(Equal(http.StatusForbidden))
		Expect(body).To(ContainSubstring("did not come from this console"))
		status, _ = post("not-the-token")
		Expect(status).To(Equal(http.StatusForbidden))
		Expect(getRequest(name).Annotations).NotTo(HaveKey(pimv1.AnnotationDeactivate))

		// With the token from alice's page it goes through: the token is
		// what told the requests apart.
		alice.do(chromedp.Navigate(consoleURL+"/requests/"+name), chromedp.WaitVisible(chromedp.ID("deactivate")))
		token := eval[string](alice, `document.querySelector('input[name="csrf"]').value`)
		status, _ = post(token)
		Expect(status).To(Equal(http.StatusSeeOther))
		Eventually(func() pimv1.ActivationState { return getRequest(name).Status.State }).Should(Equal(pimv1.ActivationStateDeactivated))
	})

	It("refuses a tampered session cookie", func() {
		alice := newTab("alice")
		alice.signIn()
		cookie := alice.sessionCookie()
		Expect(cookie.HTTPOnly).To(BeTrue())
		Expect(cookie.Secure).To(BeTrue())
		Expect(cookie.SameSite).To(Equal(network.CookieSameSiteLax))
		v := []byte(cookie.Value)
		i := len(v) / 2
		if v[i] == 'A' {
			v[i] = 'B'
		} else {
			v[i] = 'A'
		}
		tampered := string(v)

		req, err := http.NewRequest(http.MethodGet, consoleURL+"/roles", nil)
		Expect(err).NotTo(HaveOccurred())
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: tampered})
		resp, err := consoleClient().Do(req)
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusUnauthorized))
		Expect(string(body)).NotTo(ContainSubstring("pod-debugger"))
		Expect(resp.Header.Values("Set-Cookie")).To(ContainElement(HavePrefix(sessionCookie+"=;")), "the bad cookie is cleared")

		_, err = chromedp.Call(alice.ctx, network.SetCookie, network.SetCookieParams{Name: cookie.Name, Value: tampered, URL: consoleURL + "/",
			Path: "/", Secure: ptr.To(true), HTTPOnly: ptr.To(true), SameSite: network.CookieSameSiteLax})
		Expect(err).NotTo(HaveOccurred())
		alice.do(chromedp.Navigate(consoleURL+"/roles"), chromedp.WaitVisible(chromedp.ID("signin")))
		Expect(eval[bool](alice, `document.getElementById("whoami") === null`)).To(BeTrue())
	})
})

// createAll creates objs as the admin and waits until kubepim has put each
// RoleAssignment among them in state (what a page then shows about it).
func createAll(state pimv1.AssignmentState, objs ...client.Object) {
	GinkgoHelper()
	ctx := context.Background()
	for _, obj := range objs {
		Expect(env.Client.Create(ctx, obj)).To(Succeed())
	}
	for _, obj := range objs {
		if _, ok := obj.(*pimv1.RoleAssignment); !ok {
			continue
		}
		Eventually(func() pimv1.AssignmentState {
			ra := &pimv1.RoleAssignment{}
			_ = env.Client.Get(ctx, client.ObjectKeyFromObject(obj), ra)
			return ra.Status.State
		}).Should(Equal(state), "RoleAssignment %s", obj.GetName())
	}
}
