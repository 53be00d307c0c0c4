package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

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
	if err := s.saveSession(w, sess); err != nil {
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
	return &session{IDToken: raw, RefreshToken: tok.RefreshToken, Expiry: id.Expiry}, nil
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
	sess.IDToken, sess.Expiry = fresh.IDToken, fresh.Expiry
	if fresh.RefreshToken != "" {
		sess.RefreshToken = fresh.RefreshToken
	}
	return nil
}

// logout ends the session here and, when the provider supports it
// (RP-initiated logout), there.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	sess := &session{}
	err := s.getCookie(r, sessionCookie, sess)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err == nil && (r.ParseForm() != nil || !sameToken(r.PostForm.Get("csrf"), sess.CSRF)) {
		s.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from this console. Reload the page and try again.")
		return
	}
	clearCookie(w, sessionCookie)
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
