package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
)

// consoleCookies are the tab's cookies for the console, by name.
func (t *tab) consoleCookies() map[string]*network.Cookie {
	GinkgoHelper()
	res, err := chromedp.Call(t.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{consoleURL}})
	Expect(err).NotTo(HaveOccurred())
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		out[c.Name] = c
	}
	return out
}

// session opens the tab's session as the console would (reassembling
// its parts).
func (t *tab) session() session {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, consoleURL, nil)
	Expect(err).NotTo(HaveOccurred())
	for _, c := range t.consoleCookies() {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	var sess session
	Expect(console.getSession(req, &sess)).To(Succeed())
	return sess
}

// refreshWorks says whether the provider still gives tokens for a refresh
// token (as the console would ask, with its client's credentials).
func refreshWorks(rt string) error {
	ctx := oidc.ClientContext(context.Background(), idp.HTTPClient())
	_, err := idp.OAuth2Config(consoleURL+"/auth/callback").TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	return err
}

var _ = Describe("Sessions in a browser", Ordered, func() {
	It("revokes the refresh token at the provider when alice signs out", func() {
		alice := newTab("alice")
		alice.signIn()
		dave := newTab("dave")
		dave.signIn()
		a, d := alice.session(), dave.session()
		Expect(a.RefreshToken).NotTo(BeEmpty())

		// alice's sign-out form, posted without following the redirect to
		// the provider's end_session endpoint (whose logout would end her
		// refresh tokens too, at this provider): the revocation alone must
		// stop the token.
		req, err := http.NewRequest(http.MethodPost, consoleURL+"/auth/logout", strings.NewReader(url.Values{"csrf": {a.CSRF}}.Encode()))
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range alice.consoleCookies() {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := consoleClient().Do(req)
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusSeeOther))
		cleared := false
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie && c.MaxAge < 0 {
				cleared = true
			}
		}
		Expect(cleared).To(BeTrue(), "the session cookie is removed")

		err = refreshWorks(a.RefreshToken)
		Expect(err).To(HaveOccurred(), "alice's refresh token is revoked")
		Expect(err.Error()).To(ContainSubstring("invalid_grant"))
		Expect(refreshWorks(d.RefreshToken)).To(Succeed(), "dave, still signed in, keeps his")
	})

	It("splits erin's session (an ID token with 151 groups) over several cookies and reassembles it", func() {
		erin := newTab("erin")
		erin.signIn()
		cookies := erin.consoleCookies()
		first := cookies[sessionCookie]
		Expect(first).NotTo(BeNil())
		count, _, split := strings.Cut(first.Value, ".")
		Expect(split).To(BeTrue(), "the session is split")
		n, err := strconv.Atoi(count)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeNumerically(">=", 2))
		Expect(n).To(BeNumerically("<=", maxSessionChunks))
		var names []string
		for name, c := range cookies {
			Expect(len(c.Name)+len(c.Value)).To(BeNumerically("<=", 4096), "every cookie fits a browser's limit")
			Expect(c.Secure && c.HTTPOnly).To(BeTrue())
			names = append(names, name)
		}
		want := []string{sessionCookie}
		for i := 1; i < n; i++ {
			want = append(want, chunkCookie(i))
		}
		Expect(names).To(ConsistOf(want))
		sess := erin.session()
		Expect(len(sess.IDToken)).To(BeNumerically(">", 4096), "the ID token alone is larger than one cookie")

		// The reassembled token is her bearer token: the API server says
		// who she is, with her groups (151 of them: My roles lists every
		// assignment, page by page, instead of one list per group), and
		// she is eligible through the group sre.
		erin.do(chromedp.Navigate(consoleURL+"/roles"), chromedp.WaitVisible(chromedp.ID("whoami")))
		Expect(erin.text("#whoami")).To(Equal("erin"))
		Expect(erin.text(`#eligible tr[data-role="secret-reader"]`)).To(ContainSubstring("Group sre"))

		// Activating rewrites the session twice (the flash message, set and
		// shown): it stays whole, and the request is erin's (the API server
		// authenticated the reassembled token; kubepim stamped her name).
		erin.do(chromedp.Click(chromedp.CSS(`#eligible tr[data-role="secret-reader"] a.button`)), chromedp.WaitVisible(chromedp.ID("activate")))
		fill(erin, map[string]string{"duration": "30m", "justification": "large token check", "ticketSystem": "jira", "ticketNumber": "OPS-151"})
		erin.clickAndLoad("#submit")
		Expect(erin.text("#flash")).To(ContainSubstring("created"))
		name := erin.requestName()
		DeferCleanup(func() { _ = env.Client.Delete(context.Background(), getRequest(name)) })
		Expect(getRequest(name).Spec.Requester.Username).To(Equal("erin"))
		erin.do(chromedp.Navigate(consoleURL+"/requests"), chromedp.WaitVisible(chromedp.ID("whoami")))
		Expect(erin.text("main")).To(ContainSubstring(name))

		// A part missing: the seal fails, and the console asks to sign in.
		_, err = chromedp.Call(erin.ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: chunkCookie(n - 1), URL: consoleURL + "/"})
		Expect(err).NotTo(HaveOccurred())
		erin.do(chromedp.Navigate(consoleURL+"/roles"), chromedp.WaitVisible(chromedp.ID("signin")))

		// Signing in again, then out: no part is left behind.
		erin.signIn()
		Expect(len(erin.consoleCookies())).To(Equal(n))
		erin.clickAndLoad("#signout")
		Eventually(func() []string {
			var left []string
			for name := range erin.consoleCookies() {
				if strings.HasPrefix(name, sessionCookie) {
					left = append(left, name)
				}
			}
			slices.Sort(left)
			return left
		}).Should(BeEmpty())
	})
})
