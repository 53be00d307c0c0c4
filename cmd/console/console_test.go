package main

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/kubepim/kubepim/test/oidcprovider"
)

func TestLocalPathKeepsRedirectsOnTheConsole(t *testing.T) {
	for in, want := range map[string]string{
		"/requests/x?y=1":       "/requests/x?y=1",
		"":                      "/roles",
		"https://evil.example/": "/roles",
		"//evil.example/":       "/roles",
		"/\\evil.example/":      "/roles",
		"javascript:alert(1)":   "/roles",
		"/approvals":            "/approvals",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// The console keeps the API server's address and CA and drops every
// credential it was configured with; a user's client sends that user's
// token and nothing else.
func TestKubeUsesOnlyTheUsersToken(t *testing.T) {
	var got []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview","status":{"userInfo":{"username":"alice","groups":["developers"],"extra":{"kubepim.io/amr":["pwd","otp"]}}}}`)
	}))
	defer api.Close()
	k, err := newKube(&rest.Config{Host: api.URL, BearerToken: "the-admins-token", Username: "admin", Password: "secret",
		Impersonate: rest.ImpersonationConfig{UserName: "root"}})
	if err != nil {
		t.Fatal(err)
	}
	if k.cfg.BearerToken != "" || k.cfg.BearerTokenFile != "" || k.cfg.Username != "" || k.cfg.Password != "" ||
		k.cfg.CertData != nil || k.cfg.KeyData != nil || k.cfg.ExecProvider != nil || k.cfg.AuthProvider != nil || k.cfg.Impersonate.UserName != "" {
		t.Fatalf("credentials kept: %+v", k.cfg)
	}
	c, err := k.as("alices-id-token")
	if err != nil {
		t.Fatal(err)
	}
	me, err := whoami(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if me.Username != "alice" || me.Extra["kubepim.io/amr"][1] != "otp" {
		t.Fatalf("whoami: %+v", me)
	}
	if len(got) != 1 || got[0] != "Bearer alices-id-token" {
		t.Fatalf("Authorization headers sent: %q", got)
	}
}

func TestSessionKeysRotate(t *testing.T) {
	old, current := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 40))
	if _, err := cookieCodecs([][]byte{[]byte("short")}, time.Hour); err == nil {
		t.Fatal("a short key was accepted")
	}
	if keys := parseSessionKeys([]byte("\n" + string(current) + "\n  " + string(old) + "  \n")); len(keys) != 2 || string(keys[0]) != string(current) {
		t.Fatalf("parseSessionKeys: %q", keys)
	}
	before, _ := cookieCodecs([][]byte{old}, time.Hour)
	after, _ := cookieCodecs([][]byte{current, old}, time.Hour)
	sealed, err := securecookie.EncodeMulti(sessionCookie, session{IDToken: "t"}, before...)
	if err != nil {
		t.Fatal(err)
	}
	var s session
	if err := securecookie.DecodeMulti(sessionCookie, sealed, &s, after...); err != nil || s.IDToken != "t" {
		t.Fatalf("a cookie sealed with the previous key: %v", err)
	}
	sealed, _ = securecookie.EncodeMulti(sessionCookie, session{IDToken: "u"}, after...)
	if err := securecookie.DecodeMulti(sessionCookie, sealed, &s, before...); err == nil {
		t.Fatal("a cookie sealed with the new key opened with the old key alone")
	}
	// A cookie of one name does not open as another.
	if err := securecookie.DecodeMulti(loginCookie, sealed, &s, after...); err == nil {
		t.Fatal("a session cookie opened as a login cookie")
	}
}

// testServer is a console without an identity provider: enough for the
// pages a signed-out browser sees and the headers of every response.
func testServer(t *testing.T) *Server {
	t.Helper()
	s := &Server{opts: Options{URL: "https://console.example", Clock: clock.RealClock{}, Log: slog.New(slog.DiscardHandler), SessionMaxAge: time.Hour},
		csp: "default-src 'none'; script-src 'self'; style-src 'self'; frame-ancestors 'none'"}
	var err error
	if s.codecs, err = cookieCodecs([][]byte{[]byte(strings.Repeat("k", 32))}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if s.pages, err = parsePages(); err != nil {
		t.Fatal(err)
	}
	s.handler = s.routes()
	return s
}

func TestSignedOutAndCrossSite(t *testing.T) {
	s := testServer(t)
	do := func(method, path string, header map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "https://console.example"+path, strings.NewReader("csrf=x"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	w := do(http.MethodGet, "/roles", nil)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `href="/auth/login?next=%2Froles"`) {
		t.Fatalf("signed out: %d %s", w.Code, w.Body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cache-Control"} {
		if w.Header().Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if w := do(http.MethodPost, "/activate", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("an action without a session: %d", w.Code)
	}
	if w := do(http.MethodPost, "/requests/x/cancel", map[string]string{"Sec-Fetch-Site": "cross-site"}); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "another site") {
		t.Errorf("a cross-site action: %d %s", w.Code, w.Body)
	}
	if w := do(http.MethodPost, "/requests/x/cancel", map[string]string{"Origin": "https://evil.example"}); w.Code != http.StatusForbidden {
		t.Errorf("an action from another origin: %d", w.Code)
	}
	if w := do(http.MethodGet, "/static/console.css", nil); w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("the stylesheet: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}

// The CSP allows no inline script or style: the templates have none.
var externalScript = regexp.MustCompile(`<script src="/static/[a-z]+\.js" defer></script>`)

func TestTemplatesHaveNoInlineScriptOrStyle(t *testing.T) {
	err := fs.WalkDir(templateFS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := fs.ReadFile(templateFS, path)
		if err != nil {
			return err
		}
		// The one script is a file of the console's own, without inline code.
		lower := strings.ToLower(externalScript.ReplaceAllString(string(raw), ""))
		for _, bad := range []string{"<script", "<style", " style=", " onclick=", " onload=", "javascript:", "http://", "https://"} {
			if strings.Contains(lower, bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Minute: "30m", 90 * time.Minute: "1h30m", 4 * time.Hour: "4h", 48 * time.Hour: "2d",
		13*24*time.Hour + 23*time.Hour + 59*time.Minute: "14d", 3*24*time.Hour + 5*time.Hour: "3d5h",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// With --apiserver-token=access-token the console asks for the extra
// scopes and gives the API server the access token, not the ID token
// (AKS-managed Entra ID); by default the ID token. Against the test
// provider (its access tokens are opaque: which the API server accepts is
// not tested here).
func TestAccessTokenBearer(t *testing.T) {
	p, err := oidcprovider.Start(oidcprovider.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	const aks = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"
	for _, access := range []bool{false, true} {
		s, err := New(context.Background(), Options{URL: "https://console.example", IssuerURL: p.Issuer, IssuerCA: p.CA.Pool(),
			ClientID: p.ClientID, ClientSecret: p.ClientSecret, SessionKeys: [][]byte{[]byte("a-test-key-of-at-least-32-bytes-long")},
			Kube: &rest.Config{Host: "https://127.0.0.1:1"}, ExtraScopes: []string{aks}, AccessTokenBearer: access,
			Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(s.oauth.AuthCodeURL("state"))
		if err != nil {
			t.Fatal(err)
		}
		if scopes := strings.Fields(u.Query().Get("scope")); !slices.Contains(scopes, aks) || !slices.Contains(scopes, "openid") {
			t.Errorf("scopes %v lack %s", scopes, aks)
		}
		tok, err := p.SignIn(context.Background(), "bob", p.User("bob").Password, "")
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.sessionFrom(context.Background(), tok, "")
		if err != nil {
			t.Fatal(err)
		}
		want := tok.Extra("id_token").(string)
		if access {
			want = tok.AccessToken
		}
		if sess.bearer() != want || want == "" {
			t.Errorf("access-token mode %v: the bearer is not the expected token", access)
		}
	}
	if !strings.Contains(discovery(p), "revocation_endpoint") {
		t.Error("the provider's discovery names no revocation endpoint")
	}
}

// discovery reads the provider's discovery document.
func discovery(p *oidcprovider.Provider) string {
	resp, err := p.HTTPClient().Get(p.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
