package oidcprovider_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubepim/kubepim/test/kubepimtest"
	"github.com/kubepim/kubepim/test/oidcprovider"
)

type claims struct {
	Username string   `json:"preferred_username"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
	AMR      []string `json:"amr"`
}

func verify(t *testing.T, p *oidcprovider.Provider, raw string) claims {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), p.HTTPClient())
	provider, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := provider.Verifier(&oidc.Config{ClientID: p.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// The provider signs users in with a password, and those with a second
// factor with a one-time code too; the ID token says which (amr), and a
// refreshed one still does.
func TestSignInAndRefresh(t *testing.T) {
	p, err := oidcprovider.Start(oidcprovider.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx := context.Background()

	alice := p.User("alice")
	if _, err := p.SignIn(ctx, "alice", "wrong", "000000"); err == nil || !strings.Contains(err.Error(), "wrong username or password") {
		t.Fatalf("a wrong password: %v", err)
	}
	if _, err := p.SignIn(ctx, "alice", alice.Password, "000000"); err == nil || !strings.Contains(err.Error(), "wrong one-time code") {
		t.Fatalf("a wrong code: %v", err)
	}
	tok, err := p.SignIn(ctx, "alice", alice.Password, "")
	if err != nil {
		t.Fatal(err)
	}
	c := verify(t, p, tok.Extra("id_token").(string))
	if c.Username != "alice" || c.Email != "alice@example.com" || !slices.Equal(c.Groups, []string{"developers"}) || !slices.Equal(c.AMR, []string{"pwd", "otp"}) {
		t.Fatalf("alice's claims: %+v", c)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	conf := p.OAuth2Config("unused")
	refreshed, err := conf.TokenSource(oidc.ClientContext(ctx, p.HTTPClient()), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if err != nil {
		t.Fatal(err)
	}
	c = verify(t, p, refreshed.Extra("id_token").(string))
	if !slices.Equal(c.AMR, []string{"pwd", "otp"}) || c.Username != "alice" {
		t.Fatalf("refreshed claims: %+v", c)
	}
	if refreshed.RefreshToken == tok.RefreshToken {
		t.Fatal("the refresh token was not rotated")
	}
	// A used refresh token is spent.
	if _, err := conf.TokenSource(oidc.ClientContext(ctx, p.HTTPClient()), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token(); err == nil {
		t.Fatal("a used refresh token worked again")
	}

	bob := p.User("bob")
	tok, err = p.SignIn(ctx, "bob", bob.Password, "")
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, p, tok.Extra("id_token").(string)); !slices.Equal(c.AMR, []string{"pwd"}) || !slices.Equal(c.Groups, []string{"sre"}) {
		t.Fatalf("bob's claims: %+v", c)
	}
	mallory := p.User("mallory")
	tok, err = p.SignIn(ctx, "mallory", mallory.Password, "")
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, p, tok.Extra("id_token").(string)); len(c.Groups) != 0 || c.Username != "mallory" {
		t.Fatalf("mallory's claims: %+v", c)
	}
}

// kube-apiserver, configured with config/console/authentication-config.yaml,
// accepts the provider's ID tokens: the user, the groups and how the user
// signed in (amr, in user extra kubepim.io/amr) are what the API server
// sees, so RBAC and kubepim's webhooks see them too.
func TestAPIServerAcceptsTheProvidersTokens(t *testing.T) {
	p, err := oidcprovider.Start(oidcprovider.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	root := filepath.Join("..", "..")
	authn, err := kubepimtest.OIDCAuthentication(root, p.Issuer, p.ClientID, p.CA.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	env, err := kubepimtest.StartWith(root, kubepimtest.Options{AuthenticationConfig: authn})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctx := context.Background()

	for _, tc := range []struct {
		user   string
		groups []string
		amr    []string
	}{
		{"alice", []string{"developers"}, []string{"pwd", "otp"}},
		{"dave", []string{"sre", "sre-leads"}, []string{"pwd"}},
	} {
		token, err := p.IDToken(ctx, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		review, err := env.WaitForToken(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		u := review.Status.UserInfo
		if u.Username != tc.user {
			t.Errorf("%s: username %q", tc.user, u.Username)
		}
		for _, g := range append(tc.groups, "system:authenticated") {
			if !slices.Contains(u.Groups, g) {
				t.Errorf("%s: groups %v lack %s", tc.user, u.Groups, g)
			}
		}
		if got := []string(u.Extra[kubepimtest.MFAClaim]); !slices.Equal(got, tc.amr) {
			t.Errorf("%s: extra %s = %v, want %v (all extra: %v)", tc.user, kubepimtest.MFAClaim, got, tc.amr, u.Extra)
		}
		if got := []string(u.Extra["kubepim.io/email"]); !slices.Equal(got, []string{tc.user + "@example.com"}) {
			t.Errorf("%s: extra email = %v", tc.user, got)
		}
	}
	// Anything else is not.
	cs, err := kubernetes.NewForConfig(env.BearerConfig("not-a-token"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("a made-up token: %v", err)
	}
}
