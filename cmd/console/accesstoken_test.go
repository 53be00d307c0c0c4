package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/kubepim/kubepim/test/kubepimtest"
)

var _ = Describe("A console giving the API server the access token", Ordered, func() {
	It("acts as bob with his access token (--apiserver-token=access-token), never his ID token", func() {
		ctx := context.Background()
		// Access tokens as JWTs with bob's claims, for the console's client:
		// what AKS-managed Entra ID issues for the AKS server application,
		// here accepted by the suite's API server configuration.
		idp.JWTAccessTokens(true)
		DeferCleanup(func() { idp.JWTAccessTokens(false) })

		srv := httptest.NewUnstartedServer(nil)
		url := "https://" + srv.Listener.Addr().String()
		s, err := New(ctx, Options{URL: url, IssuerURL: idp.Issuer, IssuerCA: idp.CA.Pool(), ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			SessionKeys: [][]byte{[]byte("an-access-token-console-key-of-32-bytes")}, Kube: env.Config, MFAClaim: kubepimtest.MFAClaim,
			Namespace: kubepimtest.Namespace, ExtraScopes: []string{"kubepim-test/.default"}, AccessTokenBearer: true,
			Log: slog.New(slog.NewTextHandler(GinkgoWriter, nil))})
		Expect(err).NotTo(HaveOccurred())
		// What the console sends the API server.
		var mu sync.Mutex
		sent := map[string]int{}
		base := s.kube.base
		s.kube.base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			sent[r.Header.Get("Authorization")]++
			mu.Unlock()
			return base.RoundTrip(r)
		})
		srv.Config.Handler = s
		srv.StartTLS()
		DeferCleanup(srv.Close)

		tok, err := idp.SignIn(ctx, "bob", idp.User("bob").Password, "")
		Expect(err).NotTo(HaveOccurred())
		sess, err := s.sessionFrom(ctx, tok, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(sess.AccessToken, ".")).To(Equal(2), "a JWT access token")
		Expect(sess.AccessToken).NotTo(Equal(sess.IDToken))
		sess.Started, sess.CSRF = time.Now(), randomToken()
		_, err = env.WaitForToken(ctx, sess.AccessToken)
		Expect(err).NotTo(HaveOccurred())
		rec := httptest.NewRecorder()
		Expect(s.saveSession(rec, nil, sess)).To(Succeed())

		req, err := http.NewRequest(http.MethodGet, url+"/roles", nil)
		Expect(err).NotTo(HaveOccurred())
		for _, c := range rec.Result().Cookies() {
			if c.MaxAge >= 0 {
				req.AddCookie(c)
			}
		}
		hc := srv.Client()
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := hc.Do(req)
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s", body)
		Expect(string(body)).To(And(ContainSubstring(`id="whoami">bob<`), ContainSubstring(`data-role="secret-reader"`)),
			"the API server took the access token for bob, with his group sre")
		mu.Lock()
		defer mu.Unlock()
		Expect(sent).To(HaveKey("Bearer " + sess.AccessToken))
		Expect(sent).NotTo(HaveKey("Bearer "+sess.IDToken), "the ID token never reaches the API server")
		Expect(sent).To(HaveLen(1), "one credential only: %v", len(sent))
	})
})
