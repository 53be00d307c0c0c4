// Package clockqueue makes a controller's delayed requeues follow an
// injected clock. Production controllers use controller-runtime's own queue,
// whose delays run on the wall clock, which is the clock they are given. A
// test that drives its reconcilers with a fake clock installs this queue, so
// that a RequeueAfter of one hour fires when the test steps the fake clock by
// one hour, and not before: the reconciler's deadline arithmetic is then
// tested for real, with no sleeping.
package clockqueue

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Clock is what the queue needs of a clock.
type Clock interface {
	clock.PassiveClock
	clock.WithDelayedExecution
}

// New returns a controller-runtime NewQueue function whose AddAfter waits on
// clk. Rate-limited retries (after errors) keep the wall clock, so a
// transient conflict is retried without the test moving time.
func New(clk Clock) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		return &queue{
			TypedRateLimitingInterface: workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Name: name}),
			clock:                      clk,
			takenAt:                    map[reconcile.Request]time.Time{},
		}
	}
}

type queue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	clock Clock

	mu sync.Mutex
	// takenAt is the clock's time when a worker took an item: the "now" its
	// reconcile computed RequeueAfter from. A test that steps the clock
	// while the reconcile is still returning must not push the deadline
	// later by the step.
	takenAt map[reconcile.Request]time.Time
}

// Get remembers when the item was taken.
func (q *queue) Get() (reconcile.Request, bool) {
	item, shutdown := q.TypedRateLimitingInterface.Get()
	q.mu.Lock()
	q.takenAt[item] = q.clock.Now()
	q.mu.Unlock()
	return item, shutdown
}

// AddAfter adds item once clk reaches the time it was taken plus d.
func (q *queue) AddAfter(item reconcile.Request, d time.Duration) {
	q.mu.Lock()
	from, ok := q.takenAt[item]
	q.mu.Unlock()
	if !ok {
		from = q.clock.Now()
	}
	q.addAt(item, from.Add(d))
}

// addAt adds item when clk reaches due. The fake clock's AfterFunc takes a
// duration, not an instant: if a test steps the clock between reading "now"
// and registering the timer, the timer would fall due late. So the timer is
// registered again, from the new "now", until "now" held still (duplicate
// adds are one item in a workqueue).
func (q *queue) addAt(item reconcile.Request, due time.Time) {
	for {
		now := q.clock.Now()
		wait := due.Sub(now)
		if wait <= 0 {
			q.Add(item)
			return
		}
		q.clock.AfterFunc(wait, func() {
			if !q.ShuttingDown() {
				q.Add(item)
			}
		})
		if q.clock.Now().Equal(now) {
			return
		}
	}
}
