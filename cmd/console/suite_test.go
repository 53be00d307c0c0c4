package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/test/kubepimtest"
	"github.com/kubepim/kubepim/test/oidcprovider"
)

// The browser suite: a real kube-apiserver (trusting the test OpenID
// provider through config/console/authentication-config.yaml), kubepim's
// manager with its webhooks, the OpenID provider, the console, and a
// headless Chromium that signs users in and clicks through the pages.
var (
	env         *kubepimtest.Env
	stopMgr     func()
	idp         *oidcprovider.Provider
	consoleURL  string
	stopServer  func()
	allocCtx    context.Context
	browserCtx  context.Context
	stopBrowser func()
	console     *Server
	// consoleClock is the console's clock: real time, moved by tests.
	consoleClock = &skewedClock{}
	// daveTOTP is dave's kubepim TOTP enrollment (his identity provider
	// has no second factor for him).
	daveTOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

// skewedClock is the real clock moved by an offset.
type skewedClock struct{ offset atomic.Int64 }

func (c *skewedClock) Now() time.Time                  { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *skewedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *skewedClock) Set(d time.Duration)             { c.offset.Store(int64(d)) }

func TestConsole(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Console Suite")
}

// chromiumPath finds Chromium: $CHROMIUM, or chromium on PATH. make test
// installs Debian's chromium when it is missing (make chromium).
func chromiumPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium: run `make chromium` (apt-get install chromium, as root), or set CHROMIUM; KUBEPIM_SKIP_BROWSER=1 skips the browser suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	if os.Getenv("KUBEPIM_SKIP_BROWSER") != "" {
		Skip("KUBEPIM_SKIP_BROWSER is set")
	}
	chromium, err := chromiumPath()
	Expect(err).NotTo(HaveOccurred())

	idp, err = oidcprovider.Start(oidcprovider.Options{})
	Expect(err).NotTo(HaveOccurred())
	root := filepath.Join("..", "..")
	authn, err := kubepimtest.OIDCAuthentication(root, idp.Issuer, idp.ClientID, idp.CA.CertPEM)
	Expect(err).NotTo(HaveOccurred())
	env, err = kubepimtest.StartWith(root, kubepimtest.Options{AuthenticationConfig: authn})
	Expect(err).NotTo(HaveOccurred())
	env.MFAClaim = kubepimtest.MFAClaim
	stopMgr, err = env.StartManager(clock.RealClock{})
	Expect(err).NotTo(HaveOccurred())
	seed()

	// The console, on loopback over HTTPS with a certificate of the
	// provider's CA. It is given the admin's rest config on purpose: it must
	// keep only the address and the CA.
	leaf, err := idp.CA.Issue()
	Expect(err).NotTo(HaveOccurred())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	consoleURL = "https://" + ln.Addr().String()
	idp.AllowRedirect(consoleURL+"/auth/callback", consoleURL+"/signed-out")
	console, err = New(context.Background(), Options{
		URL: consoleURL, IssuerURL: idp.Issuer, IssuerCA: idp.CA.Pool(), ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
		SessionKeys: [][]byte{[]byte(oidcprovider.SampleUsers()[0].Password + "-a-key-of-at-least-32-bytes")},
		Kube:        env.Config, MFAClaim: kubepimtest.MFAClaim, Clock: consoleClock,
		// Two items a list call: a review of five has three pages; four
		// assignments a page of Assignments.
		Namespace: kubepimtest.Namespace, ReviewPageSize: 2, AssignmentPageSize: 4,
		Log: slog.New(slog.NewTextHandler(GinkgoWriter, nil)),
	})
	Expect(err).NotTo(HaveOccurred())
	srv := &http.Server{Handler: console, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	stopServer = func() { _ = srv.Close() }

	// One browser for the suite; each user gets a browser context of their
	// own (cookies apart), as separate people on separate machines.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Trust exactly the two loopback servers' keys.
		chromedp.Flag("ignore-certificate-errors-spki-list", idp.Leaf.SPKIHash()+","+leaf.SPKIHash()),
		chromedp.UserDataDir(GinkgoT().TempDir()), chromedp.WindowSize(1280, 1000),
	}
	var cancelAlloc context.CancelFunc
	allocCtx, cancelAlloc = chromedp.NewExecAllocator(context.Background(), opts...)
	var cancelBrowser context.CancelFunc
	browserCtx, cancelBrowser = chromedp.NewContext(allocCtx)
	Expect(chromedp.Do(browserCtx)).To(Succeed()) // starts Chromium
	stopBrowser = func() { cancelBrowser(); cancelAlloc() }
})

var _ = AfterSuite(func() {
	if stopBrowser != nil {
		stopBrowser()
	}
	if stopServer != nil {
		stopServer()
	}
	if stopMgr != nil {
		stopMgr()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
	if idp != nil {
		idp.Stop()
	}
})

// seed makes the cluster of the walkthrough: alice eligible for
// pod-debugger (MFA, justification), group sre eligible for the Role
// secret-reader in prod (ticket, one approval from sre-leads or carol),
// and the shipped user roles bound as config/samples binds them.
func seed() {
	ctx := context.Background()
	permanent := pimv1.AssignmentPolicy{
		Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)},
		Active:   pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(true)},
	}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-debugger"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader", Namespace: "prod"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}},
		&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "pod-debugger"}, Spec: pimv1.RoleSettingSpec{
			RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pod-debugger"},
			Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: 4 * time.Hour}, RequireJustification: ptr.To(true), RequireMFA: true,
				Approval: pimv1.ApprovalPolicy{RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour}}},
			Assignment: permanent,
		}},
		&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"}, Spec: pimv1.RoleSettingSpec{
			RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindRole, Name: "secret-reader", Namespace: "prod"},
			Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireJustification: ptr.To(true), RequireTicket: true,
				Approval: pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour},
					Approvers: []pimv1.Principal{{Kind: pimv1.SubjectKindGroup, Name: "sre-leads"}, {Kind: pimv1.SubjectKindUser, Name: "carol"}}}},
			Assignment: permanent,
		}},
		&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "alice-pod-debugger"}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "alice"}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pod-debugger"},
			Type: pimv1.AssignmentEligible}},
		&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "dave-pod-debugger"}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "dave"}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "pod-debugger"},
			Type: pimv1.AssignmentEligible}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: mfa.TOTPSecretName("dave"), Namespace: kubepimtest.Namespace,
			Labels: map[string]string{mfa.LabelTOTPEnrollment: "true"}, Annotations: map[string]string{mfa.AnnotationTOTPUser: "dave"}},
			Data: map[string][]byte{mfa.SecretKeyTOTP: []byte(daveTOTP)}},
		&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "sre-secret-reader"}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "sre"}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: "secret-reader"},
			Namespace: "prod", Type: pimv1.AssignmentEligible}},
	}
	for _, obj := range objs {
		Expect(env.Client.Create(ctx, obj)).To(Succeed())
	}
	for _, b := range []struct{ role, kind, name string }{
		{kubepimtest.RoleRequester, rbacv1.GroupKind, "system:authenticated"},
		{kubepimtest.RoleApprover, rbacv1.GroupKind, "sre-leads"},
		{kubepimtest.RoleApprover, rbacv1.UserKind, "carol"},
		{kubepimtest.RoleAuditor, rbacv1.GroupKind, "auditors"},
	} {
		_, err := env.Bind(b.role, b.kind, b.name)
		Expect(err).NotTo(HaveOccurred())
	}
	for _, name := range []string{"alice-pod-debugger", "dave-pod-debugger", "sre-secret-reader"} {
		Eventually(func() pimv1.AssignmentState {
			ra := &pimv1.RoleAssignment{}
			_ = env.Client.Get(ctx, client.ObjectKey{Name: name}, ra)
			return ra.Status.State
		}).Should(Equal(pimv1.AssignmentStateEligible))
	}
	for _, name := range []string{"pod-debugger", "secret-reader"} {
		Eventually(func() int64 {
			rs := &pimv1.RoleSetting{}
			_ = env.Client.Get(ctx, client.ObjectKey{Name: name}, rs)
			return rs.Status.ObservedGeneration
		}).Should(BeEquivalentTo(1))
	}
}

// tab is one person's browser: a browser context of its own.
type tab struct {
	user string
	ctx  context.Context
}

var tabs []*tab

// newTab opens a fresh browser context (no cookies) for user.
func newTab(user string) *tab {
	GinkgoHelper()
	ctx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	Expect(chromedp.Do(ctx)).To(Succeed())
	DeferCleanup(cancel)
	t := &tab{user: user, ctx: ctx}
	tabs = append(tabs, t)
	return t
}

// do runs browser steps, each within 20 s.
func (t *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	Expect(chromedp.Do(ctx, steps...)).To(Succeed())
}

// text returns the visible text of the first element matching a CSS
// selector, waiting up to 20 s for one. It is read in one evaluation in
// the page: a request's page swaps its content in place (live.js), and a
// node found first and read after could be gone by then.
func (t *tab) text(sel string) string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	expr := `(() => { const e = document.querySelector(` + strconv.Quote(sel) + `); return e === null ? null : e.innerText; })()`
	for {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[*string](expr))
		if err == nil && s != nil {
			return *s
		}
		select {
		case <-ctx.Done():
			Expect(err).NotTo(HaveOccurred(), "reading %s", sel)
			Fail("no element " + sel + " on the page")
			return ""
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// eval runs a JavaScript expression in the page (the test's own, through
// the DevTools protocol: the page's CSP does not apply to it).
func eval[T any](t *tab, expr string) T {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	Expect(err).NotTo(HaveOccurred(), "evaluating %s", expr)
	return v
}

// inputTime is t as a datetime-local input holds it: Chrome drops ":00"
// seconds, and chromedp's SetValue (which reads the value back) would fail
// once a minute on a time at a whole minute.
func inputTime(t time.Time) string {
	if t.Second() == 0 {
		return t.Format("2006-01-02T15:04")
	}
	return t.Format("2006-01-02T15:04:05")
}

// fill sets form fields by id in one script run and checks they hold the
// values (chromedp's SetValue, one node at a time, lost a race with the
// page's layout under load: "could not set value on node").
func fill(t *tab, fields map[string]string) {
	GinkgoHelper()
	body, err := json.Marshal(fields)
	Expect(err).NotTo(HaveOccurred())
	ok := eval[bool](t, `(() => { const f = `+string(body)+`; for (const [id, v] of Object.entries(f)) { document.getElementById(id).value = v; }
		return Object.entries(f).every(([id, v]) => document.getElementById(id).value === v); })()`)
	Expect(ok).To(BeTrue(), "fields %v", fields)
}

// signIn goes to the console, is sent to the provider's login page,
// signs in with the password (and a one-time code for users with a second
// factor), and comes back signed in.
func (t *tab) signIn() {
	GinkgoHelper()
	u := idp.User(t.user)
	t.do(chromedp.Navigate(consoleURL+"/roles"), chromedp.WaitVisible(chromedp.ID("signin")), chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("username"), u.Username), chromedp.SendKeys(chromedp.ID("password"), u.Password))
	if u.TOTPSecret != "" {
		code, err := u.Code(time.Now())
		Expect(err).NotTo(HaveOccurred())
		t.do(chromedp.SendKeys(chromedp.ID("otp"), code))
	}
	t.do(chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("whoami")))
	Expect(t.text("#whoami")).To(Equal(t.user))
}

// waitText waits until the element's text contains want (pages that
// follow a request reload themselves).
func (t *tab) waitText(sel, want string) {
	GinkgoHelper()
	Eventually(func() string {
		ctx, cancel := context.WithTimeout(t.ctx, 3*time.Second)
		defer cancel()
		s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return s
	}).WithTimeout(30 * time.Second).Should(ContainSubstring(want))
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// After a failed spec every open browser's page is saved under
// bin/console-screenshots/ (after every spec with
// KUBEPIM_CONSOLE_SCREENSHOTS=1, to look at the pages).
var _ = AfterEach(func() {
	defer func() { tabs = nil }()
	if !CurrentSpecReport().Failed() && os.Getenv("KUBEPIM_CONSOLE_SCREENSHOTS") == "" {
		return
	}
	dir := filepath.Join("..", "..", "bin", "console-screenshots")
	_ = os.MkdirAll(dir, 0o755)
	for i, t := range tabs {
		ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		cancel()
		if err != nil {
			continue
		}
		name := fmt.Sprintf("%s-%d-%s.png", strings.Trim(unsafeName.ReplaceAllString(CurrentSpecReport().LeafNodeText, "-"), "-"), i, t.user)
		file := filepath.Join(dir, name)
		if os.WriteFile(file, png, 0o644) == nil {
			AddReportEntry("screenshot", fmt.Sprintf("%s (%s at %s)", file, t.user, loc))
			GinkgoWriter.Printf("screenshot of %s's page %s: %s\n", t.user, loc, file)
		}
	}
})

// allowed asks the API server whether user may do verb on resource in
// namespace.
func allowed(user string, groups []string, verb, resource, namespace string) bool {
	GinkgoHelper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: resource, Namespace: namespace}}}
	Expect(env.Client.Create(context.Background(), sar)).To(Succeed())
	return sar.Status.Allowed
}
