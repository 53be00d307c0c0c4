package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var _ = Describe("A request's live state", Ordered, func() {
	It("changes on screen from PendingApproval to Active without a reload, and still works without script", func() {
		ctx := context.Background()
		objs := []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "live-viewer"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"endpoints"}, Verbs: []string{"get"}}}},
			&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "live-viewer"}, Spec: pimv1.RoleSettingSpec{
				RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "live-viewer"},
				Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour},
					Approval: pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour},
						Approvers: []pimv1.Principal{{Kind: pimv1.SubjectKindUser, Name: "carol"}}}},
				Assignment: pimv1.AssignmentPolicy{Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)}},
			}},
			&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "mallory-live-viewer"}, Spec: pimv1.RoleAssignmentSpec{
				Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: "mallory"}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "live-viewer"},
				Type: pimv1.AssignmentEligible}},
		}
		createAll(pimv1.AssignmentStateEligible, objs...)

		mallory := newTab("mallory")
		mallory.signIn()
		mallory.do(chromedp.Navigate(consoleURL+"/activate?kind=ClusterRole&role=live-viewer"), chromedp.WaitVisible(chromedp.ID("activate")),
			chromedp.SetValue(chromedp.ID("namespace"), "default"), chromedp.SetValue(chromedp.ID("duration"), "30m"),
			chromedp.SendKeys(chromedp.ID("justification"), "look at the endpoints"),
			chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("state")))
		name := mallory.requestName()
		// From here on, every state the page shows is recorded, and a
		// marker on the window tells whether the page was ever replaced.
		Expect(eval[bool](mallory, `(() => {
			window.kubepimMarker = true;
			window.kubepimStates = [document.querySelector("#state").textContent];
			new MutationObserver(() => {
				const s = document.querySelector("#state");
				if (s && s.textContent !== window.kubepimStates[window.kubepimStates.length - 1]) window.kubepimStates.push(s.textContent);
			}).observe(document.body, {subtree: true, childList: true, characterData: true});
			return true;
		})()`)).To(BeTrue())
		Expect(eval[string](mallory, `document.querySelector("#state").dataset.live`)).To(Equal("/requests/" + name + "/events"))
		mallory.waitText("#state", "PendingApproval")

		// Without script: the page reloads itself and has a Reload link;
		// the stream, read as mallory, says where the request stands.
		cookie := mallory.sessionCookie()
		get := func(path string) *http.Response {
			req, err := http.NewRequest(http.MethodGet, consoleURL+path, nil)
			Expect(err).NotTo(HaveOccurred())
			req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
			resp, err := consoleClient().Do(req)
			Expect(err).NotTo(HaveOccurred())
			return resp
		}
		resp := get("/requests/" + name)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		Expect(string(body)).To(ContainSubstring(`<noscript><meta http-equiv="refresh" content="2"></noscript>`))
		Expect(string(body)).To(ContainSubstring(`<script src="/static/live.js" defer></script>`))
		Expect(string(body)).To(ContainSubstring(`id="reload"`))
		Expect(resp.Header.Get("Content-Security-Policy")).To(ContainSubstring("script-src 'self';"))
		resp = get("/requests/" + name + "/events")
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(resp.Header.Get("Content-Type")).To(Equal("text/event-stream"))
		lines := bufio.NewScanner(resp.Body)
		var first string
		for lines.Scan() {
			if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				first = data
				break
			}
		}
		_ = resp.Body.Close()
		Expect(first).To(ContainSubstring(`"state":"PendingApproval"`))

		// carol approves (as kubectl would); mallory's page turns Active
		// in place.
		asCarol, err := client.New(env.ConfigAs("carol", nil, nil), client.Options{Scheme: env.Client.Scheme()})
		Expect(err).NotTo(HaveOccurred())
		ar := getRequest(name)
		patch := client.MergeFrom(ar.DeepCopy())
		ar.Annotations = map[string]string{pimv1.AnnotationApprove: "endpoints only"}
		Expect(asCarol.Patch(ctx, ar, patch)).To(Succeed())
		mallory.waitText("#state", "Active")
		Expect(eval[bool](mallory, `window.kubepimMarker === true`)).To(BeTrue(), "the page was updated in place, not reloaded")
		states := eval[[]string](mallory, `window.kubepimStates`)
		Expect(states).To(ContainElement("PendingApproval"))
		Expect(states[len(states)-1]).To(Equal("Active"))
		Eventually(func() string { return mallory.text("#main") }).Should(ContainSubstring("Active from"), "the rest of the page follows the state")
		Expect(mallory.text("#decisions")).To(ContainSubstring("carol"))
		Expect(allowed("mallory", nil, "get", "endpoints", "default")).To(BeTrue())
	})
})
