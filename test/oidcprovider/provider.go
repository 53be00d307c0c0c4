// Package oidcprovider is a real OpenID Connect provider for tests and
// make dev, built on the zitadel/oidc op package: the authorization code
// flow with PKCE, refresh tokens (rotated), RP-initiated logout, signed ID
// tokens carrying preferred_username, email, groups and amr. Users sign in
// on its own login page with a password, and those with a TOTP secret also
// with a one-time code (then amr is ["pwd", "otp"]). It serves HTTPS on
// loopback with a certificate of its own CA, since kube-apiserver trusts
// only an https issuer.
//
// It is a test identity provider: users live in memory, there is no
// single sign-on session (every authorization asks for the password
// again), no consent page, and one client.
package oidcprovider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
)

// ScopeGroups asks for the groups claim.
const ScopeGroups = "groups"

// Scopes is what a client asks for to get every claim kubepim maps.
var Scopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, ScopeGroups, oidc.ScopeOfflineAccess}

// Options configure a provider. Every field is optional.
type Options struct {
	// Addr to listen on; default 127.0.0.1:0 (a free port).
	Addr string
	// Dir, when set, receives ca.crt (the CA to trust), tls.crt and tls.key.
	Dir string
	// CA signs the serving certificate; default a new one.
	CA *CA
	// ClientID (default kubepim-console) and ClientSecret (default random)
	// of the one client.
	ClientID, ClientSecret string
	// RedirectURIs and PostLogoutRedirectURIs the client may use; more can
	// be allowed later with AllowRedirect.
	RedirectURIs, PostLogoutRedirectURIs []string
	// Users; default SampleUsers().
	Users []User
	// TokenLifetime of ID and access tokens; default 1h.
	TokenLifetime time.Duration
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is the https URL the tokens name and the discovery document
	// is served under.
	Issuer string
	CA     *CA
	// CAFile is Dir/ca.crt when Dir was given.
	CAFile string
	// Leaf is the serving certificate.
	Leaf                   *Leaf
	ClientID, ClientSecret string
	users                  []User

	store    *storage
	srv      *http.Server
	mu       sync.Mutex
	redirect []string
	logout   []string
	// jwtAccess: see JWTAccessTokens.
	jwtAccess atomic.Bool
}

// JWTAccessTokens makes the provider issue access tokens as JWTs signed
// with its key, carrying the user's preferred_username, email and groups
// and the client ID as audience (as an API server's resource token would,
// AKS-managed Entra ID's for instance), or opaque ones again.
func (p *Provider) JWTAccessTokens(on bool) { p.jwtAccess.Store(on) }

// signInRedirect is where SignIn's code lands; nothing listens there, the
// flow stops at the redirect.
const signInRedirect = "https://127.0.0.1/oidcprovider/signed-in"

// Start serves a provider until Stop.
func Start(o Options) (*Provider, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.ClientID == "" {
		o.ClientID = "kubepim-console"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = randomPassword() + randomPassword()
	}
	if o.Users == nil {
		o.Users = SampleUsers()
	}
	if o.TokenLifetime == 0 {
		o.TokenLifetime = time.Hour
	}
	if o.CA == nil {
		ca, err := NewCA("kubepim test OpenID provider CA")
		if err != nil {
			return nil, err
		}
		o.CA = ca
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	leaf, err := o.CA.Issue(host)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	p := &Provider{
		Issuer: "https://" + net.JoinHostPort(host, port), CA: o.CA, Leaf: leaf,
		ClientID: o.ClientID, ClientSecret: o.ClientSecret, users: o.Users,
		redirect: append([]string{signInRedirect}, o.RedirectURIs...), logout: slices.Clone(o.PostLogoutRedirectURIs),
	}
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			_ = ln.Close()
			return nil, err
		}
		p.CAFile = filepath.Join(o.Dir, "ca.crt")
		if err := os.WriteFile(p.CAFile, o.CA.CertPEM, 0o644); err != nil {
			_ = ln.Close()
			return nil, err
		}
		if _, _, err := leaf.WriteFiles(o.Dir, "tls"); err != nil {
			_ = ln.Close()
			return nil, err
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	p.store = &storage{
		users: map[string]User{}, key: signingKey{id: newID()[:16], key: key},
		requests: map[string]*authRequest{}, codes: map[string]string{},
		refresh: map[string]*refreshToken{}, access: map[string]accessToken{},
		client: &client{id: o.ClientID, secret: o.ClientSecret, lifetime: o.TokenLifetime,
			mu: &p.mu, redirects: &p.redirect, logouts: &p.logout, jwtAccess: &p.jwtAccess},
	}
	for _, u := range o.Users {
		p.store.users[u.Username] = u
	}
	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:])
	provider, err := op.NewOpenIDProvider(p.Issuer, &op.Config{
		CryptoKey: cryptoKey, CodeMethodS256: true, AuthMethodPost: true, GrantTypeRefreshToken: true,
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "azp",
			"preferred_username", "name", "email", "email_verified", "groups"},
		SupportedScopes: Scopes,
	}, p.store)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	login := op.NewIssuerInterceptor(provider.IssuerFromRequest).Handler(p.loginHandler(op.AuthCallbackURL(provider)))
	mux.Handle("/login", login)
	mux.Handle("/", provider)
	p.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12},
		ErrorLog:          nil,
	}
	go func() { _ = p.srv.ServeTLS(ln, "", "") }()
	return p, nil
}

// Stop stops serving.
func (p *Provider) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}

// AllowRedirect lets the client use one more redirect URI (a console whose
// port is known only once it listens) and its post-logout redirect.
func (p *Provider) AllowRedirect(redirectURI, postLogoutURI string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if redirectURI != "" {
		p.redirect = append(p.redirect, redirectURI)
	}
	if postLogoutURI != "" {
		p.logout = append(p.logout, postLogoutURI)
	}
}

// Users are the provider's users.
func (p *Provider) Users() []User { return slices.Clone(p.users) }

// User returns the user named name; it panics if there is none (tests).
func (p *Provider) User(name string) User {
	for _, u := range p.users {
		if u.Username == name {
			return u
		}
	}
	panic("oidcprovider: no user " + name)
}

// HTTPClient trusts the provider's CA.
func (p *Provider) HTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.CA.Pool(), MinVersion: tls.VersionTLS12}}}
}

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in — kubepim test identity provider</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Sign in</h1><p>kubepim test identity provider</p>
{{if .Error}}<p role="alert" id="error">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<p><label for="username">Username</label> <input id="username" name="username" autocomplete="username" required value="{{.Username}}"></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><label for="otp">One-time code (if you have a second factor)</label> <input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code"></p>
<p><button id="signin" type="submit">Sign in</button></p>
</form></main></body></html>`))

// loginHandler shows the login form and checks what the user typed: the
// password, and for users with a TOTP secret a current one-time code.
func (p *Provider) loginHandler(callback func(context.Context, string) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self' https: http:; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		id := r.Form.Get("authRequestID")
		if _, err := p.store.AuthRequestByID(r.Context(), id); err != nil {
			http.Error(w, "unknown or expired sign-in; start again from the application", http.StatusBadRequest)
			return
		}
		data := struct{ ID, Username, Error string }{ID: id}
		if r.Method == http.MethodPost {
			data.Username = r.Form.Get("username")
			amr, err := p.check(data.Username, r.Form.Get("password"), strings.TrimSpace(r.Form.Get("otp")))
			if err == nil {
				if err := p.store.finish(id, data.Username, amr); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
				return
			}
			data.Error = err.Error()
			w.WriteHeader(http.StatusUnauthorized)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = loginPage.Execute(w, data)
	})
}

// check returns the authentication methods a user proved (RFC 8176), or
// why signing in failed.
func (p *Provider) check(username, password, code string) ([]string, error) {
	p.store.mu.Lock()
	u, ok := p.store.users[username]
	p.store.mu.Unlock()
	if !ok || password == "" || password != u.Password {
		return nil, errors.New("wrong username or password")
	}
	if u.TOTPSecret == "" {
		return []string{"pwd"}, nil
	}
	if code == "" {
		return nil, errors.New("this account has a second factor: enter the one-time code from your authenticator")
	}
	if !totp.Validate(code, u.TOTPSecret) {
		return nil, errors.New("wrong one-time code")
	}
	return []string{"pwd", "otp"}, nil
}

// OAuth2Config is the client's configuration for redirectURI.
func (p *Provider) OAuth2Config(redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: redirectURI, Scopes: Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.Issuer + "/authorize", TokenURL: p.Issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
}

// SignIn signs a user in without a browser, through the same login form
// and the authorization code flow with PKCE, and returns the tokens (the
// ID token is token.Extra("id_token")). code is the one-time code, or ""
// to compute a current one from the user's TOTP secret.
func (p *Provider) SignIn(ctx context.Context, username, password, code string) (*oauth2.Token, error) {
	if code == "" {
		for _, u := range p.users {
			if u.Username == username && u.TOTPSecret != "" {
				c, err := u.Code(time.Now())
				if err != nil {
					return nil, err
				}
				code = c
			}
		}
	}
	conf := p.OAuth2Config(signInRedirect)
	verifier, state := oauth2.GenerateVerifier(), newID()
	hc := p.HTTPClient()
	hc.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), signInRedirect) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := hc.Get(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if id == "" {
		return nil, fmt.Errorf("authorize did not lead to the login page: %s %s", resp.Status, resp.Request.URL)
	}
	resp, err = hc.PostForm(p.Issuer+"/login", url.Values{"authRequestID": {id}, "username": {username}, "password": {password}, "otp": {code}})
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("signing in as %s: %s: %s", username, resp.Status, errorOf(string(body)))
	}
	if loc.Query().Get("state") != state {
		return nil, errors.New("state mismatch")
	}
	if e := loc.Query().Get("error"); e != "" {
		return nil, fmt.Errorf("%s: %s", e, loc.Query().Get("error_description"))
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.HTTPClient())
	return conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
}

// IDToken signs a user in (SignIn) and returns the ID token.
func (p *Provider) IDToken(ctx context.Context, username string) (string, error) {
	u := p.User(username)
	tok, err := p.SignIn(ctx, username, u.Password, "")
	if err != nil {
		return "", err
	}
	id, _ := tok.Extra("id_token").(string)
	if id == "" {
		return "", errors.New("no id_token in the token response")
	}
	return id, nil
}

func errorOf(page string) string {
	_, after, ok := strings.Cut(page, `id="error">`)
	if !ok {
		return strings.TrimSpace(page)
	}
	msg, _, _ := strings.Cut(after, "<")
	return msg
}
