// Package audit writes kubepim's tamper-evident audit trail: one AuditEvent
// per action, exactly once, chained by sequence number and SHA-256 hash.
//
// Exactly once: an event's name is derived from the object's UID, the
// action and a discriminator, so a retried reconcile or a restarted manager
// that records the same action again finds it there (AlreadyExists) and
// writes nothing. Nothing lost: controllers record an action after doing it
// and before they store the new state, so a crash in between repeats the
// (idempotent) action and records it then.
//
// Tamper evidence: each event carries the next sequence number and
// hash = sha256(previousHash + "\n" + canonical JSON of the event without
// its hash). Verify walks the chain and reports the first event that was
// edited, inserted or removed. Only the elected leader writes, one event at
// a time.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// ControllerActor is the actor of actions kubepim takes on its own, on a
// timer or because a policy stopped holding.
var ControllerActor = pimv1.UserInfo{Username: "kubepim:controller"}

// Entry is one action to record.
type Entry struct {
	Action string
	// Actor who caused it; nil means kubepim itself (ControllerActor).
	Actor         *pimv1.UserInfo
	Subject       *pimv1.Subject
	RoleRef       *pimv1.RoleRef
	Namespace     string
	Target        client.Object
	TargetKind    string
	Justification string
	Ticket        *pimv1.Ticket
	Outcome       string
	Reason        string
	Details       map[string]string
	// Discriminator tells apart repeated occurrences of the same action on
	// the same object (a second repair, a second approver).
	Discriminator string
}

// Recorder writes entries as AuditEvents.
type Recorder struct {
	// Client talks to the API server directly (the chain head must be
	// read from storage, not from a cache).
	Client client.Client
	Clock  clock.PassiveClock
	// Log receives each event as one structured line, for SIEM pipelines.
	Log logr.Logger
	// Sink, when set, receives a copy of each event.
	Sink *Sink

	mu   sync.Mutex
	head *head
}

type head struct {
	sequence int64
	hash     string
	// day is the head's LabelDay: no later event is labelled earlier.
	day string
}

// Labels kubepim stamps on every AuditEvent it writes, so that readers can
// have the API server select events (a label selector) instead of reading
// the whole trail. Only kubepim writes AuditEvents (the validating
// webhook refuses everyone else's create, update and delete), so nobody
// else can set or change them. They are not covered by the chain's hash
// (which covers the spec, as before): both are derived from the spec, and
// Chain.Add reports an event whose labels do not match it.
const (
	// LabelDay is the UTC day of the event (2006-01-02): its spec.time's,
	// or the day of the event before it in the chain when that is later
	// (events are built before they are linked, and a few may cross
	// midnight out of order), so that the labels never go back along the
	// chain and a run of days is a run of sequence numbers. An event's
	// label is its time's day or, at midnight, the next day (any later day
	// only if the clock stepped back; LabelsMatch).
	LabelDay = "kubepim.io/day"
	// LabelRole is RoleLabel of the event's spec.roleRef.name (events
	// without a role have none).
	LabelRole = "kubepim.io/role"
	dayLayout = "2006-01-02"
)

// Day is the LabelDay value of a time.
func Day(t time.Time) string { return t.UTC().Format(dayLayout) }

// RoleLabel is the LabelRole value of a role name: the first 20 hex digits
// of its SHA-256 (a role name may be longer than a label value, or hold a
// ':'). The name itself is in the spec.
func RoleLabel(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:10])
}

// Labels are the labels of an event of spec s labelled day.
func Labels(s pimv1.AuditEventSpec, day string) map[string]string {
	l := map[string]string{LabelDay: day}
	if s.RoleRef != nil && s.RoleRef.Name != "" {
		l[LabelRole] = RoleLabel(s.RoleRef.Name)
	}
	return l
}

// LabelsMatch reports whether an event's labels are those its spec
// implies (the day may be the next, see LabelDay).
func LabelsMatch(ev *pimv1.AuditEvent) bool {
	day, ok := ev.Labels[LabelDay]
	if !ok {
		return true // written before kubepim labelled events
	}
	// Not earlier than its time's day; later only when the event before it
	// in the chain was labelled later. That is the next day at midnight,
	// but may be any later day when the clock stepped back, or when the
	// event was built long before it was linked (a test's fake clock
	// jumping months while a pass waits for the recorder): a later label
	// is kubepim's own and keeps the labels monotonic along the chain, so
	// it is not reported as an edit. (Such an event is found by a range
	// that covers its label's day.)
	if day < Day(ev.Spec.Time.Time) {
		return false
	}
	want := ""
	if ev.Spec.RoleRef != nil && ev.Spec.RoleRef.Name != "" {
		want = RoleLabel(ev.Spec.RoleRef.Name)
	}
	return ev.Labels[LabelRole] == want
}

// Name is the deterministic name of an entry's event.
func Name(e Entry) string {
	uid := ""
	if e.Target != nil {
		uid = string(e.Target.GetUID())
	}
	sum := sha256.Sum256([]byte(uid + "\x00" + e.Action + "\x00" + e.Discriminator))
	return strings.ToLower(e.Action) + "-" + hex.EncodeToString(sum[:])[:24]
}

// Record writes e unless it was written before.
//
// Controllers run several workers, so Record is called concurrently: the
// lock covers only what must be serial to keep the chain gapless and
// exactly-once — reading the head, linking and creating the event, and
// advancing the head. The event's content is built before, the log line and
// sink copy are made after.
func (r *Recorder) Record(ctx context.Context, e Entry) error {
	ev := &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: Name(e)}}
	ev.Spec = r.spec(e)
	stored, err := r.link(ctx, ev)
	if err != nil || !stored {
		return err
	}
	if r.Sink != nil {
		r.Sink.Enqueue(ev)
	}
	r.Log.Info("audit", "event", ev.Name, "sequence", ev.Spec.Sequence, "action", ev.Spec.Action,
		"actor", ev.Spec.Actor.Username, "target", ev.Spec.Target, "roleRef", ev.Spec.RoleRef,
		"namespace", ev.Spec.Namespace, "subject", ev.Spec.Subject, "outcome", ev.Spec.Outcome,
		"reason", ev.Spec.Reason, "time", ev.Spec.Time.UTC().Format(time.RFC3339), "hash", ev.Spec.Hash)
	return nil
}

// link appends ev to the chain under the lock; it reports false when ev
// was recorded before.
func (r *Recorder) link(ctx context.Context, ev *pimv1.AuditEvent) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.head == nil {
		h, err := r.loadHead(ctx)
		if err != nil {
			return false, fmt.Errorf("reading the audit chain: %w", err)
		}
		r.head = h
	}
	ev.Spec.Sequence = r.head.sequence + 1
	ev.Spec.PreviousHash = r.head.hash
	ev.Spec.Hash = Hash(ev.Spec)
	day := max(Day(ev.Spec.Time.Time), r.head.day)
	ev.Labels = Labels(ev.Spec, day)
	if err := r.Client.Create(ctx, ev); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		// Whether it was stored is unknown: read the head again next time.
		r.head = nil
		return false, fmt.Errorf("recording audit event %s: %w", ev.Spec.Action, err)
	}
	r.head = &head{sequence: ev.Spec.Sequence, hash: ev.Spec.Hash, day: day}
	return true, nil
}

// Bounds of what one AuditEvent holds. An event the API server refuses is
// an action that cannot be recorded, and kubepim records before it stores
// the new state, so the pass would fail on every retry: the outside
// binding in enforce mode would never be removed, the deactivation never
// finished. Reasons and details quote what people typed (reasons) or what
// they made (a binding's subjects), so the recorder cuts what is longer,
// saying "… (N bytes cut)", and hashes what it stores.
const (
	// MaxReasonLength is the API's limit on spec.reason.
	MaxReasonLength = 32768
	// MaxJustificationLength is the API's limit on spec.justification
	// (the same as an ActivationRequest's).
	MaxJustificationLength = 4096
	// MaxDetails is how many details one event keeps (kubepim writes at
	// most ten); the API allows as many (maxProperties).
	MaxDetails = 32
	// MaxDetailLength bounds one detail's value: a binding's subjects or
	// a review's reviewers are lists whose text has no natural limit.
	// 32 details of 8 KiB stay far below the object limit.
	MaxDetailLength = 8192
)

// bounded returns e's fields cut to the bounds above.
func bounded(e Entry) Entry {
	e.Reason = policy.Truncate(e.Reason, MaxReasonLength)
	e.Justification = policy.Truncate(e.Justification, MaxJustificationLength)
	if len(e.Details) == 0 {
		return e
	}
	keys := slices.Sorted(maps.Keys(e.Details))
	details := make(map[string]string, min(len(keys), MaxDetails))
	for i, k := range keys {
		if i == MaxDetails-1 && len(keys) > MaxDetails {
			details["…"] = fmt.Sprintf("%d more details cut: %s", len(keys)-i, policy.JoinBounded(keys[i:], ", ", policy.MaxNamesShown, 1024))
			break
		}
		details[k] = policy.Truncate(e.Details[k], MaxDetailLength)
	}
	e.Details = details
	return e
}

func (r *Recorder) spec(e Entry) pimv1.AuditEventSpec {
	e = bounded(e)
	actor := ControllerActor
	if e.Actor != nil {
		actor = pimv1.UserInfo{Username: e.Actor.Username, UID: e.Actor.UID, Groups: e.Actor.Groups}
	}
	s := pimv1.AuditEventSpec{
		Time:          metav1.NewTime(r.Clock.Now().UTC().Truncate(time.Second)),
		Action:        e.Action,
		Actor:         &actor,
		Subject:       e.Subject,
		RoleRef:       e.RoleRef,
		Namespace:     e.Namespace,
		Justification: e.Justification,
		Ticket:        e.Ticket,
		Outcome:       e.Outcome,
		Reason:        e.Reason,
		Details:       e.Details,
	}
	if s.Outcome == "" {
		s.Outcome = pimv1.AuditOutcomeSuccess
	}
	if e.Target != nil {
		s.Target = &pimv1.AuditObjectReference{Kind: e.TargetKind, Name: e.Target.GetName(), UID: string(e.Target.GetUID())}
	}
	return s
}

// loadHead finds the last event of the chain, paging through the events.
func (r *Recorder) loadHead(ctx context.Context) (*head, error) {
	h := &head{}
	err := Each(ctx, r.Client, func(ev *pimv1.AuditEvent) error {
		if ev.Spec.Sequence > h.sequence {
			h.sequence, h.hash = ev.Spec.Sequence, ev.Spec.Hash
			h.day = ev.Labels[LabelDay]
			if h.day == "" {
				h.day = Day(ev.Spec.Time.Time)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Hash is the chain hash of an event: sha256 over the previous hash and the
// canonical JSON encoding of the event with its own hash left out.
func Hash(s pimv1.AuditEventSpec) string {
	s.Hash = ""
	// encoding/json writes struct fields in declaration order and map keys
	// sorted, and metav1.Time in RFC 3339 seconds: a canonical encoding.
	body, err := json.Marshal(s)
	if err != nil {
		panic(err) // a struct of strings and maps always encodes
	}
	sum := sha256.Sum256(append([]byte(s.PreviousHash+"\n"), body...))
	return hex.EncodeToString(sum[:])
}

// pageSize is how many events one list call returns.
const pageSize = 500

// Each calls fn for every AuditEvent, a page at a time, so that no caller
// holds the whole trail in memory twice.
func Each(ctx context.Context, c client.Reader, fn func(*pimv1.AuditEvent) error) error {
	return EachWhere(ctx, c, fn)
}

// EachWhere is Each over the events opts select (a label selector).
func EachWhere(ctx context.Context, c client.Reader, fn func(*pimv1.AuditEvent) error, opts ...client.ListOption) error {
	cont := ""
	for {
		var list pimv1.AuditEventList
		if err := c.List(ctx, &list, append(slices.Clip(opts), client.Limit(pageSize), client.Continue(cont))...); err != nil {
			return err
		}
		for i := range list.Items {
			if err := fn(&list.Items[i]); err != nil {
				return err
			}
		}
		if cont = list.Continue; cont == "" {
			return nil
		}
	}
}

// MaxRangeDays bounds the days a time range selects by LabelDay: a
// longer range (or one without a start) reads the whole trail.
const MaxRangeDays = 93

// RangeDays are the LabelDay values of [since, until] and of the day after
// until (an event built just before midnight and linked just after is
// labelled with the next day), or nil when there are more than
// MaxRangeDays or since is zero.
func RangeDays(since, until time.Time) []string {
	if since.IsZero() {
		return nil
	}
	var days []string
	for d := since.UTC().Truncate(24 * time.Hour); !d.After(until.UTC().Add(24 * time.Hour)); d = d.Add(24 * time.Hour) {
		if len(days) == MaxRangeDays {
			return nil
		}
		days = append(days, Day(d))
	}
	return days
}

// RangeSelector is the label selector of the events of [since, until]
// (until zero: now), or nil when the whole trail must be read: no since,
// too long a range, or events written before kubepim labelled them (one
// list call of at most one event says). days describes the days selected.
func RangeSelector(ctx context.Context, c client.Reader, since, until, now time.Time) (sel client.ListOption, days string, err error) {
	if until.IsZero() {
		until = now
	}
	d := RangeDays(since, until)
	if d == nil {
		return nil, "", nil
	}
	all, err := AllLabelled(ctx, c)
	if err != nil || !all {
		return nil, "", err
	}
	req, err := labels.NewRequirement(LabelDay, selection.In, d)
	if err != nil {
		return nil, "", err
	}
	return client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}, d[0] + " to " + d[len(d)-1], nil
}

// Unlabelled selects the events written before kubepim labelled them.
func Unlabelled() (client.ListOption, error) {
	req, err := labels.NewRequirement(LabelDay, selection.DoesNotExist, nil)
	if err != nil {
		return nil, err
	}
	return client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*req)}, nil
}

// AllLabelled reports whether every event carries kubepim's labels (one
// list call of at most one event).
func AllLabelled(ctx context.Context, c client.Reader) (bool, error) {
	sel, err := Unlabelled()
	if err != nil {
		return false, err
	}
	var list pimv1.AuditEventList
	if err := c.List(ctx, &list, sel, client.Limit(1)); err != nil {
		return false, err
	}
	return len(list.Items) == 0, nil
}

// LabelOld labels the events written before kubepim labelled them (an
// upgrade), with their time's day and their role: a merge patch of the
// labels alone, by the manager (the webhook lets only it write). It
// returns how many it labelled.
func (r *Recorder) LabelOld(ctx context.Context) (int, error) {
	sel, err := Unlabelled()
	if err != nil {
		return 0, err
	}
	// Only each event's name and labels are kept: an old trail can be long.
	type unlabelled struct {
		name   string
		labels map[string]string
	}
	var old []unlabelled
	if err := EachWhere(ctx, r.Client, func(ev *pimv1.AuditEvent) error {
		old = append(old, unlabelled{ev.Name, Labels(ev.Spec, Day(ev.Spec.Time.Time))})
		return nil
	}, sel); err != nil {
		return 0, err
	}
	n := 0
	for _, ev := range old {
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": ev.labels}})
		if err != nil {
			return n, err
		}
		obj := &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: ev.name}}
		if err := r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
			if apierrors.IsNotFound(err) {
				continue // pruned meanwhile
			}
			return n, fmt.Errorf("labelling audit event %s: %w", ev.name, err)
		}
		n++
	}
	return n, nil
}
