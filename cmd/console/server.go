package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

//go:embed web/templates/*.html
var templateFS embed.FS

//go:embed web/static
var staticFS embed.FS

// Options configure the console.
type Options struct {
	// URL is the console's address as browsers reach it, e.g.
	// https://pim.example.com; the OIDC redirect URI is URL/auth/callback.
	URL string
	// IssuerURL is the OpenID provider the API server trusts.
	IssuerURL string
	// IssuerCA verifies the provider's certificate; nil: the system's roots.
	IssuerCA *x509.CertPool
	// ClientID and ClientSecret of the console at the provider.
	ClientID, ClientSecret string
	// Scopes to ask for besides openid; default profile, email, groups,
	// offline_access.
	Scopes []string
	// ExtraScopes are asked for besides Scopes: with AccessTokenBearer,
	// the API server's resource (AKS-managed Entra ID:
	// 6dae42f8-4368-4678-94ff-3960e28e3630/.default).
	ExtraScopes []string
	// AccessTokenBearer sends the user's OAuth access token to the API
	// server instead of the ID token: for an API server that accepts
	// access tokens of another audience than the console's client (AKS
	// with AKS-managed Entra ID). The ID token still proves the sign-in.
	AccessTokenBearer bool
	// SessionKeys seal the cookies; the first seals, all open.
	SessionKeys [][]byte
	// SessionMaxAge ends a session however often it was refreshed.
	SessionMaxAge time.Duration
	// Kube says where the API server is; its credentials are not used.
	Kube *rest.Config
	// MFAClaim and MFAClaimValues are the manager's --mfa-claim and
	// --mfa-claim-values: a user whose extra carries one is shown that
	// the sign-in satisfies a policy's MFA.
	MFAClaim       string
	MFAClaimValues []string
	// Namespace is kubepim's namespace (where the audit trail's anchor
	// is); default kubepim-system.
	Namespace string
	// ReviewPageSize is how many AccessReviewItems one list call asks for
	// (the API's limit), and about how many a page of a review shows;
	// default 50.
	ReviewPageSize int
	// AssignmentPageSize is how many RoleAssignments a page of Assignments
	// shows (one list call with the API's limit); default 100.
	AssignmentPageSize int
	// ApprovalPageSize is how many requests a page of Approve requests
	// shows at most (the rest: next page); default 50.
	ApprovalPageSize int
	Clock            clock.PassiveClock
	Log              *slog.Logger
}

// Server is the console: an http.Handler.
type Server struct {
	opts       Options
	handler    http.Handler
	oauth      *oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string
	// revocation is the provider's RFC 7009 token revocation endpoint
	// (discovery's revocation_endpoint), "" when it has none.
	revocation string
	idpClient  *http.Client
	codecs     []securecookie.Codec
	kube       *kube
	pages      map[string]*template.Template
	csp        string
}

// New discovers the OpenID provider and builds the console.
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.SessionMaxAge == 0 {
		o.SessionMaxAge = 12 * time.Hour
	}
	if o.MFAClaim == "" {
		o.MFAClaim = "kubepim.io/amr"
	}
	if len(o.MFAClaimValues) == 0 {
		o.MFAClaimValues = []string{"mfa", "otp", "hwk", "swk"}
	}
	if o.Namespace == "" {
		o.Namespace = "kubepim-system"
	}
	if o.ReviewPageSize <= 0 {
		o.ReviewPageSize = 50
	}
	if o.AssignmentPageSize <= 0 {
		o.AssignmentPageSize = 100
	}
	if o.ApprovalPageSize <= 0 {
		o.ApprovalPageSize = 50
	}
	if o.Scopes == nil {
		o.Scopes = []string{"profile", "email", "groups", oidc.ScopeOfflineAccess}
	}
	base, err := url.Parse(o.URL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("the console URL %q must be an absolute https URL (session cookies are Secure)", o.URL)
	}
	o.URL = strings.TrimSuffix(o.URL, "/")
	s := &Server{opts: o}
	s.idpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{RootCAs: o.IssuerCA, MinVersion: tls.VersionTLS12}}}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, s.idpClient), o.IssuerURL)
	if err != nil {
		return nil, fmt.Errorf("discovering the OpenID provider %s: %w", o.IssuerURL, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
	}
	if err := provider.Claims(&extra); err == nil {
		s.endSession, s.revocation = extra.EndSession, extra.Revocation
	}
	s.oauth = &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: o.URL + "/auth/callback", Scopes: append(append([]string{oidc.ScopeOpenID}, o.Scopes...), o.ExtraScopes...)}
	s.verifier = provider.VerifierContext(oidc.ClientContext(context.WithoutCancel(ctx), s.idpClient),
		&oidc.Config{ClientID: o.ClientID, Now: o.Clock.Now})
	if s.codecs, err = cookieCodecs(o.SessionKeys, o.SessionMaxAge); err != nil {
		return nil, err
	}
	if s.kube, err = newKube(o.Kube); err != nil {
		return nil, err
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	// Scripts, styles and images only from the console itself, no inline
	// script or style; forms post to the console (and its sign-out
	// redirects to the provider); no framing.
	formAction := "'self'"
	if issuer, err := url.Parse(o.IssuerURL); err == nil {
		formAction += " " + issuer.Scheme + "://" + issuer.Host
	}
	s.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action " + formAction + "; frame-ancestors 'none'; base-uri 'none'"
	s.handler = s.routes()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "web/static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /auth/login", s.login)
	mux.HandleFunc("GET /auth/callback", s.callback)
	mux.HandleFunc("POST /auth/logout", s.logout)
	mux.HandleFunc("GET /signed-out", s.signedOut)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/roles", http.StatusSeeOther) })
	mux.HandleFunc("GET /roles", s.user(s.myRoles))
	mux.HandleFunc("GET /activate", s.user(s.activateForm))
	mux.HandleFunc("POST /activate", s.user(s.activate))
	mux.HandleFunc("GET /requests", s.user(s.myRequests))
	mux.HandleFunc("GET /requests/{name}", s.user(s.requestPage))
	mux.HandleFunc("GET /requests/{name}/events", s.user(s.requestEvents))
	mux.HandleFunc("POST /requests/{name}/{action}", s.user(s.requestAction))
	mux.HandleFunc("GET /approvals", s.user(s.approvals))
	mux.HandleFunc("GET /reviews", s.user(s.reviews))
	mux.HandleFunc("GET /reviews/{name}", s.user(s.reviewPage))
	mux.HandleFunc("POST /reviews/{name}/items/{item}", s.user(s.decideItem))
	mux.HandleFunc("GET /audit", s.user(s.auditPage))
	mux.HandleFunc("GET /audit/export", s.user(s.auditExport))
	mux.HandleFunc("GET /history", s.user(s.historyPage))
	mux.HandleFunc("GET /assignments", s.user(s.assignmentsPage))
	mux.HandleFunc("POST /assignments", s.user(s.addAssignment))
	mux.HandleFunc("POST /assignments/{name}/remove", s.user(s.removeAssignment))
	mux.HandleFunc("GET /settings", s.user(s.settingsPage))
	mux.HandleFunc("GET /alerts", s.user(s.alertsPage))

	// Browsers say where a request comes from (Sec-Fetch-Site, Origin):
	// a state-changing request from another origin is refused before any
	// handler runs, in addition to the per-session CSRF token.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusForbidden, "This request came from another site and was refused.")
	}))
	return s.headers(cop.Handler(mux))
}

// headers sets the security headers of every response.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// request is one request of a signed-in user: an API client acting as
// the user, who the API server says the user is, and the session.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	c    client.Client
	me   pimv1.UserInfo
	sess *session
	// flash is the message the previous action left for this page.
	flash      string
	flashError bool
}

// maxForm bounds what a form may post.
const maxForm = 64 << 10

// user wraps the handler of a page or action for a signed-in user:
// without a valid session a page sends the user to sign in and an action
// is refused; every POST must carry the session's CSRF token; an ID token
// about to expire is refreshed first.
func (s *Server) user(h func(*request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		sess := &session{}
		if err := s.getSession(r, sess); err != nil {
			if !errors.Is(err, http.ErrNoCookie) {
				// Tampered, sealed with an unknown key, or too old.
				s.opts.Log.Info("refused a session cookie", "error", err.Error(), "remote", r.RemoteAddr)
				clearSession(w, r)
			}
			s.signIn(w, r, "")
			return
		}
		now := s.opts.Clock.Now()
		if now.Sub(sess.Started) > s.opts.SessionMaxAge {
			clearSession(w, r)
			s.signIn(w, r, "Your session has ended. Sign in again.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil || !sameToken(r.PostForm.Get("csrf"), sess.CSRF) {
				s.renderError(w, r, http.StatusForbidden, "This form has expired or did not come from this console. Reload the page and try again.")
				return
			}
		}
		dirty := false
		if sess.Expiry.Sub(now) < time.Minute {
			if err := s.refresh(ctx, sess); err != nil {
				s.opts.Log.Info("could not refresh a session", "error", err.Error())
				clearSession(w, r)
				s.signIn(w, r, "Your session has expired. Sign in again.")
				return
			}
			dirty = true
		}
		c, err := s.kube.as(sess.bearer())
		if err != nil {
			s.renderError(w, r, http.StatusInternalServerError, err.Error())
			return
		}
		me, err := whoami(ctx, c)
		if apierrors.IsUnauthorized(err) {
			clearSession(w, r)
			s.signIn(w, r, "The Kubernetes API server did not accept your sign-in. Sign in again.")
			return
		}
		if err != nil {
			s.renderError(w, r, http.StatusBadGateway, "Asking the Kubernetes API server who you are: "+err.Error())
			return
		}
		req := &request{w: w, r: r, c: c, me: me, sess: sess}
		if sess.Flash != "" && r.Method == http.MethodGet {
			req.flash, req.flashError = sess.Flash, sess.FlashError
			sess.Flash, sess.FlashError = "", false
			dirty = true
		}
		if dirty {
			if err := s.saveSession(w, r, sess); err != nil {
				s.renderError(w, r, http.StatusInternalServerError, err.Error())
				return
			}
		}
		h(req)
	}
}

// signIn sends a page request to sign in (and back), and refuses an
// action: a form posted without a session cannot be replayed after
// signing in.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, msg string) {
	if r.Method != http.MethodGet {
		s.renderError(w, r, http.StatusUnauthorized, "You are not signed in (or your session ended). Sign in and try again.")
		return
	}
	s.render(w, r, http.StatusUnauthorized, "signin", page{Title: "Sign in", Error: msg,
		Data: "/auth/login?next=" + url.QueryEscape(r.URL.RequestURI())})
}

// flashAndGo stores a message for the next page and redirects there.
func (q *request) flashAndGo(s *Server, to, msg string, isError bool) {
	q.sess.Flash, q.sess.FlashError = msg, isError
	if err := s.saveSession(q.w, q.r, q.sess); err != nil {
		s.renderError(q.w, q.r, http.StatusInternalServerError, err.Error())
		return
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
}

// refusal is what kubepim (or RBAC) said when it refused a write, without
// the API server's wrapping.
func refusal(err error) string {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "denied the request: "); ok {
		return after
	}
	return msg
}

// localPath keeps a redirect target on the console: a path, never a URL
// of another site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/roles"
	}
	return p
}
