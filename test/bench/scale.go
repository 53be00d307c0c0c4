package main

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// scaleStep is what one scale step measured.
type scaleStep struct {
	n, added                 int
	create, settle           time.Duration // from the first create
	cpu, controlPlaneCPU     time.Duration // while creating and settling
	peakRSS, rss             uint64        // the manager process, before the restart
	heap                     float64
	restartPeakRSS, cpRSS    uint64
	ready, catchUp, fresh    time.Duration // after a restart, from StartManager
	restartCPU               time.Duration // the new process's CPU until caught up
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
		peak := max(s.peakRSS, s.restartPeakRSS)
		rssRow := row{Metric: fmt.Sprintf("Scale %d: peak RSS of the manager process", n), P50: "—", P99: "—",
			Max:    fmt.Sprintf("%s (settling %s, after the restart %s; Go heap in use %s)", mib(peak), mib(s.peakRSS), mib(s.restartPeakRSS), mib(uint64(s.heap))),
			Target: "—", Verdict: "reported"}
		if n >= 10000 {
			rssRow.Target, rssRow.Verdict = "≤ 150 MiB", verdictMax(float64(peak)/(1<<20), 150)
		}
		res.add(rssRow)
		res.add(row{Metric: fmt.Sprintf("Scale %d: CPU time while creating %d and settling", n, s.added), P50: "—", P99: "—",
			Max: fmt.Sprintf("%s manager process, %s apiserver+etcd", secs(s.cpu), secs(s.controlPlaneCPU)), Target: "—", Verdict: "reported"})
		restartRow := row{Metric: fmt.Sprintf("Scale %d: restart → webhooks admit / fresh change processed / all %d reconciled", n, n), P50: "—", P99: "—",
			Max: fmt.Sprintf("%s / %s / %s", secs(s.ready), secs(s.fresh), secs(s.catchUp)), Target: "—", Verdict: "reported"}
		if n >= 10000 {
			restartRow.Target, restartRow.Verdict = "all < 30 s", verdictMax(s.catchUp.Seconds(), 30)
		}
		res.add(restartRow)
		res.note("Scale %d: %.1f manager write requests per created assignment (%s, from the manager's rest_client_requests_total); manager resident %s when settled; apiserver+etcd resident %s; the restarted manager used %s of CPU and %.0f reconciles to catch up.",
			n, s.writesPerAssignment, s.writeBreakdownPerCreated, mib(s.rss), mib(s.cpRSS), secs(s.restartCPU), s.restartReconciles)
	}
	if len(steps) == 2 {
		a, z := steps[0], steps[1]
		per := float64(z.n-a.n) / 1000
		slope := func(x, y float64) float64 { return (y - x) / per }
		res.add(row{Metric: fmt.Sprintf("Scale slope %d→%d, per 1,000 more assignments", a.n, z.n), P50: "—", P99: "—",
			Max: fmt.Sprintf("peak RSS %+.1f MiB, heap in use %+.1f MiB, restart catch-up %+.2f s, manager CPU per 1,000 created %.2f s → %.2f s",
				slope(float64(max(a.peakRSS, a.restartPeakRSS))/(1<<20), float64(max(z.peakRSS, z.restartPeakRSS))/(1<<20)), slope(a.heap/(1<<20), z.heap/(1<<20)),
				slope(a.catchUp.Seconds(), z.catchUp.Seconds()), a.cpu.Seconds()/float64(a.added)*1000, z.cpu.Seconds()/float64(z.added)*1000),
			Target: "—", Verdict: "reported"})
	}
	return nil
}

func (b *bench) scaleStep(ctx context.Context, role string, from, to int) (scaleStep, error) {
	m := b.proc
	s := scaleStep{n: to, added: to - from}
	end := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
	every := 1
	if *flagActiveShare > 0 {
		every = max(1, int(1 / *flagActiveShare + 0.5))
	}
	m.resetPeakRSS()
	cpu0 := m.cpu()
	cp0, _ := childUsage(m.pid())
	writes0, err := m.writes(ctx)
	if err != nil {
		return s, err
	}
	t0 := time.Now()
	err = parallel(ctx, s.added, *flagWriters, func(ctx context.Context, j int) error {
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
	s.cpu = m.cpu() - cpu0
	cp1, cpRSS := childUsage(m.pid())
	s.controlPlaneCPU, s.cpRSS = cp1-cp0, cpRSS
	writes1, err := m.writes(ctx)
	if err != nil {
		return s, err
	}
	w := 0
	for k, v := range writes1 {
		writes1[k] = v - writes0[k]
		w += writes1[k]
	}
	s.writesPerAssignment = float64(w) / float64(s.added)
	s.writeBreakdownPerCreated = formatBreakdown(writes1, float64(s.added))
	s.peakRSS, s.rss = m.peakRSS(), m.rss()
	s.heap, _ = m.gather(ctx, "go_memstats_heap_alloc_bytes", nil)
	logf("scale: %d reconciled after %s (manager peak RSS %s); restarting the manager", to, secs(s.settle), mib(s.peakRSS))

	// Restart: a new manager lists everything again and reconciles every
	// assignment; a change made right after it is ready is processed ahead
	// of that backlog (controller-runtime's priority queue).
	m.stop()
	t1 := time.Now()
	if err := m.start(); err != nil {
		return s, err
	}
	// Ready: the webhooks admit a new assignment (they are served once the
	// manager has started; creates fail until then).
	canary := assignment(fmt.Sprintf("canary-%d", to), "bench-canary", fmt.Sprintf("canary-%d", to), role, pimv1.AssignmentEligible, nil)
	err = poll(ctx, 10*time.Millisecond, 5*time.Minute, func() (bool, error) {
		return b.admin.Create(ctx, canary.DeepCopy()) == nil, nil
	})
	if err != nil {
		return s, fmt.Errorf("the restarted manager's webhooks did not admit a new assignment: %w", err)
	}
	s.ready = time.Since(t1)
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
			n, _ := m.gather(ctx, "controller_runtime_reconcile_total", map[string]string{"controller": "roleassignment"})
			if n >= float64(to+1) && b.controllerIdle(ctx, "roleassignment") {
				allDone, s.catchUp = true, time.Since(t1)
				s.restartReconciles = n
			}
		}
		return freshDone && allDone, nil
	})
	if err != nil {
		return s, fmt.Errorf("after the restart: %w", err)
	}
	s.restartCPU = m.cpu()
	s.restartPeakRSS = m.peakRSS()
	logf("scale: restart ready %s, fresh change %s, all reconciled %s (peak RSS %s)", secs(s.ready), secs(s.fresh), secs(s.catchUp), mib(s.restartPeakRSS))
	return s, nil
}

// controllerIdle says whether a controller of the manager process has
// nothing queued and nothing in progress.
func (b *bench) controllerIdle(ctx context.Context, name string) bool {
	depth, ok1 := b.proc.gather(ctx, "workqueue_depth", map[string]string{"name": name})
	workers, ok2 := b.proc.gather(ctx, "controller_runtime_active_workers", map[string]string{"controller": name})
	return ok1 && ok2 && depth == 0 && workers == 0
}

// waitReconciled waits until the controller is idle and every assignment of
// set is reconciled (listing them only when the controller is idle).
func (b *bench) waitReconciled(ctx context.Context, set string, n int, timeout time.Duration) error {
	return poll(ctx, 250*time.Millisecond, timeout, func() (bool, error) {
		if !b.controllerIdle(ctx, "roleassignment") {
			return false, nil
		}
		current, err := b.currentAssignments(ctx, set)
		return current >= n, err
	})
}
