package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// scaleStep is what one scale step measured.
type scaleStep struct {
	n, added                 int
	create, settle           time.Duration // from the first create
	cpu, controlPlaneCPU     time.Duration // while creating and settling
	peakRSS, heap, cpRSS     uint64
	ready, catchUp, fresh    time.Duration // after a restart, from StartManager
	restartCPU               time.Duration
	restartReconciles        float64
	writesPerAssignment      float64
	writeBreakdownPerCreated string
}

// scale creates RoleAssignments in two steps (flagScaleSmall, then up to
// flagScale), a mix of Eligible and Active ones (endTime 30 days away), and
// after each step restarts the manager.
func (b *bench) scale(ctx context.Context, res *results) error {
	role := "bench-scale"
	if err := b.clusterRole(ctx, role); err != nil {
		return err
	}
	var steps []scaleStep
	created := 0
	for _, n := range []int{*flagScaleSmall, *flagScale} {
		if n <= created {
			continue
		}
		logf("scale: %d → %d RoleAssignments", created, n)
		s, err := b.scaleStep(ctx, role, created, n)
		if err != nil {
			return fmt.Errorf("scale step %d: %w", n, err)
		}
		steps = append(steps, s)
		created = n
		res.add(row{Metric: fmt.Sprintf("Scale %d: create %d RoleAssignments (%d writers) → all reconciled", n, s.added, *flagWriters), P50: "—", P99: "—",
			Max: fmt.Sprintf("%s (%.0f/s; creates done at %s)", secs(s.settle), float64(s.added)/s.settle.Seconds(), secs(s.create)), Target: "—", Verdict: "reported"})
		res.add(row{Metric: fmt.Sprintf("Scale %d: peak RSS of the bench process (manager + bench clients)", n), P50: "—", P99: "—",
			Max: fmt.Sprintf("%s (live heap after GC %s)", mib(s.peakRSS), mib(s.heap)), Target: "—", Verdict: "reported"})
		res.add(row{Metric: fmt.Sprintf("Scale %d: CPU time while creating %d and settling", n, s.added), P50: "—", P99: "—",
			Max: fmt.Sprintf("%s bench process, %s apiserver+etcd", secs(s.cpu), secs(s.controlPlaneCPU)), Target: "—", Verdict: "reported"})
		res.add(row{Metric: fmt.Sprintf("Scale %d: restart → manager ready / fresh change processed / all %d reconciled", n, n), P50: "—", P99: "—",
			Max: fmt.Sprintf("%s / %s / %s", secs(s.ready), secs(s.fresh), secs(s.catchUp)), Target: "—", Verdict: "reported"})
		res.note("Scale %d: %.1f manager writes per created assignment (%s); apiserver+etcd resident %s at the end; the restart took %s of bench-process CPU and %.0f reconciles.",
			n, s.writesPerAssignment, s.writeBreakdownPerCreated, mib(s.cpRSS), secs(s.restartCPU), s.restartReconciles)
	}
	if len(steps) == 2 {
		a, z := steps[0], steps[1]
		per := float64(z.n-a.n) / 1000
		slope := func(x, y float64) float64 { return (y - x) / per }
		res.add(row{Metric: fmt.Sprintf("Scale slope %d→%d, per 1,000 more assignments", a.n, z.n), P50: "—", P99: "—",
			Max: fmt.Sprintf("peak RSS %+.1f MiB, live heap %+.1f MiB, restart catch-up %+.2f s, CPU per 1,000 created %.2f s → %.2f s",
				slope(float64(a.peakRSS)/(1<<20), float64(z.peakRSS)/(1<<20)), slope(float64(a.heap)/(1<<20), float64(z.heap)/(1<<20)),
				slope(a.catchUp.Seconds(), z.catchUp.Seconds()), a.cpu.Seconds()/float64(a.added)*1000, z.cpu.Seconds()/float64(z.added)*1000),
			Target: "—", Verdict: "reported"})
	}
	return nil
}

func (b *bench) scaleStep(ctx context.Context, role string, from, to int) (scaleStep, error) {
	s := scaleStep{n: to, added: to - from}
	end := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	every := 1
	if *flagActiveShare > 0 {
		every = max(1, int(1 / *flagActiveShare + 0.5))
	}
	resetPeakRSS()
	cpu0 := cpuTime()
	cp0, _ := childUsage()
	before := b.counter.snapshot()
	t0 := time.Now()
	err := parallel(ctx, s.added, *flagWriters, func(ctx context.Context, j int) error {
		i := from + j
		user := fmt.Sprintf("scale-user-%d", i)
		ra := assignment(fmt.Sprintf("scale-%05d", i), role, user, role, pimv1.AssignmentEligible, nil)
		if *flagActiveShare > 0 && i%every == 0 {
			ra = assignment(fmt.Sprintf("scale-%05d", i), role, user, role, pimv1.AssignmentActive, &end)
		}
		return b.admin.Create(ctx, ra)
	})
	if err != nil {
		return s, err
	}
	s.create = time.Since(t0)
	logf("scale: %d created in %s; waiting for the manager", s.added, secs(s.create))
	if err := b.waitReconciled(ctx, role, to, 15*time.Minute); err != nil {
		return s, err
	}
	s.settle = time.Since(t0)
	s.cpu = cpuTime() - cpu0
	cp1, cpRSS := childUsage()
	s.controlPlaneCPU, s.cpRSS = cp1-cp0, cpRSS
	writes, w, _ := delta(before, b.counter.snapshot())
	s.writesPerAssignment = float64(w) / float64(s.added)
	s.writeBreakdownPerCreated = formatBreakdown(writes, float64(s.added))
	logf("scale: %d reconciled after %s; restarting the manager", to, secs(s.settle))

	// Restart: a new manager lists everything again and reconciles every
	// assignment; a change made right after it is ready is processed ahead
	// of that backlog (controller-runtime's priority queue).
	b.stopManager()
	reconciles0, _, _ := gather("controller_runtime_reconcile_total", map[string]string{"controller": "roleassignment"})
	cpuR0 := cpuTime()
	t1 := time.Now()
	if b.stopMgr, err = b.env.StartManager(clock.RealClock{}); err != nil {
		return s, err
	}
	s.ready = time.Since(t1)
	canary := assignment(fmt.Sprintf("canary-%d", to), "bench-canary", fmt.Sprintf("canary-%d", to), role, pimv1.AssignmentEligible, nil)
	if err := b.admin.Create(ctx, canary); err != nil {
		return s, err
	}
	var freshDone, allDone bool
	err = poll(ctx, 10*time.Millisecond, 15*time.Minute, func() (bool, error) {
		if !freshDone {
			got := &pimv1.RoleAssignment{}
			if err := b.admin.Get(ctx, client.ObjectKeyFromObject(canary), got); err != nil {
				return false, err
			}
			if got.Status.State != "" && got.Status.ObservedGeneration == got.Generation {
				freshDone, s.fresh = true, time.Since(t1)
			}
		}
		if !allDone {
			n, _, _ := gather("controller_runtime_reconcile_total", map[string]string{"controller": "roleassignment"})
			if n-reconciles0 >= float64(to+1) && controllerIdle("roleassignment") {
				allDone, s.catchUp = true, time.Since(t1)
				s.restartReconciles = n - reconciles0
			}
		}
		return freshDone && allDone, nil
	})
	if err != nil {
		return s, fmt.Errorf("after the restart: %w", err)
	}
	s.restartCPU = cpuTime() - cpuR0
	s.peakRSS = peakRSS()
	s.heap = liveHeap()
	logf("scale: restart ready %s, fresh change %s, all reconciled %s", secs(s.ready), secs(s.fresh), secs(s.catchUp))
	return s, nil
}

// controllerIdle says whether a controller has nothing queued and nothing in
// progress.
func controllerIdle(name string) bool {
	depth, _, _ := gather("workqueue_depth", map[string]string{"name": name})
	workers, _, _ := gather("controller_runtime_active_workers", map[string]string{"controller": name})
	return depth == 0 && workers == 0
}

// waitReconciled waits until the controller is idle and every assignment of
// set is reconciled (listing them only when the controller is idle).
func (b *bench) waitReconciled(ctx context.Context, set string, n int, timeout time.Duration) error {
	return poll(ctx, 250*time.Millisecond, timeout, func() (bool, error) {
		if !controllerIdle("roleassignment") {
			return false, nil
		}
		current, err := b.currentAssignments(ctx, set)
		return current >= n, err
	})
}
