// Package notify turns what happens to assignments and activations into
// messages, and delivers them to JSON webhooks, Slack, Microsoft Teams and
// mail servers. What to send and to whom is decided by the notification
// controllers; this package holds the parts that need no cluster: the user
// directory, the message text, each channel's payload and the senders.
package notify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// DefaultDirectory is the user directory kubepim reads when not told
// otherwise: a ConfigMap in kubepim's namespace.
const DefaultDirectory = "configmap/kubepim-user-directory"

// DefaultEmailClaim is the user-extra key whose value, at request time,
// is the requester's address (map the OIDC email claim to it).
const DefaultEmailClaim = "email"

// Directory maps usernames and groups to email addresses. It is kept in a
// ConfigMap or Secret under two keys, each a YAML map:
//
//	users: |
//	  alice: alice@example.com
//	groups: |
//	  pim-approvers: [carol@example.com, dave@example.com]
type Directory struct {
	Users  map[string]string   `json:"users,omitempty"`
	Groups map[string][]string `json:"groups,omitempty"`
}

// ParseDirectory reads the keys "users" and "groups" of a ConfigMap's or
// Secret's data.
func ParseDirectory(data map[string]string) (Directory, error) {
	var d Directory
	if err := yaml.UnmarshalStrict([]byte(data["users"]), &d.Users); err != nil {
		return Directory{}, fmt.Errorf("users: %w", err)
	}
	if err := yaml.UnmarshalStrict([]byte(data["groups"]), &d.Groups); err != nil {
		return Directory{}, fmt.Errorf("groups: %w", err)
	}
	return d, nil
}

// User returns a user's address.
func (d Directory) User(name string) (string, bool) {
	addr, ok := d.Users[name]
	return addr, ok && addr != ""
}

// Group returns the addresses of a group's members.
func (d Directory) Group(name string) []string { return d.Groups[name] }

// DirectorySource says where the directory is: "configmap/NAME" or
// "secret/NAME" in Namespace.
type DirectorySource struct {
	Reader    client.Reader
	Namespace string
	Ref       string
}

// Load reads the directory; none at all is an empty directory.
func (s DirectorySource) Load(ctx context.Context) (Directory, error) {
	kind, name, ok := strings.Cut(s.Ref, "/")
	if !ok || name == "" {
		return Directory{}, fmt.Errorf("user directory %q: want configmap/NAME or secret/NAME", s.Ref)
	}
	key := types.NamespacedName{Namespace: s.Namespace, Name: name}
	data := map[string]string{}
	switch strings.ToLower(kind) {
	case "configmap":
		cm := &corev1.ConfigMap{}
		if err := s.Reader.Get(ctx, key, cm); apierrors.IsNotFound(err) {
			return Directory{}, nil
		} else if err != nil {
			return Directory{}, err
		}
		data = cm.Data
	case "secret":
		secret := &corev1.Secret{}
		if err := s.Reader.Get(ctx, key, secret); apierrors.IsNotFound(err) {
			return Directory{}, nil
		} else if err != nil {
			return Directory{}, err
		}
		for k, v := range secret.Data {
			data[k] = string(v)
		}
	default:
		return Directory{}, fmt.Errorf("user directory %q: want configmap/NAME or secret/NAME", s.Ref)
	}
	d, err := ParseDirectory(data)
	if err != nil {
		return Directory{}, fmt.Errorf("user directory %s: %w", s.Ref, err)
	}
	return d, nil
}

// Addresses collects the addresses of people and groups, in order, without
// repeats, and names those the directory does not know.
type Addresses struct {
	To          []string
	Unreachable []string

	// seen indexes To: a directory group may hold thousands of people.
	seen map[string]bool
}

// Add adds an address.
func (a *Addresses) Add(addr string) {
	if addr == "" {
		return
	}
	if a.seen == nil {
		a.seen = make(map[string]bool, len(a.To)+1)
		for _, t := range a.To {
			a.seen[t] = true
		}
	}
	if !a.seen[addr] {
		a.seen[addr] = true
		a.To = append(a.To, addr)
	}
}

// Missing names someone without an address.
func (a *Addresses) Missing(who string) {
	if !slices.Contains(a.Unreachable, who) {
		a.Unreachable = append(a.Unreachable, who)
	}
}

// Remove drops an address (the requester's, from their approvers').
func (a *Addresses) Remove(addr string) {
	a.To = slices.DeleteFunc(a.To, func(s string) bool { return s == addr })
	delete(a.seen, addr)
}

// Bounds of one Notification's recipients. Approvers or assignees named
// through a directory group can be thousands of people; one Notification
// (spec.to, and status.deliveredTo as delivery goes) must fit the API
// server's ~1.5 MiB object limit, and an address may be 320 bytes long.
const (
	// MaxRecipients is how many addresses one Notification carries: at
	// 320 bytes each, spec.to and status.deliveredTo take at most 640 KB.
	// More recipients get more Notifications (Batches): everyone is
	// still written to.
	MaxRecipients = 1000
	// MaxUnreachable is how many people without an address one
	// Notification names (each up to 1 KiB); a last entry "and N more
	// without an address" counts the rest.
	MaxUnreachable = 100
)

// BatchName is the name of the i-th Notification of one mail: the first
// keeps the plain name (as before there were batches, so an upgrade finds
// what it made), the others add their number.
func BatchName(name string, i int) string {
	if i == 0 {
		return name
	}
	return fmt.Sprintf("%s-%d", name, i)
}

// Batches splits a into Notifications' worth of recipients, in order: at
// most MaxRecipients addresses each. The first batch names the people
// without an address (at most MaxUnreachable, then how many more); with no
// address at all there is one batch, naming them.
func (a Addresses) Batches() []Addresses {
	unreachable := a.Unreachable
	if len(unreachable) > MaxUnreachable {
		unreachable = append(slices.Clone(unreachable[:MaxUnreachable-1]),
			fmt.Sprintf("and %d more without an address", len(unreachable)-(MaxUnreachable-1)))
	}
	out := []Addresses{{Unreachable: unreachable}}
	for i := 0; i < len(a.To); i += MaxRecipients {
		to := a.To[i:min(i+MaxRecipients, len(a.To))]
		if i == 0 {
			out[0].To = to
			continue
		}
		out = append(out, Addresses{To: to})
	}
	return out
}
