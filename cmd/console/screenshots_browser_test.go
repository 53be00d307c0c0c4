package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// screenshot saves the tab's whole page as dir/name.png.
func (t *tab) screenshot(dir, name string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)).To(Succeed())
	GinkgoWriter.Printf("saved %s\n", filepath.Join(dir, name+".png"))
}

// The pictures of docs/console.md and the README: with
// CONSOLE_SCREENSHOTS=docs/images (relative to the repository's root, or
// absolute) the seed's walkthrough is played and the main pages are saved
// as PNGs there. Run it alone:
//
//	CONSOLE_SCREENSHOTS=docs/images go test ./cmd/console -run TestConsole -args -ginkgo.focus=screenshots
var _ = Describe("The console's screenshots", Ordered, func() {
	It("saves My roles, Activate, Approve requests, Access reviews and Access history (screenshots)", func() {
		dir := os.Getenv("CONSOLE_SCREENSHOTS")
		if dir == "" {
			Skip("CONSOLE_SCREENSHOTS is not set")
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join("..", "..", dir)
		}
		Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
		ctx := context.Background()

		// alice: her roles, and the form to activate one.
		alice := newTab("alice")
		alice.signIn()
		alice.screenshot(dir, "my-roles")
		alice.do(chromedp.Navigate(consoleURL+"/activate?kind=ClusterRole&role=pod-debugger"), chromedp.WaitVisible(chromedp.ID("activate")),
			chromedp.SetValue(chromedp.ID("namespace"), "prod"), chromedp.SetValue(chromedp.ID("duration"), "2h"),
			chromedp.SetValue(chromedp.ID("start"), time.Now().UTC().Add(10*time.Minute).Format("2006-01-02T15:04")),
			chromedp.SendKeys(chromedp.ID("justification"), "INC-4711: pods crash-looping in prod"))
		alice.screenshot(dir, "activate")

		// bob asks for secret-reader in prod; carol sees it waiting.
		asBob, err := client.New(env.ConfigAs("bob", []string{"sre"}, nil), client.Options{Scheme: env.Client.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{GenerateName: policy.RequestGenerateName("bob", "secret-reader")},
			Spec: pimv1.ActivationRequestSpec{RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindRole, Name: "secret-reader"}, Namespace: "prod",
				Duration: metav1.Duration{Duration: 30 * time.Minute}, Justification: "rotate the payments DB password",
				Ticket: &pimv1.Ticket{System: "jira", Number: "OPS-88"}}}
		Expect(asBob.Create(ctx, ar)).To(Succeed())
		Eventually(func() pimv1.ActivationState { return getRequest(ar.Name).Status.State }).Should(Equal(pimv1.ActivationStatePendingApproval))
		carol := newTab("carol")
		carol.signIn()
		carol.do(chromedp.Navigate(consoleURL+"/approvals"), chromedp.WaitVisible(chromedp.CSS(`article[data-name="`+ar.Name+`"]`)),
			chromedp.SendKeys(chromedp.ID("reason-"+ar.Name), "ticket checked"))
		carol.screenshot(dir, "approve-requests")
		carol.clickAndLoad("#approve-" + ar.Name)
		Eventually(func() pimv1.ActivationState { return getRequest(ar.Name).Status.State }).Should(Equal(pimv1.ActivationStateActive))

		// carol's review of the log readers.
		rev := &pimv1.AccessReview{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: "log-readers"}, rev); apierrors.IsNotFound(err) {
			rev = startReview()
		}
		carol.do(chromedp.Navigate(consoleURL+"/reviews/"+rev.Name), chromedp.WaitVisible(chromedp.CSS("article.item")))
		carol.screenshot(dir, "access-reviews")

		// The auditor asks who held secret-reader in the last hour.
		auditor := newTab("auditor")
		auditor.signIn()
		q := url.Values{"role": {"secret-reader"}, "from": {time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04")},
			"until": {time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")}}
		auditor.do(chromedp.Navigate(consoleURL+"/history?"+q.Encode()), chromedp.WaitVisible(chromedp.ID("timeline")))
		auditor.screenshot(dir, "access-history")
	})
})
