package main

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// Cookies. The __Host- prefix makes the browser refuse them unless they
// are Secure, for the path / and without a Domain: no other host, not even
// a sibling subdomain, can set or shadow them.
const (
	sessionCookie = "__Host-kubepim-session"
	loginCookie   = "__Host-kubepim-login"
)

// session is what the console keeps of a signed-in user, encrypted and
// authenticated in a cookie (AES-256-CTR + HMAC-SHA256, gorilla/securecookie),
// so that any replica holding the key can serve the user and none needs a
// store.
type session struct {
	// IDToken is the user's OpenID Connect ID token: the bearer token of
	// every API request made for the user.
	IDToken string `json:"id"`
	// RefreshToken gets a new ID token when this one is about to expire.
	RefreshToken string `json:"rt,omitempty"`
	// AccessToken is the bearer token instead, with --apiserver-token
	// access-token (AKS-managed Entra ID); "" otherwise.
	AccessToken string `json:"at,omitempty"`
	// Expiry of IDToken (and of AccessToken, whichever comes first).
	Expiry time.Time `json:"exp"`
	// Started is when the user signed in; the session ends --session-max-age
	// later whatever the refreshes.
	Started time.Time `json:"st"`
	// CSRF is the token every state-changing form must carry.
	CSRF string `json:"csrf"`
	// Flash is a message for the next page (after a redirect).
	Flash      string `json:"fl,omitempty"`
	FlashError bool   `json:"fe,omitempty"`
}

// bearer is the token the API server is given: the access token when the
// console is configured to send it, the ID token otherwise.
func (s *session) bearer() string {
	if s.AccessToken != "" {
		return s.AccessToken
	}
	return s.IDToken
}

// loginState is the short-lived cookie of a sign-in under way: what the
// callback must see again (state, nonce) and the PKCE verifier.
type loginState struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Next     string    `json:"next"`
	Created  time.Time `json:"c"`
}

const loginTimeout = 10 * time.Minute

// cookieCodecs derives a hash and an encryption key from each key: the
// first encodes, every one decodes (rotation: put the new key first, keep
// the old one until the sessions it sealed have ended).
func cookieCodecs(keys [][]byte, maxAge time.Duration) ([]securecookie.Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("no session key")
	}
	var pairs [][]byte
	for i, k := range keys {
		if len(k) < 32 {
			return nil, fmt.Errorf("session key %d is %d bytes: it must have at least 32", i+1, len(k))
		}
		hashKey, err := hkdf.Key(sha256.New, k, nil, "kubepim-console cookie authentication", 64)
		if err != nil {
			return nil, err
		}
		blockKey, err := hkdf.Key(sha256.New, k, nil, "kubepim-console cookie encryption", 32)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, hashKey, blockKey)
	}
	codecs := securecookie.CodecsFromPairs(pairs...)
	for _, c := range codecs {
		sc := c.(*securecookie.SecureCookie)
		sc.SetSerializer(securecookie.JSONEncoder{})
		sc.MaxAge(int(maxAge.Seconds()))
		sc.MaxLength(maxSealed)
	}
	return codecs, nil
}

// parseSessionKeys reads a key file: one key a line (raw text, at least
// 32 bytes), the newest first.
func parseSessionKeys(raw []byte) [][]byte {
	var keys [][]byte
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			keys = append(keys, line)
		}
	}
	return keys
}

func (s *Server) setCookie(w http.ResponseWriter, name string, value any, maxAge time.Duration) error {
	encoded, err := securecookie.EncodeMulti(name, value, s.codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: encoded, Path: "/", MaxAge: int(maxAge.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

func (s *Server) getCookie(r *http.Request, name string, dst any) error {
	c, err := r.Cookie(name)
	if err != nil {
		return err
	}
	return securecookie.DecodeMulti(name, c.Value, dst, s.codecs...)
}

// Cookie splitting. A browser keeps at most about 4 KB a cookie, and a
// session holds an ID token and a refresh token: an Entra ID token with
// many groups is larger than that. A sealed session longer than
// cookieChunk is cut into parts: the session cookie holds "n." and the
// first part, and __Host-kubepim-session-1 … -(n-1) the others ("." is no
// base64url character: a value without it is a whole session, as before).
// The parts are reassembled, then opened as one: the seal (HMAC) covers
// the whole, so a part swapped, missing or left over from an older
// session fails it. At most maxSessionChunks parts (the request's Cookie
// header grows with them; proxies in front of the console must allow it).
const (
	cookieChunk      = 3800
	maxSessionChunks = 8
	// maxSealed is the longest sealed session (securecookie refuses
	// longer values, 4096 by default, on both ends).
	maxSealed = cookieChunk * maxSessionChunks
)

func chunkCookie(i int) string { return sessionCookie + "-" + strconv.Itoa(i) }

// sessionValue reassembles the session cookie's value.
func sessionValue(r *http.Request) (string, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", err
	}
	count, first, split := strings.Cut(c.Value, ".")
	if !split {
		return c.Value, nil
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 2 || n > maxSessionChunks {
		return "", errors.New("a split session cookie with a bad part count")
	}
	var b strings.Builder
	b.WriteString(first)
	for i := 1; i < n; i++ {
		part, err := r.Cookie(chunkCookie(i))
		if err != nil {
			return "", fmt.Errorf("part %d of %d of the session cookie is missing", i+1, n)
		}
		b.WriteString(part.Value)
	}
	return b.String(), nil
}

// getSession opens the request's session (whole or in parts).
func (s *Server) getSession(r *http.Request, dst *session) error {
	v, err := sessionValue(r)
	if err != nil {
		return err
	}
	return s.getCookieValue(v, dst)
}

// getCookieValue opens a session cookie's (reassembled) value.
func (s *Server) getCookieValue(value string, dst *session) error {
	return securecookie.DecodeMulti(sessionCookie, value, dst, s.codecs...)
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// clearSession removes the session cookie and every part r carries.
func clearSession(w http.ResponseWriter, r *http.Request) {
	clearCookie(w, sessionCookie)
	clearChunks(w, r, 1)
}

// clearChunks removes the parts from the from-th on that r carries (all
// that may exist when r is nil).
func clearChunks(w http.ResponseWriter, r *http.Request, from int) {
	for i := from; i < maxSessionChunks; i++ {
		if r != nil {
			if _, err := r.Cookie(chunkCookie(i)); err != nil {
				continue
			}
		}
		clearCookie(w, chunkCookie(i))
	}
}

// saveSession seals the session into its cookie, in parts when it is
// longer than cookieChunk; parts of an older, longer session that r
// carries are removed.
func (s *Server) saveSession(w http.ResponseWriter, r *http.Request, sess *session) error {
	encoded, err := securecookie.EncodeMulti(sessionCookie, sess, s.codecs...)
	if err != nil {
		return err
	}
	set := func(name, value string) {
		http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(s.opts.SessionMaxAge.Seconds()),
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	if len(encoded) <= cookieChunk {
		set(sessionCookie, encoded)
		clearChunks(w, r, 1)
		return nil
	}
	var parts []string
	for len(encoded) > 0 {
		n := min(cookieChunk, len(encoded))
		parts, encoded = append(parts, encoded[:n]), encoded[n:]
	}
	set(sessionCookie, strconv.Itoa(len(parts))+"."+parts[0])
	for i := 1; i < len(parts); i++ {
		set(chunkCookie(i), parts[i])
	}
	clearChunks(w, r, len(parts))
	return nil
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
