package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// login starts the authorization code flow with PKCE: a fresh state,
// nonce and verifier in a short-lived sealed cookie, then to the provider.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	st := loginState{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
		Next: localPath(r.URL.Query().Get("next")), Created: s.opts.Clock.Now()}
	if err := s.setCookie(w, loginCookie, st, loginTimeout); err != nil {
		s.renderError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	http.Redirect(w, r, s.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

// callback finishes a sign-in: the state must be the one this browser
// started with, the code is exchanged with the PKCE verifier, and the ID
// token must verify (issuer, audience, signature, expiry, nonce).
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	var st loginState
	err := s.getCookie(r, loginCookie, &st)
	clearCookie(w, loginCookie)
	q := r.URL.Query()
	switch {
	case err != nil || s.opts.Clock.Since(st.Created) > loginTimeout:
		s.renderError(w, r, http.StatusBadRequest, "This sign-in was not started here, or took too long. Sign in again.")
		return
	case !sameToken(q.Get("state"), st.State):
		s.renderError(w, r, http.StatusBadRequest, "This sign-in does not match the one this browser started. Sign in again.")
		return
	case q.Get("error") != "":
		s.renderError(w, r, http.StatusUnauthorized, "The identity provider refused the sign-in: "+q.Get("error")+" "+q.Get("error_description"))
		return
	}
	ctx := oidc.ClientContext(r.Context(), s.idpClient)
	tok, err := s.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.renderError(w, r, http.StatusBadGateway, "Exchanging the sign-in code with the identity provider failed: "+err.Error())
		return
	}
	sess, err := s.sessionFrom(ctx, tok, st.Nonce)
	if err != nil {
		s.renderError(w, r, http.StatusUnauthorized, err.Error())
		return
	}
	sess.Started, sess.CSRF = s.opts.Clock.Now(), randomToken()
	if err := s.saveSession(w, r, sess); err != nil {
		s.renderError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	http.Redirect(w, r, localPath(st.Next), http.StatusSeeOther)
}

// sessionFrom verifies the ID token of a token response. nonce is checked
// on sign-in; a refreshed ID token carries none.
func (s *Server) sessionFrom(ctx context.Context, tok *oauth2.Token, nonce string) (*session, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("the identity provider sent no ID token")
	}
	id, err := s.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("the ID token did not verify: %w", err)
	}
	if nonce != "" && !sameToken(id.Nonce, nonce) {
		return nil, errors.New("the ID token was not issued for this sign-in (nonce)")
	}
	sess := &session{IDToken: raw, RefreshToken: tok.RefreshToken, Expiry: id.Expiry}
	if s.opts.AccessTokenBearer {
		if tok.AccessToken == "" {
			return nil, errors.New("the identity provider sent no access token (--apiserver-token access-token)")
		}
		sess.AccessToken = tok.AccessToken
		if !tok.Expiry.IsZero() && tok.Expiry.Before(sess.Expiry) {
			sess.Expiry = tok.Expiry
		}
	}
	return sess, nil
}

// refresh gets a new ID token with the refresh token.
func (s *Server) refresh(ctx context.Context, sess *session) error {
	if sess.RefreshToken == "" {
		return errors.New("no refresh token")
	}
	ctx = oidc.ClientContext(ctx, s.idpClient)
	tok, err := s.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: sess.RefreshToken}).Token()
	if err != nil {
		return err
	}
	fresh, err := s.sessionFrom(ctx, tok, "")
	if err != nil {
		return err
	}
	sess.IDToken, sess.AccessToken, sess.Expiry = fresh.IDToken, fresh.AccessToken, fresh.Expiry
	if fresh.RefreshToken != "" {
		sess.RefreshToken = fresh.RefreshToken
	}
	return nil
}

// revokeTimeout bounds the revocation call of a sign-out.
const revokeTimeout = 5 * time.Second

// revoke asks the provider to revoke the session's refresh token (RFC
// 7009, authenticated as the console's client), so that the token, which
// outlives the cookie in the browser's history or a stolen copy, gets no
// new ID token. Best effort: the sign-out goes on whatever the provider
// says, and a failure is logged.
func (s *Server) revoke(ctx context.Context, sess *session) {
	if s.revocation == "" || sess.RefreshToken == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	form := url.Values{"token": {sess.RefreshToken}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		s.opts.Log.Warn("revoking the refresh token", "error", err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// client_secret_basic: the client ID and secret form-encoded first
	// (RFC 6749 section 2.3.1).
	req.SetBasicAuth(url.QueryEscape(s.opts.ClientID), url.QueryEscape(s.opts.ClientSecret))
	resp, err := s.idpClient.Do(req)
	if err != nil {
		s.opts.Log.Warn("revoking the refresh token", "error", err.Error())
		return
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		s.opts.Log.Warn("revoking the refresh token", "status", resp.Status, "body", string(body))
	}
}

// logout ends the session here, revokes its refresh token at the provider
// (RFC 7009, when discovery names a revocation endpoint) and, when the
// provider supports it (RP-initiated logout), ends the session there.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	sess := &session{}
	err := s.getSession(r, sess)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err == nil && (r.ParseForm() != nil || !sameToken(r.PostForm.Get("csrf"), sess.CSRF)) {
		s.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from this console. Reload the page and try again.")
		return
	}
	clearSession(w, r)
	if err == nil {
		s.revoke(r.Context(), sess)
	}
	if err != nil || s.endSession == "" {
		http.Redirect(w, r, "/signed-out", http.StatusSeeOther)
		return
	}
	v := url.Values{"id_token_hint": {sess.IDToken}, "post_logout_redirect_uri": {s.opts.URL + "/signed-out"}, "client_id": {s.opts.ClientID}}
	http.Redirect(w, r, s.endSession+"?"+v.Encode(), http.StatusSeeOther)
}

func (s *Server) signedOut(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin", page{Title: "Signed out", Flash: "You are signed out.", Data: "/auth/login"})
}
