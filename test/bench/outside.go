package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// outsideMem is the manager process's memory at one point of the outside
// step.
type outsideMem struct {
	peak, rss uint64 // VmHWM since the last reset (or the process start), VmRSS
	heap      float64
	watched   float64 // kubepim_watched_bindings
	catchUp   time.Duration
}

func (o outsideMem) String() string {
	return fmt.Sprintf("peak %s, resident %s, Go heap in use %s", mib(o.peak), mib(o.rss), mib(uint64(o.heap)))
}

// outside measures what the outside-bindings watch costs the manager
// process: it restarts the manager and measures it settled (without), then
// creates flagOutside bindings kubepim has nothing to do with (4 in 5
// RoleBindings spread over 200 namespaces, the rest ClusterRoleBindings;
// labelled and annotated like bindings a Helm chart makes), measures the
// running process once the watch holds them all, and restarts it again
// (with). Run after the scale steps, it measures on top of their
// assignments.
func (b *bench) outside(ctx context.Context, res *results) error {
	m := b.proc
	governed := "bench-outside-governed"
	if err := b.clusterRole(ctx, governed); err != nil {
		return err
	}
	rs := &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: governed}, Spec: pimv1.RoleSettingSpec{
		RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: governed},
		Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: time.Hour}, RequireMFA: true,
			Approval: pimv1.ApprovalPolicy{RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour}}},
	}}
	if err := b.admin.Create(ctx, rs); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	logf("outside: restarting the manager without unrelated bindings")
	without, err := b.outsideRestart(ctx)
	if err != nil {
		return err
	}
	logf("outside: without: %s (watch holds %.0f bindings; caught up in %s)", without, without.watched, secs(without.catchUp))

	n := *flagOutside
	const namespaces = 200
	crbs := n / 5
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-team-%03d", i)}}
		if _, err := b.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	m.resetPeakRSS()
	t0 := time.Now()
	meta := func(name, ns string, i int) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/name": fmt.Sprintf("app-%d", i%500), "app.kubernetes.io/managed-by": "Helm"},
			Annotations: map[string]string{"meta.helm.sh/release-name": fmt.Sprintf("release-%d", i%500),
				"meta.helm.sh/release-namespace": ns}}
	}
	subjects := func(i int) []rbacv1.Subject {
		return []rbacv1.Subject{
			{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("team-%03d-developers", i%namespaces)},
			{Kind: rbacv1.ServiceAccountKind, Name: fmt.Sprintf("app-%d", i%500), Namespace: fmt.Sprintf("bench-team-%03d", i%namespaces)},
		}
	}
	roles := []string{"view", "edit", "admin"}
	err = parallel(ctx, n, *flagWriters, func(ctx context.Context, i int) error {
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roles[i%len(roles)]}
		var err error
		if i < crbs {
			crb := &rbacv1.ClusterRoleBinding{ObjectMeta: meta(fmt.Sprintf("bench-unrelated-%06d", i), "", i), RoleRef: ref, Subjects: subjects(i)}
			_, err = b.cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
		} else {
			ns := fmt.Sprintf("bench-team-%03d", i%namespaces)
			rb := &rbacv1.RoleBinding{ObjectMeta: meta(fmt.Sprintf("bench-unrelated-%06d", i), ns, i), RoleRef: ref, Subjects: subjects(i)}
			_, err = b.cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
		}
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	created := time.Since(t0)
	want := without.watched + float64(n)
	var running outsideMem
	err = poll(ctx, 250*time.Millisecond, 5*time.Minute, func() (bool, error) {
		w, _ := m.gather(ctx, "kubepim_watched_bindings", nil)
		return w >= want && b.controllerIdle(ctx, "rolesetting"), nil
	})
	if err != nil {
		return fmt.Errorf("the watch did not see the %d bindings: %w", n, err)
	}
	running.peak, running.rss = m.peakRSS(), m.rss()
	running.heap, _ = m.gather(ctx, "go_memstats_heap_alloc_bytes", nil)
	running.watched, _ = m.gather(ctx, "kubepim_watched_bindings", nil)
	logf("outside: %d bindings created in %s; running manager: %s", n, secs(created), running)

	logf("outside: restarting the manager with them")
	with, err := b.outsideRestart(ctx)
	if err != nil {
		return err
	}
	logf("outside: with: %s (watch holds %.0f bindings; caught up in %s)", with, with.watched, secs(with.catchUp))

	res.add(row{Metric: "Outside watch: manager after a restart, without the unrelated bindings", P50: "—", P99: "—",
		Max: fmt.Sprintf("%s (watch holds %.0f)", without, without.watched), Target: "—", Verdict: "reported"})
	res.add(row{Metric: fmt.Sprintf("Outside watch: running manager while %d unrelated bindings are created", n), P50: "—", P99: "—",
		Max: running.String(), Target: "—", Verdict: "reported"})
	withRow := row{Metric: fmt.Sprintf("Outside watch: manager after a restart, with %d unrelated bindings", n), P50: "—", P99: "—",
		Max:    fmt.Sprintf("%s (watch holds %.0f); Δ peak %+.1f MiB, Δ heap %+.1f MiB", with, with.watched, (float64(with.peak)-float64(without.peak))/(1<<20), (with.heap-without.heap)/(1<<20)),
		Target: "≤ 150 MiB", Verdict: verdictMax(float64(with.peak)/(1<<20), 150)}
	res.add(withRow)
	return b.outsideRemoval(ctx, res, rs.Name, governed)
}

// outsideRemoval measures, with the unrelated bindings in place, how long
// an outside binding of a governed role lives in enforce mode: the admin
// creates a ClusterRoleBinding of the role, and a Get is polled every 5 ms
// until it is gone (the manager recorded OutsideBindingRemoved and deleted
// it). One at a time, flagOutsideRemovals times.
func (b *bench) outsideRemoval(ctx context.Context, res *results, setting, role string) error {
	rs := &pimv1.RoleSetting{}
	if err := b.admin.Get(ctx, client.ObjectKey{Name: setting}, rs); err != nil {
		return err
	}
	patch := client.MergeFrom(rs.DeepCopy())
	rs.Spec.Alerts.RemoveOutsideBindings = ptr.To(true)
	if err := b.admin.Patch(ctx, rs, patch); err != nil {
		return err
	}
	// Timed from when the manager acts on the enforce mode, not from when
	// it learns of it.
	err := poll(ctx, 10*time.Millisecond, time.Minute, func() (bool, error) {
		got := &pimv1.RoleSetting{}
		err := b.admin.Get(ctx, client.ObjectKey{Name: setting}, got)
		return err == nil && got.Status.ObservedGeneration == got.Generation, err
	})
	if err != nil {
		return fmt.Errorf("the manager did not observe the enforce mode: %w", err)
	}
	var lived sample
	for i := range *flagOutsideRemovals {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-outside-%d", i)},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("intruder-%d", i)}}}
		t0 := time.Now()
		if err := b.admin.Create(ctx, crb); err != nil {
			return err
		}
		err := poll(ctx, 5*time.Millisecond, 30*time.Second, func() (bool, error) {
			err := b.admin.Get(ctx, client.ObjectKeyFromObject(crb), &rbacv1.ClusterRoleBinding{})
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
		if err != nil {
			return fmt.Errorf("outside binding %s was not removed: %w", crb.Name, err)
		}
		lived = append(lived, time.Since(t0))
	}
	r := latencyRow(fmt.Sprintf("Outside watch: outside ClusterRoleBinding create → removed in enforce mode, %d unrelated bindings besides", *flagOutside), lived, time.Second)
	res.add(r)
	return nil
}

// outsideRestart restarts the manager process and measures it once it is
// caught up: the watch holds as many bindings as before, and the
// roleassignment and rolesetting controllers have reconciled everything
// and are idle.
func (b *bench) outsideRestart(ctx context.Context) (outsideMem, error) {
	m := b.proc
	var o outsideMem
	watched, _ := m.gather(ctx, "kubepim_watched_bindings", nil)
	assignments, err := b.countAssignments(ctx)
	if err != nil {
		return o, err
	}
	m.stop()
	t0 := time.Now()
	if err := m.start(); err != nil {
		return o, err
	}
	err = poll(ctx, 100*time.Millisecond, 10*time.Minute, func() (bool, error) {
		w, ok := m.gather(ctx, "kubepim_watched_bindings", nil)
		if !ok || w < watched {
			return false, nil
		}
		n, _ := m.gather(ctx, "controller_runtime_reconcile_total", map[string]string{"controller": "roleassignment"})
		return n >= float64(assignments) && b.controllerIdle(ctx, "roleassignment") && b.controllerIdle(ctx, "rolesetting"), nil
	})
	if err != nil {
		return o, fmt.Errorf("the restarted manager did not catch up: %w", err)
	}
	o.catchUp = time.Since(t0)
	o.peak, o.rss = m.peakRSS(), m.rss()
	o.heap, _ = m.gather(ctx, "go_memstats_heap_alloc_bytes", nil)
	o.watched, _ = m.gather(ctx, "kubepim_watched_bindings", nil)
	return o, nil
}

// countAssignments counts every RoleAssignment.
func (b *bench) countAssignments(ctx context.Context) (int, error) {
	n := 0
	opts := []client.ListOption{client.Limit(1000)}
	for {
		var list pimv1.RoleAssignmentList
		if err := b.admin.List(ctx, &list, opts...); err != nil {
			return 0, err
		}
		n += len(list.Items)
		if list.Continue == "" {
			return n, nil
		}
		opts = []client.ListOption{client.Limit(1000), client.Continue(list.Continue)}
	}
}
