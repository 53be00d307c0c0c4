// Package clockqueue makes a controller's delayed requeues follow an
// injected clock. Production controllers use controller-runtime's own queue,
// whose delays run on the wall clock, which is the clock they are given. A
// test that drives its reconcilers with a fake clock installs this queue, so
// that a RequeueAfter of one hour fires when the test steps the fake clock by
// one hour, and not before: the reconciler's deadline arithmetic is then
// tested for real, with no sleeping.
package clockqueue

import (
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// New returns a controller-runtime NewQueue function whose AddAfter waits on
// clk. Rate-limited retries (after errors) keep the wall clock, so a
// transient conflict is retried without the test moving time.
func New(clk clock.WithDelayedExecution) func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		return &queue{
			TypedRateLimitingInterface: workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Name: name}),
			clock:                      clk,
		}
	}
}

type queue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	clock clock.WithDelayedExecution
}

// AddAfter adds item once clk has advanced by d.
func (q *queue) AddAfter(item reconcile.Request, d time.Duration) {
	if d <= 0 {
		q.Add(item)
		return
	}
	q.clock.AfterFunc(d, func() {
		if !q.ShuttingDown() {
			q.Add(item)
		}
	})
}
