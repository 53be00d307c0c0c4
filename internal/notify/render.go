package notify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"

	"k8s.io/utils/ptr"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// Document is the JSON a Webhook channel receives: everything the
// notification knows, for receivers that route or format it themselves.
type Document struct {
	// ID is the same on every attempt: receivers drop repeats by it.
	ID         string                     `json:"id"`
	Event      string                     `json:"event"`
	Audience   string                     `json:"audience"`
	Critical   bool                       `json:"critical"`
	Title      string                     `json:"title"`
	Facts      []pimv1.NotificationFact   `json:"facts"`
	Actions    []pimv1.NotificationAction `json:"actions"`
	Source     pimv1.AuditObjectReference `json:"source"`
	OccurredAt time.Time                  `json:"occurredAt"`
}

// Payload returns the body of an HTTP channel's POST (always JSON).
func Payload(channelType string, n *pimv1.Notification) ([]byte, error) {
	switch channelType {
	case pimv1.ChannelWebhook:
		return json.Marshal(Document{ID: n.Name, Event: n.Spec.Event, Audience: n.Spec.Audience, Critical: ptr.Deref(n.Spec.Critical, false),
			Title: n.Spec.Title, Facts: orEmpty(n.Spec.Facts), Actions: orEmpty(n.Spec.Actions), Source: n.Spec.Source,
			OccurredAt: n.Spec.OccurredAt.UTC()})
	case pimv1.ChannelSlack:
		return json.Marshal(slackMessage(n))
	case pimv1.ChannelTeams:
		return json.Marshal(teamsMessage(n))
	}
	return nil, fmt.Errorf("channel type %q is not an HTTP channel", channelType)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// slackMessage is an incoming-webhook message: text for notifications
// and old clients, Block Kit for the channel.
func slackMessage(n *pimv1.Notification) map[string]any {
	blocks := []map[string]any{{
		"type": "header",
		"text": map[string]any{"type": "plain_text", "text": truncate(n.Spec.Title, 150)},
	}}
	// A section holds at most ten fields.
	for i := 0; i < len(n.Spec.Facts); i += 10 {
		var fields []map[string]any
		for _, f := range n.Spec.Facts[i:min(i+10, len(n.Spec.Facts))] {
			fields = append(fields, map[string]any{"type": "mrkdwn", "text": "*" + slackEscape(f.Name) + "*\n" + slackEscape(f.Value)})
		}
		blocks = append(blocks, map[string]any{"type": "section", "fields": fields})
	}
	for _, a := range n.Spec.Actions {
		blocks = append(blocks, map[string]any{"type": "section",
			"text": map[string]any{"type": "mrkdwn", "text": "*" + slackEscape(a.Label) + "*\n```" + slackEscape(a.Command) + "```"}})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]any{{
		"type": "mrkdwn", "text": slackEscape(footer(n)),
	}}})
	return map[string]any{"text": slackEscape(n.Spec.Title), "blocks": blocks}
}

// slackEscape escapes the three characters Slack's mrkdwn reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// teamsMessage is what a Teams workflow ("when a Teams webhook request is
// received") posts to a channel: a message with one Adaptive Card.
func teamsMessage(n *pimv1.Notification) map[string]any {
	title := map[string]any{"type": "TextBlock", "text": n.Spec.Title, "weight": "Bolder", "size": "Medium", "wrap": true}
	if ptr.Deref(n.Spec.Critical, false) {
		title["color"] = "Attention"
	}
	body := []map[string]any{title}
	if len(n.Spec.Facts) > 0 {
		var facts []map[string]any
		for _, f := range n.Spec.Facts {
			facts = append(facts, map[string]any{"title": f.Name, "value": f.Value})
		}
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	for _, a := range n.Spec.Actions {
		body = append(body,
			map[string]any{"type": "TextBlock", "text": a.Label, "weight": "Bolder", "wrap": true, "spacing": "Medium"},
			map[string]any{"type": "TextBlock", "text": a.Command, "fontType": "Monospace", "wrap": true})
	}
	body = append(body, map[string]any{"type": "TextBlock", "text": footer(n), "isSubtle": true, "size": "Small", "wrap": true})
	return map[string]any{
		"type": "message",
		"attachments": []map[string]any{{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content": map[string]any{
				"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
				"type":    "AdaptiveCard",
				"version": "1.4",
				"body":    body,
			},
		}},
	}
}

func footer(n *pimv1.Notification) string {
	s := "kubepim · " + n.Spec.Event + " · " + n.Spec.OccurredAt.UTC().Format(time.RFC3339)
	if ptr.Deref(n.Spec.Critical, false) {
		s += " · critical"
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Text is the plain-text body of a notification.
func Text(n *pimv1.Notification) string {
	var b strings.Builder
	b.WriteString(n.Spec.Title + "\n\n")
	width := 0
	for _, f := range n.Spec.Facts {
		width = max(width, len(f.Name))
	}
	for _, f := range n.Spec.Facts {
		fmt.Fprintf(&b, "%-*s  %s\n", width+1, f.Name+":", f.Value)
	}
	for _, a := range n.Spec.Actions {
		fmt.Fprintf(&b, "\n%s:\n    %s\n", a.Label, a.Command)
	}
	b.WriteString("\n-- \n" + footer(n) + "\n")
	return b.String()
}

// Email is a complete RFC 5322 message to one address. Its Message-ID is
// the same on every attempt, so a mail system can drop a repeat.
func Email(n *pimv1.Notification, from, to string, date time.Time) ([]byte, error) {
	var b bytes.Buffer
	subject := "[kubepim] " + n.Spec.Title
	header := []struct{ k, v string }{
		{"From", "kubepim <" + from + ">"},
		{"To", "<" + to + ">"},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", date.UTC().Format(time.RFC1123Z)},
		{"Message-ID", "<" + n.Name + "." + string(n.UID) + "@kubepim.io>"},
		{"Auto-Submitted", "auto-generated"},
		{"X-Kubepim-Event", n.Spec.Event},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
	}
	if ptr.Deref(n.Spec.Critical, false) {
		header = append(header, struct{ k, v string }{"Importance", "high"})
	}
	for _, h := range header {
		if strings.ContainsAny(h.v, "\r\n") {
			return nil, fmt.Errorf("header %s contains a line break", h.k)
		}
		b.WriteString(h.k + ": " + h.v + "\r\n")
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(Text(n), "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
