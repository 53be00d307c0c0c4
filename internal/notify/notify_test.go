package notify

import (
	"encoding/json"
	"mime"
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

var t0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempts int32
		want     time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {9, 256 * time.Second}, {10, MaxRetry}, {1000, MaxRetry}}
	for _, tt := range tests {
		if got := Backoff(tt.attempts); got != tt.want {
			t.Errorf("Backoff(%d) = %v, want %v", tt.attempts, got, tt.want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 90 * time.Minute: "1h30m", 15 * time.Minute: "15m", 14 * 24 * time.Hour: "14d", 45 * time.Second: "45s", 0: "0s",
	} {
		if got := ShortDuration(d); got != want {
			t.Errorf("ShortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseDirectory(t *testing.T) {
	d, err := ParseDirectory(map[string]string{
		"users":  "alice: alice@example.com\noidc:bob: bob@example.com\n",
		"groups": "pim-approvers: [carol@example.com, dave@example.com]\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	if addr, ok := d.User("oidc:bob"); !ok || addr != "bob@example.com" {
		t.Errorf("User(oidc:bob) = %q, %v", addr, ok)
	}
	if _, ok := d.User("mallory"); ok {
		t.Error("an unknown user has an address")
	}
	if got := d.Group("pim-approvers"); !reflect.DeepEqual(got, []string{"carol@example.com", "dave@example.com"}) {
		t.Errorf("Group = %v", got)
	}
	if _, err := ParseDirectory(map[string]string{"users": "alice: [not, a, string]"}); err == nil {
		t.Error("a malformed directory parsed")
	}
	if d, err := ParseDirectory(nil); err != nil || len(d.Users) != 0 {
		t.Errorf("an empty directory: %v %v", d, err)
	}
}

func approvalNeeded() *pimv1.Notification {
	ar := &pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-admin-x7"},
		Spec: pimv1.ActivationRequestSpec{
			RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: "admin"}, Namespace: "prod",
			Duration: metav1.Duration{Duration: 2 * time.Hour}, Justification: "INC-9 <db> & cache",
			Ticket: &pimv1.Ticket{System: "jira", Number: "OPS-1"}, Requester: &pimv1.UserInfo{Username: "alice"},
		},
		Status: pimv1.ActivationRequestStatus{ApprovalDeadline: &metav1.Time{Time: t0.Add(24 * time.Hour)}},
	}
	c := ActivationContent(ar, policy.Occurrence{Event: pimv1.EventApprovalNeeded, At: t0}, pimv1.AudienceApprovers)
	return &pimv1.Notification{
		ObjectMeta: metav1.ObjectMeta{Name: "approvalneeded-abc", UID: "u-1"},
		Spec: pimv1.NotificationSpec{Event: pimv1.EventApprovalNeeded, Audience: pimv1.AudienceApprovers, Critical: ptr.To(true), Channel: "c",
			Source: pimv1.AuditObjectReference{Kind: "ActivationRequest", Name: ar.Name}, OccurredAt: metav1.NewTime(t0),
			Title: c.Title, Facts: c.Facts, Actions: c.Actions},
	}
}

func TestActivationContentReducedScope(t *testing.T) {
	ar := &pimv1.ActivationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-admin-x8"},
		Spec: pimv1.ActivationRequestSpec{
			RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: "admin"}, Namespace: "prod",
			Duration: metav1.Duration{Duration: time.Hour}, Requester: &pimv1.UserInfo{Username: "alice"},
			Permissions: []pimv1.PermissionRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}}},
		},
	}
	c := ActivationContent(ar, policy.Occurrence{Event: pimv1.EventApprovalNeeded, At: t0}, pimv1.AudienceApprovers)
	if want := "Approval needed: alice requests ClusterRole admin in namespace prod (reduced scope) for 1h"; c.Title != want {
		t.Errorf("title %q, want %q", c.Title, want)
	}
	found := false
	for _, f := range c.Facts {
		found = found || (f.Name == "Permissions" && f.Value == "get pods,pods/log")
	}
	if !found {
		t.Errorf("no Permissions fact: %v", c.Facts)
	}
}

func TestActivationContent(t *testing.T) {
	n := approvalNeeded()
	if want := "Approval needed: alice requests ClusterRole admin in namespace prod for 2h"; n.Spec.Title != want {
		t.Errorf("title %q, want %q", n.Spec.Title, want)
	}
	facts := map[string]string{}
	for _, f := range n.Spec.Facts {
		facts[f.Name] = f.Value
	}
	for name, want := range map[string]string{"Requester": "alice", "Role": "ClusterRole/admin", "Scope": "namespace prod", "Duration": "2h",
		"Justification": "INC-9 <db> & cache", "Ticket": "jira:OPS-1", "Decide by": "2026-05-05 10:00 UTC", "Request": "alice-admin-x7"} {
		if facts[name] != want {
			t.Errorf("fact %s = %q, want %q", name, facts[name], want)
		}
	}
	var commands []string
	for _, a := range n.Spec.Actions {
		commands = append(commands, a.Command)
	}
	want := []string{`kubectl pim approve alice-admin-x7 --reason "REASON"`, `kubectl pim deny alice-admin-x7 --reason "REASON"`,
		`kubectl annotate activationrequest alice-admin-x7 kubepim.io/approve="REASON"`}
	if !reflect.DeepEqual(commands, want) {
		t.Errorf("commands %q, want %q", commands, want)
	}
}

func TestConsoleLink(t *testing.T) {
	var c Content
	c.ConsoleLink("", RequestPath("r1"))
	if len(c.Facts) != 0 {
		t.Fatalf("a link without --console-url: %v", c.Facts)
	}
	c.ConsoleLink("https://pim.example.com/", RequestPath("alice-admin-x7"))
	if len(c.Facts) != 1 || c.Facts[0].Name != "Console" || c.Facts[0].Value != "https://pim.example.com/requests/alice-admin-x7" {
		t.Fatalf("link: %v", c.Facts)
	}
}

func TestRequesterIsNotOfferedToApprove(t *testing.T) {
	ar := &pimv1.ActivationRequest{ObjectMeta: metav1.ObjectMeta{Name: "r1"}, Spec: pimv1.ActivationRequestSpec{
		RoleRef: pimv1.RoleRef{Kind: "ClusterRole", Name: "admin"}, Requester: &pimv1.UserInfo{Username: "alice"}}}
	c := ActivationContent(ar, policy.Occurrence{Event: pimv1.EventApprovalNeeded, At: t0}, pimv1.AudienceRequester)
	if len(c.Actions) != 1 || c.Actions[0].Command != "kubectl pim cancel r1" {
		t.Errorf("requester's actions %v", c.Actions)
	}
}

func TestPayloads(t *testing.T) {
	n := approvalNeeded()
	t.Run("Webhook", func(t *testing.T) {
		body, err := Payload(pimv1.ChannelWebhook, n)
		if err != nil {
			t.Fatal(err)
		}
		var doc Document
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.ID != n.Name || doc.Event != pimv1.EventApprovalNeeded || !doc.Critical || len(doc.Actions) != 3 || !doc.OccurredAt.Equal(t0) {
			t.Errorf("document %+v", doc)
		}
	})
	t.Run("Slack escapes mrkdwn and puts commands in code blocks", func(t *testing.T) {
		body, err := Payload(pimv1.ChannelSlack, n)
		if err != nil {
			t.Fatal(err)
		}
		s := string(body)
		for _, want := range []string{`"type":"header"`, `INC-9 \u0026lt;db\u0026gt; \u0026amp; cache`, "```kubectl pim approve alice-admin-x7"} {
			if !strings.Contains(s, want) {
				t.Errorf("Slack payload lacks %s:\n%s", want, s)
			}
		}
		if strings.Contains(s, "<db>") {
			t.Error("unescaped < > in Slack mrkdwn")
		}
	})
	t.Run("Teams is an Adaptive Card", func(t *testing.T) {
		body, err := Payload(pimv1.ChannelTeams, n)
		if err != nil {
			t.Fatal(err)
		}
		var msg struct {
			Type        string
			Attachments []struct {
				ContentType string
				Content     struct {
					Type, Version string
					Body          []map[string]any
				}
			}
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Type != "message" || len(msg.Attachments) != 1 || msg.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" ||
			msg.Attachments[0].Content.Type != "AdaptiveCard" || msg.Attachments[0].Content.Body[0]["color"] != "Attention" {
			t.Errorf("Teams message %s", body)
		}
	})
	if _, err := Payload(pimv1.ChannelSMTP, n); err == nil {
		t.Error("an SMTP channel got an HTTP payload")
	}
}

func TestEmail(t *testing.T) {
	n := approvalNeeded()
	n.Spec.Title += " — ünïcode"
	raw, err := Email(n, "pim@example.com", "carol@example.com", t0)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || !strings.HasPrefix(subject, "[kubepim] Approval needed: alice") || !strings.HasSuffix(subject, "ünïcode") {
		t.Errorf("subject %q (%v)", subject, err)
	}
	if got := msg.Header.Get("Message-Id"); got != "<approvalneeded-abc.u-1@kubepim.io>" {
		t.Errorf("Message-ID %q", got)
	}
	if msg.Header.Get("Importance") != "high" || msg.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers %v", msg.Header)
	}
	if _, err := Email(n, "pim@example.com", "x@example.com\r\nBcc: all@example.com", t0); err == nil {
		t.Error("a header injection through the address was accepted")
	}
}
