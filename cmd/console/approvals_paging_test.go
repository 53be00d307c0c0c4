package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/test/kubepimtest"
)

var _ = Describe("Approve requests, page by page", Ordered, func() {
	It("shows carol the requests waiting for her two a page, each once, following the Next links", func() {
		ctx := context.Background()
		objs := []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "approval-pager"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get"}}}},
			&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "approval-pager"}, Spec: pimv1.RoleSettingSpec{
				RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "approval-pager"},
				Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireJustification: ptr.To(true),
					Approval: pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour},
						Approvers: []pimv1.Principal{{Kind: pimv1.SubjectKindUser, Name: "carol"}}}}}},
			&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "sre-approval-pager"}, Spec: pimv1.RoleAssignmentSpec{
				Subject: pimv1.Subject{Kind: pimv1.SubjectKindGroup, Name: "sre"},
				RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "approval-pager"}, Type: pimv1.AssignmentEligible}},
		}
		for _, o := range objs {
			Expect(env.Client.Create(ctx, o)).To(Succeed())
			DeferCleanup(func() { _ = env.Client.Delete(context.Background(), o) })
		}
		Eventually(func() pimv1.AssignmentState {
			ra := &pimv1.RoleAssignment{}
			_ = env.Client.Get(ctx, client.ObjectKey{Name: "sre-approval-pager"}, ra)
			return ra.Status.State
		}).Should(Equal(pimv1.AssignmentStateEligible))

		// A console like the suite's, two requests a page.
		srv := httptest.NewUnstartedServer(nil)
		url := "https://" + srv.Listener.Addr().String()
		s, err := New(ctx, Options{URL: url, IssuerURL: idp.Issuer, IssuerCA: idp.CA.Pool(), ClientID: idp.ClientID, ClientSecret: idp.ClientSecret,
			SessionKeys: [][]byte{[]byte("another-console-key-of-at-least-32-bytes")}, Kube: env.Config, MFAClaim: kubepimtest.MFAClaim,
			Namespace: kubepimtest.Namespace, ApprovalPageSize: 2, Log: slog.New(slog.NewTextHandler(GinkgoWriter, nil))})
		Expect(err).NotTo(HaveOccurred())
		srv.Config.Handler = s
		srv.StartTLS()
		DeferCleanup(srv.Close)
		signedIn := func(user string) (*session, client.Client) {
			tok, err := idp.SignIn(ctx, user, idp.User(user).Password, "")
			Expect(err).NotTo(HaveOccurred())
			sess, err := s.sessionFrom(ctx, tok, "")
			Expect(err).NotTo(HaveOccurred())
			sess.Started, sess.CSRF = time.Now(), randomToken()
			_, err = env.WaitForToken(ctx, sess.IDToken)
			Expect(err).NotTo(HaveOccurred())
			c, err := s.kube.as(sess.bearer())
			Expect(err).NotTo(HaveOccurred())
			return sess, c
		}

		// bob, dave and erin (group sre) each ask, as themselves.
		var mine []string
		for _, user := range []string{"bob", "dave", "erin"} {
			_, c := signedIn(user)
			ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: user + "-approval-pager-"}, Spec: pimv1.ActivationRequestSpec{
				RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "approval-pager"}, Duration: metav1.Duration{Duration: 30 * time.Minute},
				Justification: "paging the approvals"}}
			Expect(c.Create(ctx, ar)).To(Succeed())
			DeferCleanup(func() { _ = env.Client.Delete(context.Background(), ar) })
			Eventually(func() pimv1.ActivationState { return getRequest(ar.Name).Status.State }).Should(Equal(pimv1.ActivationStatePendingApproval))
			mine = append(mine, ar.Name)
		}

		carol, _ := signedIn("carol")
		rec := httptest.NewRecorder()
		Expect(s.saveSession(rec, nil, carol)).To(Succeed())
		cookie := rec.Result().Cookies()[0]
		hc := srv.Client()
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		card := regexp.MustCompile(`<article class="card" data-name="([^"]+)"`)
		next := regexp.MustCompile(`id="next-page" class="button" href="([^"]+)"`)
		seen := map[string]int{}
		pages := 0
		for path := "/approvals"; path != ""; pages++ {
			Expect(pages).To(BeNumerically("<", 50), "the Next links end")
			req, err := http.NewRequest(http.MethodGet, url+path, nil)
			Expect(err).NotTo(HaveOccurred())
			req.AddCookie(cookie)
			resp, err := hc.Do(req)
			Expect(err).NotTo(HaveOccurred())
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s", body)
			cards := card.FindAllSubmatch(body, -1)
			Expect(len(cards)).To(BeNumerically("<=", 2), "at most a page of requests")
			for _, m := range cards {
				seen[string(m[1])]++
			}
			path = ""
			if m := next.FindSubmatch(body); m != nil {
				path = html(string(m[1]))
			}
		}
		Expect(pages).To(BeNumerically(">=", 2), "three requests of carol's make two pages at least")
		for _, name := range mine {
			Expect(seen[name]).To(Equal(1), "request %s shown once", name)
		}
	})
})

// html undoes the template's escaping of a link's &.
func html(s string) string { return regexp.MustCompile(`&amp;`).ReplaceAllString(s, "&") }
