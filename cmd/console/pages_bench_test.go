package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/test/kubepimtest"
	"github.com/kubepim/kubepim/test/oidcprovider"
)

// BenchmarkPages times the console's pages over a large cluster:
// CONSOLE_BENCH_SCALE RoleAssignments (default 10,000), a tenth as many
// ActivationRequests waiting for approval, and as many AuditEvents (a
// valid hash chain) spread over the last month. The objects are written
// straight to the API server (kubepim's webhooks removed, no manager: the
// console only reads them), so that setting up 20,000 objects takes a
// minute, not the manager's hour of audit records.
//
// Each iteration is one page view through the console's HTTP handler on
// loopback, as a signed-in user whose ID token is the bearer token of
// every API request: time to first byte, full load (the HTML and every
// /static/ asset it links), API requests made (counted at the transport),
// bytes allocated. Run:
//
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s/1.37.2 go test ./cmd/console -run '^$' -bench Pages -benchtime 100x
func BenchmarkPages(b *testing.B) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		b.Skip("needs KUBEBUILDER_ASSETS")
	}
	scale := 10000
	if s := os.Getenv("CONSOLE_BENCH_SCALE"); s != "" {
		var err error
		if scale, err = strconv.Atoi(s); err != nil || scale < 100 {
			b.Fatalf("CONSOLE_BENCH_SCALE=%q: want a number ≥ 100", s)
		}
	}
	logf.SetLogger(logr.Discard())
	ctx := context.Background()
	p, err := oidcprovider.Start(oidcprovider.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	root := filepath.Join("..", "..")
	authn, err := kubepimtest.OIDCAuthentication(root, p.Issuer, p.ClientID, p.CA.CertPEM)
	if err != nil {
		b.Fatal(err)
	}
	e, err := kubepimtest.StartWith(root, kubepimtest.Options{AuthenticationConfig: authn})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = e.Stop() }()

	setupStart := time.Now()
	populate(b, e, scale)
	b.Logf("created %d assignments, %d requests, %d audit events in %s", scale, scale/10, scale, time.Since(setupStart).Round(time.Second))

	// The console, counting the API requests it sends (at the transport
	// every user's client is built on).
	var apiRequests atomic.Int64
	kcfg := rest.CopyConfig(e.Config)
	kcfg.QPS, kcfg.Burst = -1, 0
	srv := httptest.NewUnstartedServer(nil)
	consoleURL := "https://" + srv.Listener.Addr().String()
	s, err := New(ctx, Options{URL: consoleURL, IssuerURL: p.Issuer, IssuerCA: p.CA.Pool(), ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		SessionKeys: [][]byte{[]byte("a-benchmark-key-of-at-least-32-bytes")}, Kube: kcfg, MFAClaim: kubepimtest.MFAClaim,
		Namespace: kubepimtest.Namespace, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	base := s.kube.base
	s.kube.base = roundTripFunc(func(r *http.Request) (*http.Response, error) { apiRequests.Add(1); return base.RoundTrip(r) })
	srv.Config.Handler = s
	srv.StartTLS()
	defer srv.Close()

	cookies := map[string]string{}
	for _, user := range []string{"alice", "carol", "auditor"} {
		tok, err := p.SignIn(ctx, user, p.User(user).Password, "")
		if err != nil {
			b.Fatal(err)
		}
		sess, err := s.sessionFrom(ctx, tok, "")
		if err != nil {
			b.Fatal(err)
		}
		sess.Started, sess.CSRF = time.Now(), randomToken()
		rec := httptest.NewRecorder()
		if err := s.saveSession(rec, nil, sess); err != nil {
			b.Fatal(err)
		}
		c := rec.Result().Cookies()[0]
		cookies[user] = c.Name + "=" + c.Value
		if _, err := e.WaitForToken(ctx, sess.IDToken); err != nil {
			b.Fatal(err)
		}
	}

	from := time.Now().AddDate(0, -1, 0).UTC().Format("2006-01-02T15:04")
	dayAgo := time.Now().Add(-24 * time.Hour).UTC().Format("2006-01-02T15:04")
	hc := &http.Client{Transport: srv.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	asset := regexp.MustCompile(`(?:href|src)="(/static/[^"]+)"`)
	for _, pg := range []struct{ name, user, path, want string }{
		{"MyRoles", "alice", "/roles", "bench-role-"},
		{"ApproveRequests", "carol", "/approvals", "bench-role-"},
		{"Audit1Month", "auditor", "/audit?since=" + url.QueryEscape(from), "bench-role-"},
		{"Audit1Day", "auditor", "/audit?since=" + url.QueryEscape(dayAgo), "bench-role-"},
		{"AccessHistory", "auditor", "/history?role=bench-role-07&from=" + url.QueryEscape(from), "bench-role-07"},
		{"MyRequests", "alice", "/requests", "bench-role-"},
	} {
		b.Run(pg.name, func(b *testing.B) {
			logMatched := true
			view := func() (ttfb, full time.Duration, api int64) {
				before := apiRequests.Load()
				var first time.Time
				start := time.Now()
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
					GotFirstResponseByte: func() { first = time.Now() },
				}), http.MethodGet, consoleURL+pg.path, nil)
				req.Header.Set("Cookie", cookies[pg.user])
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !regexp.MustCompile(pg.want).Match(body) {
					main := body
					if i := regexp.MustCompile(`<main`).FindIndex(body); i != nil {
						main = body[i[0]:]
					}
					b.Fatalf("%s: %s, %d bytes: %.3000s", pg.path, resp.Status, len(body), main)
				}
				api = apiRequests.Load() - before
				if m := matchedLine.FindSubmatch(body); m != nil && logMatched {
					b.Logf("%s: %s", pg.name, m[1])
					logMatched = false
				}
				for _, m := range asset.FindAllSubmatch(body, -1) {
					r, err := hc.Get(consoleURL + string(m[1]))
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, r.Body)
					_ = r.Body.Close()
				}
				return first.Sub(start), time.Since(start), api
			}
			view() // warm the transport to the API server
			var ttfbs, fulls []time.Duration
			var api int64
			var ms0, ms1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for b.Loop() {
				t, f, a := view()
				ttfbs, fulls, api = append(ttfbs, t), append(fulls, f), a
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			n := float64(len(fulls))
			b.ReportMetric(ms(pct(ttfbs, 50)), "ttfb-p50-ms")
			b.ReportMetric(ms(pct(ttfbs, 95)), "ttfb-p95-ms")
			b.ReportMetric(ms(pct(fulls, 50)), "full-p50-ms")
			b.ReportMetric(ms(pct(fulls, 95)), "full-p95-ms")
			b.ReportMetric(float64(api), "api-requests/view")
			// Everything the process allocated (the console, and the HTTP
			// client of the benchmark) per view.
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/n/(1<<20), "MiB-alloc/view")
			b.ReportMetric(float64(ms1.HeapSys)/(1<<20), "MiB-heap-sys")
		})
	}
}

// matchedLine is the Audit page's count of what it read and matched.
var matchedLine = regexp.MustCompile(`id="matched">([^<]*)`)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// populate writes the cluster: 50 ClusterRoles with a RoleSetting each
// (one approval by carol), scale RoleAssignments (alice Eligible for ten
// roles, the others spread over scale/10 users), scale/10 requests of
// those users PendingApproval (ten of them alice's), and scale AuditEvents
// one chain, spread over the last 30 days.
func populate(b *testing.B, e *kubepimtest.Env, scale int) {
	ctx := context.Background()
	cfg := rest.CopyConfig(e.Config)
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.New(cfg, client.Options{Scheme: e.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	// No manager: its admission webhooks would refuse every write.
	for _, l := range []client.ObjectList{&admissionregistrationv1.MutatingWebhookConfigurationList{}, &admissionregistrationv1.ValidatingWebhookConfigurationList{}} {
		if err := c.List(ctx, l); err != nil {
			b.Fatal(err)
		}
		switch l := l.(type) {
		case *admissionregistrationv1.MutatingWebhookConfigurationList:
			for i := range l.Items {
				_ = c.Delete(ctx, &l.Items[i])
			}
		case *admissionregistrationv1.ValidatingWebhookConfigurationList:
			for i := range l.Items {
				_ = c.Delete(ctx, &l.Items[i])
			}
		}
	}
	for _, bind := range []struct{ role, kind, name string }{
		{kubepimtest.RoleRequester, rbacv1.GroupKind, "system:authenticated"},
		{kubepimtest.RoleApprover, rbacv1.UserKind, "carol"},
		{kubepimtest.RoleAuditor, rbacv1.GroupKind, "auditors"},
	} {
		if _, err := e.Bind(bind.role, bind.kind, bind.name); err != nil {
			b.Fatal(err)
		}
	}
	const roles = 50
	for r := range roles {
		name := fmt.Sprintf("bench-role-%02d", r)
		must(b, c.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}))
		must(b, c.Create(ctx, &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: pimv1.RoleSettingSpec{
			RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: name},
			Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: 8 * time.Hour}, RequireJustification: ptr.To(true),
				Approval: pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: 24 * time.Hour},
					Approvers: []pimv1.Principal{{Kind: pimv1.SubjectKindUser, Name: "carol"}}}},
		}}))
	}
	users := scale / 10
	user := func(i int) string { return fmt.Sprintf("user-%05d", i%users) }
	now := time.Now().UTC()
	parallel(b, scale, func(i int) error {
		subject, role := user(i), fmt.Sprintf("bench-role-%02d", i%roles)
		if i < 10 {
			subject = "alice"
		}
		ra := &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%05d", i)}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: subject}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role},
			Type: pimv1.AssignmentEligible, Justification: "benchmark assignment"}}
		if err := c.Create(ctx, ra); err != nil {
			return err
		}
		ra.Status.State, ra.Status.ObservedGeneration = pimv1.AssignmentStateEligible, ra.Generation
		return c.Status().Update(ctx, ra)
	})
	parallel(b, users, func(i int) error {
		requester := user(i)
		if i < 10 {
			requester = "alice"
		}
		ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%05d", i)}, Spec: pimv1.ActivationRequestSpec{
			RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: fmt.Sprintf("bench-role-%02d", i%roles)}, Duration: metav1.Duration{Duration: time.Hour},
			Justification: "incident " + strconv.Itoa(i) + ": need to look at the pods", Requester: &pimv1.UserInfo{Username: requester}}}
		if err := c.Create(ctx, ar); err != nil {
			return err
		}
		ar.Status.State, ar.Status.ObservedGeneration = pimv1.ActivationStatePendingApproval, ar.Generation
		ar.Status.ApprovalDeadline = &metav1.Time{Time: now.Add(24 * time.Hour)}
		return c.Status().Update(ctx, ar)
	})
	// One hash chain, computed here, written in parallel.
	specs := make([]pimv1.AuditEventSpec, scale)
	prev := ""
	for i := range specs {
		s := pimv1.AuditEventSpec{
			// (30 days / scale) × i: the product first would overflow
			// int64 nanoseconds past i = 3,558.
			Time:   metav1.NewTime(now.Add(-30 * 24 * time.Hour).Add(30 * 24 * time.Hour / time.Duration(scale) * time.Duration(i)).Truncate(time.Second)),
			Action: pimv1.AuditActivated, Actor: &audit.ControllerActor,
			Subject: &pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: user(i)}, RoleRef: &pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: fmt.Sprintf("bench-role-%02d", i%roles)},
			Justification: "benchmark", Outcome: pimv1.AuditOutcomeSuccess, Sequence: int64(i + 1), PreviousHash: prev,
		}
		s.Hash = audit.Hash(s)
		prev, specs[i] = s.Hash, s
	}
	parallel(b, scale, func(i int) error {
		// Labelled as kubepim labels what it writes (internal/audit).
		return c.Create(ctx, &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%06d", i),
			Labels: audit.Labels(specs[i], audit.Day(specs[i].Time.Time))}, Spec: specs[i]})
	})
}

// parallel runs fn for 0..n-1 on 16 writers.
func parallel(b *testing.B, n int, fn func(int) error) {
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n && failed.Load() == nil; i += 16 {
				if err := fn(i); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
