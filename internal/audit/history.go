package audit

import (
	"cmp"
	"context"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// Access history: who held a role, from the audit trail alone. The trail
// records when each activation began (Activated) and ended (Expired,
// Extended, Deactivated) and when each active assignment began
// (AssignmentActivated) and ended (AssignmentExpired, AssignmentRemoved);
// Intervals turns those events into one interval per grant, and Who keeps
// the intervals of a role (and namespace) that overlap a time or a range.
// Both are pure functions: the console's Access history page and
// `kubectl pim audit who` share them.

// Via says how a subject held a role.
const (
	ViaActivation = "Activation"
	ViaAssignment = "Assignment"
)

// Held is one interval during which a subject held a role.
type Held struct {
	Subject   pimv1.Subject `json:"subject"`
	RoleRef   pimv1.RoleRef `json:"roleRef"`
	Namespace string        `json:"namespace,omitempty"`
	// Via is Activation (an ActivationRequest) or Assignment (an active
	// RoleAssignment).
	Via string `json:"via"`
	// Target is the ActivationRequest or RoleAssignment that granted it.
	Target pimv1.AuditObjectReference `json:"target"`
	From   time.Time                  `json:"from"`
	// Until is when the grant ended when Ended, otherwise when it was due
	// to end (an activation's expiry, an assignment's end time); zero for
	// a permanent assignment still in force.
	Until time.Time `json:"until,omitzero"`
	// Ended says the trail records the end; EndedBy is the action that
	// ended it (Expired, Extended, Deactivated, AssignmentExpired,
	// AssignmentRemoved) and EndedByActor who, when someone did.
	Ended        bool   `json:"ended"`
	EndedBy      string `json:"endedBy,omitempty"`
	EndedByActor string `json:"endedByActor,omitempty"`
	// What the request or the assignment said: justification, ticket,
	// approvers (of a request), who assigned (an assignment).
	Justification string        `json:"justification,omitempty"`
	Ticket        *pimv1.Ticket `json:"ticket,omitempty"`
	Approvers     []string      `json:"approvers,omitempty"`
	AssignedBy    string        `json:"assignedBy,omitempty"`
}

// Covers reports whether the interval overlaps [from, to] (both ends
// included; from == to asks about one instant).
func (h Held) Covers(from, to time.Time) bool {
	if h.From.After(to) {
		return false
	}
	return h.Until.IsZero() || h.Until.After(from)
}

// Intervals builds the grant intervals from audit events, in any order
// (they are taken in sequence order). Events about other actions, and
// ends without a beginning (the beginning pruned), are ignored; a grant
// whose end is not recorded ends when it was due to (Ended false).
func Intervals(events []pimv1.AuditEvent) []Held {
	evs := make([]*pimv1.AuditEvent, 0, len(events))
	for i := range events {
		evs = append(evs, &events[i])
	}
	slices.SortStableFunc(evs, func(a, b *pimv1.AuditEvent) int {
		if c := cmp.Compare(a.Spec.Sequence, b.Spec.Sequence); c != 0 {
			return c
		}
		return a.Spec.Time.Compare(b.Spec.Time.Time)
	})
	// What a target's earlier events said, before its grant began.
	type about struct {
		justification string
		ticket        *pimv1.Ticket
		approvers     []string
		assignedBy    string
		open          int // index in out + 1 of its open interval; 0: none
	}
	targets := map[string]*about{}
	var out []Held
	for _, ev := range evs {
		s := ev.Spec
		if s.Target == nil || s.RoleRef == nil {
			continue
		}
		key := s.Target.Kind + "/" + s.Target.Name + "/" + s.Target.UID
		t := targets[key]
		if t == nil {
			t = &about{}
			targets[key] = t
		}
		closeAt := func() {
			if t.open == 0 {
				return
			}
			h := &out[t.open-1]
			h.Until, h.Ended, h.EndedBy = s.Time.UTC(), true, s.Action
			if s.Actor != nil {
				h.EndedByActor = s.Actor.Username
			}
			t.open = 0
		}
		switch s.Action {
		case pimv1.AuditActivationRequested:
			t.justification, t.ticket = s.Justification, s.Ticket
		case pimv1.AuditAssignmentCreated:
			t.justification = s.Justification
			if s.Actor != nil {
				t.assignedBy = s.Actor.Username
			}
		case pimv1.AuditApproved:
			if s.Actor != nil && !slices.Contains(t.approvers, s.Actor.Username) {
				t.approvers = append(t.approvers, s.Actor.Username)
			}
		case pimv1.AuditActivated, pimv1.AuditAssignmentActivated:
			if s.Subject == nil || t.open != 0 {
				continue
			}
			h := Held{Subject: *s.Subject, RoleRef: *s.RoleRef, Namespace: s.Namespace, Target: *s.Target,
				From: s.Time.UTC(), Justification: t.justification, Ticket: t.ticket,
				Approvers: slices.Clone(t.approvers), AssignedBy: t.assignedBy}
			if s.Action == pimv1.AuditActivated {
				h.Via = ViaActivation
				h.From = detailTime(s.Details, "activatedAt", h.From)
				h.Until = detailTime(s.Details, "expiresAt", time.Time{})
			} else {
				h.Via = ViaAssignment
				h.Until = detailTime(s.Details, "endTime", time.Time{})
			}
			out = append(out, h)
			t.open = len(out)
		case pimv1.AuditAssignmentChanged:
			if t.open != 0 {
				out[t.open-1].Until = detailTime(s.Details, "endTime", time.Time{})
			}
		case pimv1.AuditExpired, pimv1.AuditExtended, pimv1.AuditDeactivated,
			pimv1.AuditAssignmentExpired, pimv1.AuditAssignmentRemoved:
			closeAt()
		}
	}
	return out
}

func detailTime(details map[string]string, key string, otherwise time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339, details[key]); err == nil {
		return t.UTC()
	}
	return otherwise
}

// WhoQuery asks who held a role between two times.
type WhoQuery struct {
	// Role is the role's name; RoleKind, when set, its kind.
	Role, RoleKind string
	// Namespace, when set, keeps the grants that let one act there: in
	// that namespace, or cluster-wide. Empty: every scope.
	Namespace string
	// From and To bound the question, both included; equal for "at".
	From, To time.Time
}

// Who keeps the intervals of q's role and namespace that overlap q's
// times, ordered by subject and then by start.
func Who(held []Held, q WhoQuery) []Held {
	var out []Held
	for _, h := range held {
		switch {
		case h.RoleRef.Name != q.Role:
		case q.RoleKind != "" && h.RoleRef.Kind != q.RoleKind:
		case q.Namespace != "" && h.Namespace != "" && h.Namespace != q.Namespace:
		case !h.Covers(q.From, q.To):
		default:
			out = append(out, h)
		}
	}
	slices.SortStableFunc(out, func(a, b Held) int {
		return cmp.Or(cmp.Compare(SubjectString(a.Subject), SubjectString(b.Subject)), a.From.Compare(b.From))
	})
	return out
}

// SubjectString names a subject as one string: "User alice", "Group sre",
// "ServiceAccount ci/deployer".
func SubjectString(s pimv1.Subject) string {
	if s.Kind == pimv1.SubjectKindServiceAccount {
		return s.Kind + " " + s.Namespace + "/" + s.Name
	}
	return s.Kind + " " + s.Name
}

// History reads the trail page by page with c (as its user: an auditor)
// and returns the grant intervals of the role named role. Only that
// role's events are kept in memory.
//
// When every event carries kubepim's labels, the API server selects the
// role's events (LabelRole) and only they are read; otherwise (events
// from before an upgrade, not labelled yet) the whole trail is. Not by
// time: who held a role in a window depends on grants that began before
// it, however long before (a permanent assignment).
func History(ctx context.Context, c client.Reader, role string) ([]Held, error) {
	var opts []client.ListOption
	all, err := AllLabelled(ctx, c)
	if err != nil {
		return nil, err
	}
	if all {
		opts = append(opts, client.MatchingLabels{LabelRole: RoleLabel(role)})
	}
	var events []pimv1.AuditEvent
	err = EachWhere(ctx, c, func(ev *pimv1.AuditEvent) error {
		if ev.Spec.RoleRef != nil && ev.Spec.RoleRef.Name == role {
			events = append(events, pimv1.AuditEvent{Spec: ev.Spec})
		}
		return nil
	}, opts...)
	if err != nil {
		return nil, err
	}
	return Intervals(events), nil
}
