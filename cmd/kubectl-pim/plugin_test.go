package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/test/kubepimtest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	env     *kubepimtest.Env
	stopMgr func()
)

func TestPlugin(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubectl-pim Suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(15 * time.Second)
	var err error
	env, err = kubepimtest.Start(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	stopMgr, err = env.StartManager(clock.RealClock{})
	Expect(err).NotTo(HaveOccurred())
	seed()
})

var _ = AfterSuite(func() {
	if stopMgr != nil {
		stopMgr()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// permanentAllowed is the CRD's default, spelled out: a Go client sends
// false for a bool it leaves unset.
var permanentAllowed = pimv1.AssignmentPolicy{
	Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)},
	Active:   pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(true)},
}

// seed makes the cluster of the README walkthrough: roles, policies, and
// who is eligible for what.
func seed() {
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pod-debugger"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}},
		// Everyone may use kubepim as a requester, approver and auditor.
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "pim-user"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"kubepim.io"}, Resources: []string{"activationrequests", "accessreviews", "accessreviewitems"}, Verbs: []string{"get", "list", "watch", "create", "patch"}},
			{APIGroups: []string{"kubepim.io"}, Resources: []string{"roleassignments", "rolesettings", "auditevents"}, Verbs: []string{"get", "list", "watch"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "pim-user"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "pim-user"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}}},
		&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "pod-debugger"}, Spec: pimv1.RoleSettingSpec{
			RoleRef:    pimv1.RoleSettingRoleRef{Kind: "ClusterRole", Name: "pod-debugger"},
			Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: 4 * time.Hour}, RequireJustification: ptr.To(true), Approval: pimv1.ApprovalPolicy{RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour}}},
			Assignment: permanentAllowed,
		}},
		&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"}, Spec: pimv1.RoleSettingSpec{
			RoleRef: pimv1.RoleSettingRoleRef{Kind: "ClusterRole", Name: "secret-reader"},
			Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireJustification: ptr.To(true), RequireTicket: true,
				Approval: pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour},
					Approvers: []pimv1.Principal{{Kind: "Group", Name: "sre-leads"}}}},
			Assignment: permanentAllowed,
		}},
		&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "alice-pod-debugger"}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: "User", Name: "alice"}, RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: "pod-debugger"}, Type: pimv1.AssignmentEligible}},
		&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "developers-secret-reader"}, Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: "Group", Name: "developers"}, RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: "secret-reader"},
			Namespace: "prod", Type: pimv1.AssignmentEligible}},
	}
	for _, obj := range objs {
		Expect(env.Client.Create(ctx, obj)).To(Succeed())
	}
	Eventually(func() pimv1.AssignmentState {
		ra := &pimv1.RoleAssignment{}
		_ = env.Client.Get(ctx, client.ObjectKey{Name: "developers-secret-reader"}, ra)
		return ra.Status.State
	}).Should(Equal(pimv1.AssignmentStateEligible))
	Eventually(func() int64 {
		rs := &pimv1.RoleSetting{}
		_ = env.Client.Get(ctx, client.ObjectKey{Name: "secret-reader"}, rs)
		return rs.Status.ObservedGeneration
	}).Should(BeEquivalentTo(1))
}

// run runs kubectl pim as user (in groups) and returns its output and exit code.
func run(user string, groups []string, args ...string) (string, int) {
	GinkgoHelper()
	var out bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}
	cmd := newRootCommand(streams, genericclioptions.NewConfigFlags(true), func() (*rest.Config, error) {
		return env.ConfigAs(user, groups, nil), nil
	})
	cmd.SetArgs(args)
	code := 0
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		out.WriteString("error: " + err.Error() + "\n")
		code = exitCode(err)
	}
	return out.String(), code
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(name, got string) {
	GinkgoHelper()
	path := filepath.Join("testdata", name)
	if *update {
		Expect(os.WriteFile(path, []byte(got), 0o644)).To(Succeed())
	}
	want, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	Expect(got).To(Equal(string(want)))
}

var _ = Describe("kubectl pim", Ordered, func() {
	It("shows alice her roles and what activating each requires", func() {
		out, code := run("alice", []string{"developers"}, "roles")
		Expect(code).To(Equal(0), out)
		golden("roles-alice.txt", out)
	})

	It("refuses someone who is not eligible, with exit code 1", func() {
		out, code := run("mallory", nil, "activate", "pod-debugger", "-n", "prod", "--for", "1h", "--reason", "x")
		Expect(code).To(Equal(exitRefused))
		Expect(out).To(ContainSubstring("mallory is not eligible for ClusterRole pod-debugger in namespace prod now"))
	})

	It("refuses a wrong ticket format as a usage error", func() {
		_, code := run("alice", nil, "activate", "pod-debugger", "--ticket", "nonsense", "--reason", "x")
		Expect(code).To(Equal(exitUsage))
	})

	It("activates and waits until active, then deactivates", func() {
		out, code := run("alice", []string{"developers"}, "activate", "pod-debugger", "-n", "prod", "--for", "2h", "--reason", "INC-1", "--wait")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("activating ClusterRole pod-debugger in namespace prod for 2h0m0s; the policy requires: max 4h, justification"))
		Expect(out).To(MatchRegexp(`created ActivationRequest alice-pod-debugger-\w+`))
		Expect(out).To(ContainSubstring("Active: active until"))

		out, code = run("alice", nil, "requests", "-o", "json")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring(`"state": "Active"`))
		name := strings.Fields(strings.SplitAfter(out, `"name": "`)[1])[0]
		name = strings.Trim(name, `",`)

		out, code = run("alice", nil, "deactivate", name, "--reason", "fixed")
		Expect(code).To(Equal(0), out)
		Eventually(func() string { o, _ := run("alice", nil, "requests"); return o }).Should(ContainSubstring("Deactivated"))
	})

	It("activates a reduced scope of a role, shows it, and refuses a scope the role does not allow", func() {
		out, code := run("alice", nil, "activate", "pod-debugger", "-n", "prod", "--for", "1h", "--reason", "INC-19",
			"--verbs", "delete", "--resources", "pods")
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("spec.permissions[0]: Forbidden: ClusterRole pod-debugger in namespace prod does not allow delete pods"))

		out, code = run("alice", nil, "activate", "pod-debugger", "-n", "prod", "--for", "1h", "--reason", "INC-19",
			"--verbs", "get", "--resources", "pods", "--resource-names", "web", "--wait")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("reduced scope: only get pods [web]"))
		Expect(out).To(ContainSubstring("Active: active until"))

		out, code = run("alice", nil, "requests", "-o", "json")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring(`"scope": "reduced: get pods [web]"`))
		var rows []map[string]string
		Expect(json.Unmarshal([]byte(out), &rows)).To(Succeed())
		for _, r := range rows {
			if r["state"] == "Active" {
				out, code = run("alice", nil, "deactivate", r["name"], "--reason", "done")
				Expect(code).To(Equal(0), out)
			}
		}
		out, _ = run("alice", nil, "requests")
		Expect(out).To(ContainSubstring("SCOPE"))
		Expect(out).To(ContainSubstring("reduced: get pods [web]"))
	})

	It("lets a requester wait for approval and an approver approve", func() {
		done := make(chan string)
		go func() {
			defer GinkgoRecover()
			out, code := run("alice", []string{"developers"}, "activate", "secret-reader", "-n", "prod", "--for", "30m",
				"--reason", "rotate password", "--ticket", "jira:OPS-88", "--wait", "--timeout", "30s")
			Expect(code).To(Equal(0), out)
			done <- out
		}()
		var pending string
		Eventually(func() string {
			out, _ := run("bob", []string{"sre-leads"}, "approvals")
			pending = out
			return out
		}).Should(ContainSubstring("secret-reader"))
		name := strings.Fields(strings.Split(pending, "\n")[1])[0]
		out, code := run("alice", []string{"developers"}, "approvals")
		Expect(code).To(Equal(0))
		Expect(out).To(ContainSubstring("No requests."), "alice may not approve her own request")

		out, code = run("bob", []string{"sre-leads"}, "approve", name)
		Expect(code).To(Equal(exitUsage), "a reason is required")
		out, code = run("bob", []string{"sre-leads"}, "approve", name, "--reason", "ticket checked")
		Expect(code).To(Equal(0), out)
		Eventually(done).Should(Receive(And(ContainSubstring("PendingApproval"), ContainSubstring("Active: active until"))))
	})

	It("lets a reviewer see review items and decide", func() {
		rev := &pimv1.AccessReview{ObjectMeta: metav1.ObjectMeta{Name: "quarterly"}, Spec: pimv1.AccessReviewSpec{
			Scope:        pimv1.AccessReviewScope{RoleRefs: []pimv1.RoleRef{{Kind: "ClusterRole", Name: "pod-debugger"}}, AssignmentTypes: "Both"},
			ReviewerType: pimv1.ReviewerTypeNamed, Reviewers: []pimv1.Principal{{Kind: "User", Name: "dana"}},
			Duration: metav1.Duration{Duration: time.Hour}, Recurrence: pimv1.AccessReviewRecurrence{Type: pimv1.RecurrenceOneTime},
			Settings: pimv1.AccessReviewSettings{DefaultDecision: pimv1.ReviewDecisionNone, RequireJustification: ptr.To(true),
				Recommendation: pimv1.RecommendationSettings{InactiveDays: 30}},
		}}
		Expect(env.Client.Create(context.Background(), rev)).To(Succeed())
		var out string
		Eventually(func() string { out, _ = run("dana", nil, "reviews"); return out }).Should(ContainSubstring("User alice"))
		Expect(out).To(ContainSubstring("Approve"), "alice activated the role just now")
		item := strings.Fields(strings.Split(out, "\n")[1])[1]
		out, code := run("mallory", nil, "review", "decide", "quarterly", item, "--deny", "--reason", "no")
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("mallory is not a reviewer"))
		out, code = run("dana", nil, "review", "decide", "quarterly", item, "--approve", "--reason", "still on call")
		Expect(code).To(Equal(0), out)
		Eventually(func() string { out, _ = run("dana", nil, "reviews"); return out }).Should(MatchRegexp(`Approve\s+\S.*Approve`))
	})

	It("lists everyone's items with --all, on every list command, and filters with -n", func() {
		// mallory may decide on nothing: reviews shows her nothing, and
		// --all every item of the running reviews, each marked not hers.
		out, code := run("mallory", nil, "reviews")
		Expect(code).To(Equal(0), out)
		Expect(out).To(Equal("Nothing to review.\n"))
		out, code = run("mallory", nil, "reviews", "--all")
		Expect(code).To(Equal(0), out)
		Expect(out).To(MatchRegexp(`(?m)^quarterly\s+\S+\s+User alice\s+ClusterRole/pod-debugger\s.*\sno$`))
		out, code = run("dana", nil, "reviews", "--all", "-o", "json")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring(`"mayDecide": true`))

		out, code = run("mallory", nil, "requests")
		Expect(code).To(Equal(0), out)
		Expect(out).To(Equal("No requests.\n"))
		out, code = run("mallory", nil, "requests", "--all")
		Expect(code).To(Equal(0), out)
		Expect(out).To(MatchRegexp(`alice-pod-debugger-\w+\s+ClusterRole/pod-debugger\s+prod\s+alice\s+Deactivated`))
		Expect(out).To(MatchRegexp(`alice-secret-reader-\w+\s+ClusterRole/secret-reader\s+prod\s+alice\s+Active`))
		out, code = run("mallory", nil, "requests", "--all", "-n", "default")
		Expect(code).To(Equal(0), out)
		Expect(out).To(Equal("No requests.\n"), "alice's requests are in prod")

		out, code = run("mallory", nil, "roles")
		Expect(code).To(Equal(0), out)
		Expect(out).To(Equal("mallory has no eligible or active roles.\n"))
		out, code = run("mallory", nil, "roles", "--all")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("User alice"))
		Expect(out).To(ContainSubstring("Group developers"))
		// -n prod keeps what applies in prod: alice's cluster-wide
		// eligibility (she may activate it there) and the prod ones.
		out, code = run("alice", []string{"developers"}, "roles", "-n", "prod")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("pod-debugger   ClusterRole  (cluster)"))
		Expect(out).To(MatchRegexp(`secret-reader\s+ClusterRole\s+prod\s+Activation`))
		out, code = run("alice", []string{"developers"}, "roles", "-n", "staging")
		Expect(code).To(Equal(0), out)
		Expect(out).NotTo(ContainSubstring("secret-reader"))

		out, code = run("bob", []string{"sre-leads"}, "approvals", "--all")
		Expect(code).To(Equal(0), out)
		Expect(out).To(Equal("No requests.\n"), "nothing waits for approval any more")

		_, code = run("alice", nil, "requests", "-o", "xml")
		Expect(code).To(Equal(exitUsage))
	})

	It("exports the audit trail and verifies it", func() {
		out, code := run("auditor", nil, "audit", "-o", "csv", "--user", "alice")
		Expect(code).To(Equal(0), out)
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		Expect(err).NotTo(HaveOccurred())
		var actions []string
		for _, r := range rows[1:] {
			actions = append(actions, r[2])
		}
		Expect(actions).To(ContainElements("ActivationRequested", "Activated", "Deactivated", "PendingApproval", "Approved"))

		out, code = run("auditor", nil, "audit", "--action", "Approved")
		Expect(code).To(Equal(0), out)
		Expect(out).To(MatchRegexp(`Approved\s+bob\s+alice\s+secret-reader\s+prod\s+Success\s+ticket checked`))

		// Who held the roles, from the trail.
		out, code = run("auditor", nil, "audit", "who", "--role", "pod-debugger", "--from", "1h", "--to", "0s")
		Expect(code).To(Equal(0), out)
		Expect(out).To(MatchRegexp(`User alice\s+pod-debugger\s+prod\s+Activation\s+\S+\s+\S+\s+Deactivated\s+alice-pod-debugger-\w+\s+INC-1`))
		out, code = run("auditor", nil, "audit", "who", "--role", "secret-reader", "-n", "prod", "-o", "json")
		Expect(code).To(Equal(0), out)
		var held []struct {
			Who           string
			Via           string
			Justification string
			Ticket        *pimv1.Ticket
			Approvers     []string
			Ended         bool
		}
		Expect(json.Unmarshal([]byte(out), &held)).To(Succeed())
		Expect(held).To(HaveLen(1), out)
		Expect(held[0].Who).To(Equal("User alice"))
		Expect(held[0].Via).To(Equal("Activation"))
		Expect(held[0].Justification).To(Equal("rotate password"))
		Expect(held[0].Ticket.Number).To(Equal("OPS-88"))
		Expect(held[0].Approvers).To(Equal([]string{"bob"}))
		Expect(held[0].Ended).To(BeFalse(), "still active")
		out, code = run("auditor", nil, "audit", "who", "--role", "secret-reader", "-n", "staging")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("No one held secret-reader in staging"))
		out, code = run("auditor", nil, "audit", "who", "--role", "pod-debugger", "--at", "2001-01-01T00:00:00Z")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("No one held pod-debugger"))
		_, code = run("auditor", nil, "audit", "who", "--at", "1h")
		Expect(code).To(Equal(exitUsage), "--role is required")

		out, code = run("root", []string{"system:masters"}, "audit", "verify")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("audit trail verified"))
	})
})

var _ = Describe("kubectl pim mfa", Ordered, func() {
	ctx := context.Background()
	admin, admins := "root", []string{"system:masters"}
	var uri string

	BeforeAll(func() {
		// erin is eligible for a role whose activation requires MFA, and
		// her identity provider sends no MFA claim: TOTP is her way.
		for _, obj := range []client.Object{
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "config-editor"},
				Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"update"}}}},
			&pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: "config-editor"}, Spec: pimv1.RoleSettingSpec{
				RoleRef: pimv1.RoleSettingRoleRef{Kind: "ClusterRole", Name: "config-editor"},
				Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireJustification: ptr.To(true), RequireMFA: true,
					Approval: pimv1.ApprovalPolicy{RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour}}},
				Assignment: permanentAllowed,
			}},
			&pimv1.RoleAssignment{ObjectMeta: metav1.ObjectMeta{Name: "erin-config-editor"}, Spec: pimv1.RoleAssignmentSpec{
				Subject: pimv1.Subject{Kind: "User", Name: "erin"}, RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: "config-editor"}, Type: pimv1.AssignmentEligible}},
		} {
			Expect(env.Client.Create(ctx, obj)).To(Succeed())
		}
		Eventually(func() pimv1.AssignmentState {
			ra := &pimv1.RoleAssignment{}
			_ = env.Client.Get(ctx, client.ObjectKey{Name: "erin-config-editor"}, ra)
			return ra.Status.State
		}).Should(Equal(pimv1.AssignmentStateEligible))
	})

	enrollmentSecret := func() *corev1.Secret {
		GinkgoHelper()
		secret := &corev1.Secret{}
		Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: kubepimtest.Namespace, Name: mfa.TOTPSecretName("erin")}, secret)).To(Succeed())
		return secret
	}
	// activate asks for config-editor as erin, with code (none if empty).
	activate := func(code string) (string, int) {
		args := []string{"activate", "config-editor", "-n", "prod", "--for", "10m", "--reason", "INC-77", "--wait", "--timeout", "30s"}
		if code != "" {
			args = append(args, "--mfa-code", code)
		}
		return run("erin", nil, args...)
	}
	// wrongCode is a code that is not right now (nor a step either way).
	wrongCode := func(key *otp.Key) string {
		GinkgoHelper()
		for _, c := range []string{"000000", "111111", "222222", "333333"} {
			right := false
			for _, at := range []time.Time{time.Now().Add(-30 * time.Second), time.Now(), time.Now().Add(30 * time.Second)} {
				want, err := totp.GenerateCode(key.Secret(), at)
				Expect(err).NotTo(HaveOccurred())
				right = right || want == c
			}
			if !right {
				return c
			}
		}
		Fail("every candidate was a right code")
		return ""
	}

	It("is for platform admins: a user may not read or write enrollments", func() {
		out, code := run("erin", nil, "mfa", "enroll", "erin")
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("forbidden"))
		out, code = run("erin", nil, "mfa", "status", "erin")
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("forbidden"))
	})

	It("enrolls a user with a fresh key, shown once as an otpauth:// URI and a QR code", func() {
		out, code := run(admin, admins, "mfa", "status", "erin")
		Expect(code).To(Equal(0), out)
		Expect(out).To(Equal("erin is not enrolled for TOTP.\n"))

		out, code = run(admin, admins, "mfa", "enroll", "erin")
		Expect(code).To(Equal(0), out)
		uri = regexp.MustCompile(`otpauth://totp/\S+`).FindString(out)
		Expect(uri).NotTo(BeEmpty(), out)
		key, err := otp.NewKeyFromURL(uri)
		Expect(err).NotTo(HaveOccurred())
		Expect(key.Issuer()).To(Equal("kubepim"))
		Expect(key.AccountName()).To(Equal("erin"))
		Expect(key.Period()).To(BeEquivalentTo(30))
		Expect(key.Digits()).To(Equal(otp.DigitsSix))
		Expect(key.Algorithm()).To(Equal(otp.AlgorithmSHA1))
		Expect(out).To(Or(ContainSubstring("▀"), ContainSubstring("▄")), "a QR code in half blocks")
		Expect(strings.Count(out, key.Secret())).To(Equal(1), "the key appears in the URI only")

		secret := enrollmentSecret()
		Expect(string(secret.Data[mfa.SecretKeyTOTP])).To(Equal(key.Secret()))
		Expect(secret.Annotations).To(HaveKeyWithValue(mfa.AnnotationTOTPUser, "erin"))
		Expect(secret.Annotations).To(HaveKeyWithValue(mfa.AnnotationTOTPEnrolledBy, admin))
		Expect(secret.Labels).To(HaveKeyWithValue(mfa.LabelTOTPEnrollment, "true"))
	})

	It("refuses to overwrite an enrollment without --force", func() {
		out, code := run(admin, admins, "mfa", "enroll", "erin")
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("erin is already enrolled for TOTP"))
		Expect(out).NotTo(ContainSubstring("otpauth://"))
		key, err := otp.NewKeyFromURL(uri)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(enrollmentSecret().Data[mfa.SecretKeyTOTP])).To(Equal(key.Secret()), "the key is unchanged")
	})

	It("lets the user activate a role requiring MFA with a code from the printed URI", func() {
		key, err := otp.NewKeyFromURL(uri)
		Expect(err).NotTo(HaveOccurred())
		out, code := activate("")
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("requires multi-factor authentication"))
		out, code = activate(wrongCode(key))
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("the one-time code is not valid"))

		right, err := totp.GenerateCode(key.Secret(), time.Now())
		Expect(err).NotTo(HaveOccurred())
		out, code = activate(right)
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring("Active: active until"))
		name := regexp.MustCompile(`created ActivationRequest (\S+)`).FindStringSubmatch(out)[1]
		ar := &pimv1.ActivationRequest{}
		Expect(env.Client.Get(ctx, client.ObjectKey{Name: name}, ar)).To(Succeed())
		Expect(ar.Spec.MFA).NotTo(BeNil())
		Expect(ar.Spec.MFA.Method).To(Equal(pimv1.MFAMethodTOTP))
		out, code = run("erin", nil, "deactivate", name, "--reason", "done")
		Expect(code).To(Equal(0), out)
		Eventually(func() pimv1.ActivationState {
			_ = env.Client.Get(ctx, client.ObjectKey{Name: name}, ar)
			return ar.Status.State
		}).Should(Equal(pimv1.ActivationStateDeactivated))
	})

	It("reports the enrollment and the wrong codes, never the key", func() {
		key, err := otp.NewKeyFromURL(uri)
		Expect(err).NotTo(HaveOccurred())
		out, code := run(admin, admins, "mfa", "status", "erin")
		Expect(code).To(Equal(0), out)
		Expect(out).To(MatchRegexp(`^erin is enrolled for TOTP since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(by root\)\.\n`))
		Expect(out).To(MatchRegexp(`Wrong codes in the last 5m0s: 1 of 5 allowed; last wrong code at \S+Z\.\n$`))
		Expect(out).NotTo(ContainSubstring(key.Secret()))
		out, code = run(admin, admins, "mfa", "status", "erin", "-o", "json")
		Expect(code).To(Equal(0), out)
		Expect(out).To(ContainSubstring(`"enrolled": true`))
		Expect(out).To(ContainSubstring(`"wrongCodes": 1`))
		Expect(out).NotTo(ContainSubstring(key.Secret()))
	})

	It("replaces the key with --force, keeping the recorded wrong codes", func() {
		old, err := otp.NewKeyFromURL(uri)
		Expect(err).NotTo(HaveOccurred())
		out, code := run(admin, admins, "mfa", "enroll", "erin", "--force")
		Expect(code).To(Equal(0), out)
		uri = regexp.MustCompile(`otpauth://totp/\S+`).FindString(out)
		key, err := otp.NewKeyFromURL(uri)
		Expect(err).NotTo(HaveOccurred())
		Expect(key.Secret()).NotTo(Equal(old.Secret()))
		Expect(string(enrollmentSecret().Data[mfa.SecretKeyTOTP])).To(Equal(key.Secret()))
		out, _ = run(admin, admins, "mfa", "status", "erin")
		Expect(out).To(ContainSubstring("1 of 5 allowed"), "re-enrolling lifts no limit")
	})

	It("removes an enrollment: codes are refused from then on", func() {
		key, err := otp.NewKeyFromURL(uri)
		Expect(err).NotTo(HaveOccurred())
		out, code := run(admin, admins, "mfa", "remove", "erin")
		Expect(code).To(Equal(0), out)
		Expect(out).To(Equal("removed the TOTP enrollment of erin\n"))
		out, code = run(admin, admins, "mfa", "status", "erin")
		Expect(code).To(Equal(0), out)
		Expect(out).To(Equal("erin is not enrolled for TOTP.\n"))
		out, code = run(admin, admins, "mfa", "remove", "erin")
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("erin is not enrolled for TOTP"))

		right, err := totp.GenerateCode(key.Secret(), time.Now())
		Expect(err).NotTo(HaveOccurred())
		out, code = activate(right)
		Expect(code).To(Equal(exitRefused), out)
		Expect(out).To(ContainSubstring("erin has no TOTP enrollment; ask a platform admin to enroll you (kubectl pim mfa enroll)"))
	})
})
