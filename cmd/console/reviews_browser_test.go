package main

import (
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
)

// reviewSubjects are the assignees of the review the specs below run.
var reviewSubjects = []string{"erin", "frank", "grace", "heidi", "ivan"}

// startReview makes five eligible assignments of log-reader and a review
// of them by carol that requires a reason, and waits until its items exist.
func startReview() *pimv1.AccessReview {
	GinkgoHelper()
	ctx := context.Background()
	objs := []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "log-reader"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}}}},
		&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "log-reader"}, Spec: pimv1.RoleSettingSpec{
			RoleRef:    pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: "log-reader"},
			Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}},
			Assignment: pimv1.AssignmentPolicy{Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)}},
		}},
	}
	for _, name := range reviewSubjects {
		objs = append(objs, &pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: name + "-log-reader"}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: name}, RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: "log-reader"},
			Type: pimv1.AssignmentEligible}})
	}
	rev := &pimv1.AccessReview{ObjectMeta: metav1.ObjectMeta{Name: "log-readers"}, Spec: pimv1.AccessReviewSpec{
		Scope:        pimv1.AccessReviewScope{RoleRefs: []pimv1.RoleRef{{Kind: pimv1.RoleKindClusterRole, Name: "log-reader"}}},
		ReviewerType: pimv1.ReviewerTypeNamed, Reviewers: []pimv1.Principal{{Kind: pimv1.SubjectKindUser, Name: "carol"}},
		Duration: metav1.Duration{Duration: time.Hour}, Recurrence: pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceOneTime},
		Settings: pimv1.AccessReviewSettings{RequireJustification: ptr.To(true), DefaultDecision: pimv1.ReviewDecisionNone},
	}}
	objs = append(objs, rev)
	for _, obj := range objs {
		Expect(env.Client.Create(ctx, obj)).To(Succeed())
	}
	Eventually(func(g Gomega) {
		g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(rev), rev)).To(Succeed())
		g.Expect(rev.Status.State).To(Equal(pimv1.ReviewStateInProgress))
		g.Expect(rev.Status.Total).To(BeEquivalentTo(len(reviewSubjects)))
	}).Should(Succeed())
	return rev
}

func getItem(name string) *pimv1.AccessReviewItem {
	GinkgoHelper()
	item := &pimv1.AccessReviewItem{}
	Expect(env.Client.Get(context.Background(), client.ObjectKey{Name: name}, item)).To(Succeed())
	return item
}

// attr reads an attribute of the first element matching a CSS selector.
func (t *tab) attr(sel, name string) string {
	GinkgoHelper()
	return eval[string](t, `document.querySelector(`+jsString(sel)+`).getAttribute(`+jsString(name)+`)`)
}

// clickAndLoad clicks sel and waits until the browser shows the next
// document: waiting for an element the old page has too would race the
// navigation.
func (t *tab) clickAndLoad(sel string) {
	GinkgoHelper()
	Expect(eval[bool](t, `window.kubepimOldPage = true`)).To(BeTrue())
	t.do(chromedp.Click(chromedp.CSS(sel)))
	Eventually(func() bool {
		ctx, cancel := context.WithTimeout(t.ctx, 3*time.Second)
		defer cancel()
		loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.kubepimOldPage === undefined && document.readyState === "complete"`))
		return err == nil && loaded
	}).WithTimeout(30 * time.Second).Should(BeTrue())
}

func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var _ = Describe("Access reviews and the audit trail in a browser", Ordered, func() {
	It("lets carol page through a review's items and decide with a reason, and shows mallory kubepim's refusal", func() {
		rev := startReview()
		carol := newTab("carol")
		carol.signIn()
		carol.do(chromedp.Navigate(consoleURL+"/reviews"), chromedp.WaitVisible(chromedp.ID("reviews")))
		row := carol.text(`#reviews tr[data-name="log-readers"]`)
		Expect(row).To(ContainSubstring("InProgress"))
		Expect(row).To(ContainSubstring("0 of 5 reviewed"))
		Expect(row).To(ContainSubstring("User carol"))
		Expect(row).To(ContainSubstring(rev.Status.DueAt.UTC().Format("2006-01-02 15:04:05 UTC")))

		// Page by page, two items a list call: 2, 2, 1.
		carol.do(chromedp.Click(chromedp.CSS(`#reviews tr[data-name="log-readers"] a`)), chromedp.WaitVisible(chromedp.ID("review")))
		Expect(carol.text("#due")).To(ContainSubstring("in 59m"))
		var seen []string
		for page := 1; ; page++ {
			n := eval[int](carol, `document.querySelectorAll("article.item").length`)
			Expect(n).To(BeNumerically(">", 0), "page %d", page)
			Expect(n).To(BeNumerically("<=", 2), "page %d: one list call of two", page)
			for i := range n {
				seen = append(seen, eval[string](carol, `document.querySelectorAll("article.item")[`+strconv.Itoa(i)+`].dataset.subject`))
			}
			if eval[bool](carol, `document.getElementById("next-page") === null`) {
				Expect(page).To(Equal(3))
				break
			}
			Expect(page).To(BeNumerically("<", 3))
			next := carol.attr("#next-page", "href")
			Expect(next).To(ContainSubstring("continue="))
			carol.clickAndLoad("#next-page")
		}
		slices.Sort(seen)
		Expect(seen).To(Equal(reviewSubjects), "every item once")

		// A decision without the reason the review requires is refused by
		// kubepim's webhook, with its message.
		carol.clickAndLoad("#first-page")
		item, id, subject := carol.attr("article.item", "data-item"), carol.attr("article.item", "data-id"), carol.attr("article.item", "data-subject")
		carol.clickAndLoad("#deny-" + id)
		Expect(carol.text("#flash")).To(ContainSubstring(`give a reason: "Deny: <reason>"`))
		Expect(getItem(item).Status.Decision).To(BeEmpty())

		carol.do(chromedp.SendKeys(chromedp.ID("reason-"+id), "still on call for the payments team"))
		carol.clickAndLoad("#approve-" + id)
		Expect(carol.text("#flash")).To(ContainSubstring("You decided Approve on User " + subject + "'s ClusterRole log-reader"))
		Eventually(func(g Gomega) {
			st := getItem(item).Status
			g.Expect(st.Decision).To(Equal(pimv1.ReviewDecisionApprove))
			g.Expect(st.Reviewer).To(Equal("carol"))
			g.Expect(st.Reason).To(Equal("still on call for the payments team"))
		}).Should(Succeed())
		Eventually(func() string {
			carol.do(chromedp.Navigate(consoleURL+"/reviews/log-readers"), chromedp.WaitVisible(chromedp.ID("progress")))
			return carol.text("#progress") + " | " + carol.text(`article[data-item="`+item+`"] .decision`)
		}).Should(And(ContainSubstring("1 of 5 reviewed"), ContainSubstring("Approve by carol (User carol) — still on call for the payments team")))

		// mallory is not a reviewer: no item is hers to decide; shown every
		// item, her attempt is refused by kubepim with its message.
		mallory := newTab("mallory")
		mallory.signIn()
		mallory.do(chromedp.Navigate(consoleURL+"/reviews/log-readers"), chromedp.WaitVisible(chromedp.ID("no-items")))
		Expect(mallory.text("#review-as")).To(ContainSubstring("not a reviewer"))
		mallory.clickAndLoad("#show-all")
		other, otherID := mallory.attr("article.item:not([data-item='"+item+"'])", "data-item"), mallory.attr("article.item:not([data-item='"+item+"'])", "data-id")
		Expect(mallory.text(`article[data-item="` + other + `"]`)).To(ContainSubstring("mallory is not a reviewer of this review"))
		mallory.do(chromedp.SendKeys(chromedp.ID("reason-"+otherID), "nobody needs this"))
		mallory.clickAndLoad("#deny-" + otherID)
		Expect(mallory.text("#flash")).To(ContainSubstring("mallory is not a reviewer of this review; the reviewers are User carol"))
		Expect(getItem(other).Status.Decision).To(BeEmpty())
		Expect(getItem(other).Annotations).NotTo(HaveKey(pimv1.AnnotationReviewDecisions))
	})

	It("lets the auditor filter the trail, see the chain verified and download the CSV; mallory is refused", func() {
		ctx := context.Background()
		until := time.Now().UTC().Truncate(time.Second)
		auditor := newTab("auditor")
		auditor.signIn()
		auditor.do(chromedp.Navigate(consoleURL+"/audit"), chromedp.WaitVisible(chromedp.ID("audit-filter")),
			chromedp.SetValue(chromedp.ID("until"), inputTime(until)),
			chromedp.SetValue(chromedp.ID("action"), pimv1.AuditAssignmentCreated))
		auditor.clickAndLoad("#filter")
		Expect(eval[string](auditor, `location.search`)).To(ContainSubstring("action=AssignmentCreated"))
		Expect(auditor.text("#chain")).To(MatchRegexp(`^audit trail verified: \d+ events`))
		Expect(auditor.text("#chain-note")).To(ContainSubstring("verified from its oldest retained event"),
			"an auditor may not read the anchor in kubepim's namespace")

		var want [][]string
		var all pimv1.AuditEventList
		Expect(env.Client.List(ctx, &all)).To(Succeed())
		f := audit.Filter{Until: until, Action: pimv1.AuditAssignmentCreated}
		slices.SortFunc(all.Items, func(a, b pimv1.AuditEvent) int { return cmp.Compare(a.Spec.Sequence, b.Spec.Sequence) })
		for i := range all.Items {
			if f.Matches(&all.Items[i]) {
				want = append(want, audit.CSVRow(&all.Items[i]))
			}
		}
		Expect(len(want)).To(BeNumerically(">=", 3), "the seeded assignments")
		Expect(auditor.text("#matched")).To(HavePrefix(strconv.Itoa(len(want)) + " of"))
		Expect(eval[int](auditor, `document.querySelectorAll("#events tbody tr").length`)).To(Equal(len(want)))

		dir := GinkgoT().TempDir()
		_, err := chromedp.CallBrowser(auditor.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, BrowserContextID: chromedp.FromContext(auditor.ctx).BrowserContextID, DownloadPath: dir})
		Expect(err).NotTo(HaveOccurred())
		auditor.do(chromedp.Click(chromedp.ID("download-csv")))
		var file string
		Eventually(func() string {
			matches, _ := filepath.Glob(filepath.Join(dir, "kubepim-audit-*.csv"))
			if len(matches) == 1 {
				file = matches[0]
			}
			return file
		}).WithTimeout(30 * time.Second).ShouldNot(BeEmpty())
		raw, err := os.ReadFile(file)
		Expect(err).NotTo(HaveOccurred())
		rows, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
		Expect(err).NotTo(HaveOccurred())
		Expect(rows[0]).To(Equal(audit.CSVHeader))
		Expect(rows[1:]).To(Equal(want), "the download is exactly the matching AuditEvents, in chain order")

		mallory := newTab("mallory")
		mallory.signIn()
		mallory.do(chromedp.Navigate(consoleURL+"/audit"), chromedp.WaitVisible(chromedp.ID("error")))
		Expect(mallory.text("#error")).To(And(ContainSubstring("You may not read kubepim's audit trail"),
			ContainSubstring(`User "mallory" cannot list resource "auditevents"`)))
		Expect(eval[bool](mallory, `document.getElementById("events") === null`)).To(BeTrue())
		mallory.do(chromedp.Navigate(consoleURL+"/audit/export?format=csv"), chromedp.WaitVisible(chromedp.ID("error")))
		Expect(mallory.text("#error")).To(ContainSubstring("You may not read kubepim's audit trail"))
	})

	It("reads only a time range's days when the auditor gives From, and verifies the chain over them", func() {
		ctx := context.Background()
		from := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		auditor := newTab("auditor")
		auditor.signIn()
		auditor.do(chromedp.Navigate(consoleURL+"/audit?since="+url.QueryEscape(inputTime(from))), chromedp.WaitVisible(chromedp.ID("matched")))
		days := audit.Day(from) + " to " + audit.Day(time.Now().Add(24*time.Hour))
		Expect(auditor.text("#matched")).To(ContainSubstring("(read: the days " + days + ")"))
		Expect(auditor.text("#chain")).To(And(MatchRegexp(`^audit trail verified: \d+ events`), ContainSubstring("the events read")))
		Expect(auditor.text("#chain-note")).To(ContainSubstring("verified over the events of the days asked for"))

		// Every event kubepim wrote is labelled, and the page read exactly
		// those of the days (the API server selected them). The manager may
		// still be writing events of earlier specs: read both again until
		// they agree.
		want := func() string {
			var all pimv1.AuditEventList
			Expect(env.Client.List(ctx, &all)).To(Succeed())
			inDays, matching := 0, 0
			f := audit.Filter{Since: from}
			for i := range all.Items {
				ev := &all.Items[i]
				Expect(ev.Labels).To(HaveKey(audit.LabelDay), "event %s", ev.Name)
				Expect(audit.LabelsMatch(ev)).To(BeTrue())
				if d := ev.Labels[audit.LabelDay]; d >= audit.Day(from) {
					inDays++
				}
				if f.Matches(ev) {
					matching++
				}
			}
			return fmt.Sprintf("%d of %d events", matching, inDays)
		}
		Eventually(func() bool {
			w := want()
			auditor.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("matched")))
			return strings.HasPrefix(auditor.text("#matched"), w) && w == want()
		}).Should(BeTrue())
	})
})
