package webhooks

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// DefaultUsageWriteInterval is the least time between two writes of one
// object's status.lastUsedAt by one replica.
const DefaultUsageWriteInterval = time.Minute

// usageForget: an object whose last use is written and older than this is
// dropped from memory.
const usageForget = time.Hour

var usageWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "kubepim_authorizer_last_used_writes_total",
	Help: "Status writes of lastUsedAt by kubepim's authorizer, by result (written, skipped: the stored time was as recent, conflict, error).",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(usageWrites)
}

// usageKey is one object whose use is recorded.
type usageKey struct {
	kind string // ActivationRequest or RoleAssignment
	name string
}

// usageEntry is what a replica knows of one object's use.
type usageEntry struct {
	// seen is the last use this replica observed.
	seen time.Time
	// stored is the last use this replica wrote (or found stored).
	stored time.Time
	// writtenAt is when it last wrote (its clock).
	writtenAt time.Time
}

// usageRecorder keeps, in memory, when the authorizer last allowed a
// request through each activation and the eligibility it relies on, and
// writes it to their status.lastUsedAt: at most once per interval per
// object, the first use at once, later ones at the next flush after the
// interval has passed. Every replica serves the authorizer, so every
// replica records what it sees and writes it itself (not only the leader:
// a non-leader's observations would otherwise need a channel to it). Two
// replicas cannot move the time back: each write is a merge patch with the
// resourceVersion it read (optimistic lock), made only when its time is
// later than the one stored at that version; on a conflict it is tried
// again at the next flush. The write is to the status subresource, which
// only kubepim's manager may write (docs/threat-model.md).
type usageRecorder struct {
	client   client.Client
	clock    clock.PassiveClock
	interval time.Duration
	log      logr.Logger

	mu      sync.Mutex
	entries map[usageKey]*usageEntry
	wake    chan struct{}
}

func newUsageRecorder(c client.Client, clk clock.PassiveClock, log logr.Logger) *usageRecorder {
	return &usageRecorder{client: c, clock: clk, interval: DefaultUsageWriteInterval, log: log,
		entries: map[usageKey]*usageEntry{}, wake: make(chan struct{}, 1)}
}

// Record notes a use at t of activation and eligibility ("" for none).
// It never blocks on the API server: writes happen in Start's loop.
func (u *usageRecorder) Record(activation, eligibility string, t time.Time) {
	if u == nil {
		return
	}
	t = t.Truncate(time.Second) // what metav1.Time keeps
	u.mu.Lock()
	due := false
	for _, k := range []usageKey{{"ActivationRequest", activation}, {"RoleAssignment", eligibility}} {
		if k.name == "" {
			continue
		}
		e := u.entries[k]
		if e == nil {
			e = &usageEntry{}
			u.entries[k] = e
		}
		if t.After(e.seen) {
			e.seen = t
		}
		due = due || u.dueLocked(e)
	}
	u.mu.Unlock()
	if due {
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
}

func (u *usageRecorder) dueLocked(e *usageEntry) bool {
	return e.seen.After(e.stored) && (e.writtenAt.IsZero() || !u.clock.Now().Before(e.writtenAt.Add(u.interval)))
}

// Start writes due uses when woken by a first use, and every tenth of the
// interval for the uses held back by the rate limit, until ctx ends.
func (u *usageRecorder) Start(ctx context.Context) error {
	tick := time.NewTicker(max(u.interval/10, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-u.wake:
		case <-tick.C:
		}
		u.flush(ctx)
	}
}

// NeedLeaderElection: every replica writes what it observed.
func (u *usageRecorder) NeedLeaderElection() bool { return false }

// flush writes every due object's last use.
func (u *usageRecorder) flush(ctx context.Context) {
	now := u.clock.Now()
	type job struct {
		key  usageKey
		seen time.Time
	}
	var jobs []job
	u.mu.Lock()
	for k, e := range u.entries {
		switch {
		case u.dueLocked(e):
			jobs = append(jobs, job{k, e.seen})
		case !e.seen.After(e.stored) && now.Sub(e.seen) > usageForget && now.Sub(e.writtenAt) > u.interval:
			delete(u.entries, k)
		}
	}
	u.mu.Unlock()
	for _, j := range jobs {
		stored, wrote, err := u.write(ctx, j.key, j.seen)
		u.mu.Lock()
		e := u.entries[j.key]
		switch {
		case e == nil:
		case apierrors.IsNotFound(err):
			delete(u.entries, j.key)
		case err != nil:
			// Tried again at the next flush.
		default:
			if stored.After(e.stored) {
				e.stored = stored
			}
			if wrote {
				e.writtenAt = now
			}
		}
		u.mu.Unlock()
		switch {
		case apierrors.IsNotFound(err):
		case apierrors.IsConflict(err):
			usageWrites.WithLabelValues("conflict").Inc()
		case err != nil:
			usageWrites.WithLabelValues("error").Inc()
			u.log.Error(err, "authorizer: writing lastUsedAt", "kind", j.key.kind, "name", j.key.name)
		case wrote:
			usageWrites.WithLabelValues("written").Inc()
		default:
			usageWrites.WithLabelValues("skipped").Inc()
		}
	}
}

// write stores seen as the object's status.lastUsedAt unless the stored
// time is as recent; it returns the time stored afterwards and whether it
// wrote.
func (u *usageRecorder) write(ctx context.Context, k usageKey, seen time.Time) (time.Time, bool, error) {
	var obj client.Object
	var last **metav1.Time
	switch k.kind {
	case "ActivationRequest":
		ar := &pimv1.ActivationRequest{}
		obj, last = ar, &ar.Status.LastUsedAt
	default:
		ra := &pimv1.RoleAssignment{}
		obj, last = ra, &ra.Status.LastUsedAt
	}
	if err := u.client.Get(ctx, client.ObjectKey{Name: k.name}, obj); err != nil {
		return time.Time{}, false, err
	}
	if *last != nil && !(*last).Time.Before(seen) {
		return (*last).Time, false, nil
	}
	before := obj.DeepCopyObject().(client.Object)
	*last = &metav1.Time{Time: seen}
	if err := u.client.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return time.Time{}, false, err
	}
	return seen, true, nil
}
