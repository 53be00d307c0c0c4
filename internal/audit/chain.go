package audit

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// AnchorName is the ConfigMap (in kubepim's namespace) that remembers the
// last pruned event, so that the retained window still verifies and a
// deleted oldest event is told apart from a pruned one.
const AnchorName = "kubepim-audit-anchor"

// Anchor is the last event pruned from the chain.
type Anchor struct {
	Sequence int64
	Hash     string
}

// ReadAnchor returns the chain's anchor (zero when nothing was pruned).
func ReadAnchor(ctx context.Context, c client.Reader, namespace string) (Anchor, error) {
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: AnchorName}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return Anchor{}, nil
		}
		return Anchor{}, err
	}
	seq, err := strconv.ParseInt(cm.Data["sequence"], 10, 64)
	if err != nil {
		return Anchor{}, fmt.Errorf("audit anchor is malformed: %w", err)
	}
	return Anchor{Sequence: seq, Hash: cm.Data["hash"]}, nil
}

func writeAnchor(ctx context.Context, c client.Client, namespace string, a Anchor) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: AnchorName,
		Labels: map[string]string{pimv1.LabelManagedBy: pimv1.ManagedByValue}}}
	data := map[string]string{"sequence": strconv.FormatInt(a.Sequence, 10), "hash": a.Hash}
	err := c.Get(ctx, client.ObjectKeyFromObject(cm), cm)
	switch {
	case apierrors.IsNotFound(err):
		cm.Data = data
		return c.Create(ctx, cm)
	case err != nil:
		return err
	}
	cm.Data = data
	return c.Update(ctx, cm)
}

// Report is the outcome of a verification.
type Report struct {
	// Events verified.
	Events int
	// First and Last sequence numbers in the retained window.
	First, Last int64
	// Problem says what is wrong, empty when the chain verifies.
	Problem string
	// Event names the first event concerned.
	Event string
	// FromOldest says the chain was verified from its oldest retained
	// event, without the anchor (a reader who may not read it): events
	// removed from the old end cannot be told from pruned ones.
	FromOldest bool
	// Segment says only a run of the chain was read and verified (the
	// events of a range of days, NewSegment).
	Segment bool
}

// OK reports whether the chain verified.
func (r Report) OK() bool { return r.Problem == "" }

func (r Report) String() string {
	if r.OK() {
		s := fmt.Sprintf("audit trail verified: %d events, sequence %d to %d", r.Events, r.First, r.Last)
		switch {
		case r.Segment:
			s += " (the events read: the links before the first of them were not)"
		case r.FromOldest:
			s += " (from the oldest retained event: the anchor was not read)"
		}
		return s
	}
	return fmt.Sprintf("audit trail does NOT verify: %s (event %s)", r.Problem, r.Event)
}

type link struct {
	name               string
	sequence           int64
	previousHash, hash string
	intact             bool
}

// Chain verifies the retained chain from events given in any order (as a
// paged list returns them), keeping only each event's links, not the
// event.
type Chain struct {
	anchor     Anchor
	fromOldest bool
	segment    bool
	links      []link
}

// NewChain verifies from anchor (ReadAnchor's).
func NewChain(anchor Anchor) *Chain { return &Chain{anchor: anchor} }

// NewChainFromOldest verifies from the oldest retained event, for a
// reader who may list the events but not read the anchor (kubepim's
// namespace is not theirs): edits, insertions, re-linking and removals
// after the oldest retained event are found; a removal of the oldest
// events themselves looks like pruning.
func NewChainFromOldest() *Chain { return &Chain{fromOldest: true} }

// NewSegment verifies a run of the chain (the events of a range of days,
// selected by LabelDay) from its first event, as NewChainFromOldest does.
func NewSegment() *Chain { return &Chain{fromOldest: true, segment: true} }

// Add takes one event into the chain.
func (c *Chain) Add(ev *pimv1.AuditEvent) {
	if !c.fromOldest && ev.Spec.Sequence <= c.anchor.Sequence {
		return // pruned, or being pruned
	}
	c.links = append(c.links, link{name: ev.Name, sequence: ev.Spec.Sequence, previousHash: ev.Spec.PreviousHash,
		hash: ev.Spec.Hash, intact: Hash(ev.Spec) == ev.Spec.Hash && LabelsMatch(ev)})
}

// Report walks the links in sequence order and reports the first event
// that was edited (its hash does not match its content), inserted (a
// sequence number twice, or a link that does not follow) or removed (a
// sequence number missing).
func (c *Chain) Report() Report {
	links := c.links
	slices.SortFunc(links, func(a, b link) int { return cmpInt64(a.sequence, b.sequence) })
	rep := Report{Events: len(links), FromOldest: c.fromOldest, Segment: c.segment}
	if len(links) > 0 {
		rep.First, rep.Last = links[0].sequence, links[len(links)-1].sequence
	}
	prev := c.anchor
	prevName := "(anchor)"
	if c.fromOldest && len(links) > 0 {
		prev, prevName = Anchor{Sequence: links[0].sequence - 1, Hash: links[0].previousHash}, "(the oldest retained event)"
	}
	for _, l := range links {
		switch {
		case !l.intact:
			rep.Problem, rep.Event = fmt.Sprintf("event %d was edited: its hash does not match its content (or its labels do not match its time and role)", l.sequence), l.name
		case l.sequence == prev.Sequence:
			rep.Problem, rep.Event = fmt.Sprintf("sequence %d appears twice: an event was inserted", l.sequence), l.name
		case l.sequence > prev.Sequence+1:
			rep.Problem, rep.Event = fmt.Sprintf("events %d to %d are missing: removed after %s", prev.Sequence+1, l.sequence-1, prevName), l.name
		case l.previousHash != prev.Hash:
			rep.Problem, rep.Event = fmt.Sprintf("event %d does not follow event %d: the chain was re-linked", l.sequence, prev.Sequence), l.name
		}
		if !rep.OK() {
			return rep
		}
		prev, prevName = Anchor{Sequence: l.sequence, Hash: l.hash}, l.name
	}
	return rep
}

// Verify walks the retained chain, from the anchor to the head, and reports
// the first event that was edited, inserted or removed (Chain.Report).
func Verify(ctx context.Context, c client.Reader, namespace string) (Report, error) {
	anchor, err := ReadAnchor(ctx, c, namespace)
	if err != nil {
		return Report{}, err
	}
	chain := NewChain(anchor)
	if err := Each(ctx, c, func(ev *pimv1.AuditEvent) error { chain.Add(ev); return nil }); err != nil {
		return Report{}, err
	}
	return chain.Report(), nil
}

// Prune deletes events older than retention, oldest first, after moving
// the anchor to the newest of them: Verify ignores events at or below the
// anchor, so the chain verifies throughout, even if pruning stops half way.
// It never deletes the head, which the next event links to. It does not
// hold the recorder's lock: appending at the head and pruning at the tail
// do not meet, and controllers must not wait for a long prune.
func (r *Recorder) Prune(ctx context.Context, namespace string, retention time.Duration) (int, error) {
	cutoff := r.Clock.Now().Add(-retention)
	type old struct {
		name string
		seq  int64
		hash string
	}
	var olds []old
	var newest int64
	err := Each(ctx, r.Client, func(ev *pimv1.AuditEvent) error {
		newest = max(newest, ev.Spec.Sequence)
		if ev.Spec.Time.Time.Before(cutoff) {
			olds = append(olds, old{ev.Name, ev.Spec.Sequence, ev.Spec.Hash})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.SortFunc(olds, func(a, b old) int { return cmpInt64(a.seq, b.seq) })
	if n := len(olds); n > 0 && olds[n-1].seq == newest {
		olds = olds[:n-1]
	}
	if len(olds) == 0 {
		return 0, nil
	}
	last := olds[len(olds)-1]
	if err := writeAnchor(ctx, r.Client, namespace, Anchor{Sequence: last.seq, Hash: last.hash}); err != nil {
		return 0, err
	}
	pruned := 0
	for _, o := range olds {
		ev := &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: o.name}}
		if err := r.Client.Delete(ctx, ev); client.IgnoreNotFound(err) != nil {
			return pruned, err
		}
		pruned++
	}
	return pruned, nil
}
