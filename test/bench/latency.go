package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// sarInterval is how often a grant or a bare binding is polled for: as
// fast as the API server answers.
const sarInterval = time.Millisecond

// quiet waits until the manager has sent no write for d.
func (b *bench) quiet(ctx context.Context, d, timeout time.Duration) error {
	last := totalWrites(b.counter.snapshot())
	return poll(ctx, d, timeout, func() (bool, error) {
		now := totalWrites(b.counter.snapshot())
		done := now == last
		last = now
		return done, nil
	})
}

// settled waits until the pass that activated ar has finished (its last
// write is the status) and its follow-up pass (the binding's watch
// event) has run, so that the next measurement starts on an idle manager.
func (b *bench) settled(ctx context.Context, name string) error {
	err := poll(ctx, 2*time.Millisecond, 30*time.Second, func() (bool, error) {
		got, err := b.getActivation(ctx, name)
		return err == nil && got.Status.State == pimv1.ActivationStateActive, err
	})
	if err != nil {
		return fmt.Errorf("%s did not settle: %w", name, err)
	}
	return sleep(ctx, 20*time.Millisecond)
}

// lifecycle counts the API writes the manager sends for one activation,
// from its creation to its expiry, with nothing else going on.
func (b *bench) lifecycle(ctx context.Context, res *results) error {
	role, users := "bench-lifecycle", names("lifecycle", *flagLifecycles)
	if err := b.eligible(ctx, role, users); err != nil {
		return err
	}
	var per []int
	sum, reviews := map[string]int{}, 0
	for _, user := range users {
		if err := b.quiet(ctx, time.Second, time.Minute); err != nil {
			return fmt.Errorf("waiting for the manager to be idle: %w", err)
		}
		before := b.counter.snapshot()
		b.counter.trace(*flagTrace)
		ar := activation(user+"-lifecycle", role, 2*time.Second)
		if err := b.createAs(ctx, user, ar); err != nil {
			return err
		}
		err := poll(ctx, 20*time.Millisecond, 30*time.Second, func() (bool, error) {
			got, err := b.getActivation(ctx, ar.Name)
			return err == nil && got.Status.State == pimv1.ActivationStateExpired, err
		})
		if err != nil {
			return fmt.Errorf("%s did not expire: %w", ar.Name, err)
		}
		if err := b.quiet(ctx, time.Second, time.Minute); err != nil {
			return err
		}
		b.counter.trace(false)
		writes, total, r := delta(before, b.counter.snapshot())
		per = append(per, total)
		reviews += r
		for k, v := range writes {
			sum[k] += v
		}
	}
	slices.Sort(per)
	n := float64(len(per))
	mean := 0.0
	for _, v := range per {
		mean += float64(v) / n
	}
	r := row{Metric: fmt.Sprintf("API writes per activation lifecycle, create→Active→Expired (n=%d)", len(per)),
		P50: fmt.Sprint(per[len(per)/2]), P99: "—", Max: fmt.Sprint(per[len(per)-1]), Target: "≤ 8"}
	r.Verdict = verdict(float64(per[len(per)-1]) <= 8, float64(per[len(per)-1])/8)
	res.add(r)
	res.note("Writes per lifecycle (mean %.1f): %s. Not counted: %d SubjectAccessReview/identity POSTs (they store nothing).",
		mean, formatBreakdown(sum, n), reviews)
	return nil
}

// bare is the physical limit: the admin creates a ClusterRoleBinding and
// polls a SubjectAccessReview until the API server's authorizer allows; then
// deletes it and polls until it denies.
func (b *bench) bare(ctx context.Context, res *results) error {
	role := "bench-bare"
	if err := b.clusterRole(ctx, role); err != nil {
		return err
	}
	var grant, revoke sample
	for i, user := range names("bare", *flagBare) {
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-bare-%d", i)},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
		t0 := time.Now()
		if err := b.admin.Create(ctx, crb); err != nil {
			return err
		}
		t1, err := b.waitAccess(ctx, user, true, sarInterval, 30*time.Second)
		if err != nil {
			return err
		}
		grant = append(grant, t1.Sub(t0))
		t2 := time.Now()
		if err := b.admin.Delete(ctx, crb); err != nil {
			return err
		}
		t3, err := b.waitAccess(ctx, user, false, sarInterval, 30*time.Second)
		if err != nil {
			return err
		}
		revoke = append(revoke, t3.Sub(t2))
	}
	b.bareGrant = grant
	res.add(latencyRow(b.label+"Physical limit: bare ClusterRoleBinding create → SAR allowed", grant, 0))
	res.add(latencyRow(b.label+"Physical limit: bare ClusterRoleBinding delete → SAR denied", revoke, 0))
	return nil
}

// grant measures an eligible user's ActivationRequest (no approval) until
// the API server's authorizer allows the user.
func (b *bench) grant(ctx context.Context, res *results) error {
	role, users := "bench-grant", names("grant", *flagGrant)
	if err := b.eligible(ctx, role, users); err != nil {
		return err
	}
	var s sample
	for _, user := range users {
		ar := activation(user+"-jit", role, 30*time.Minute)
		b.counter.trace(*flagTrace)
		t0 := time.Now()
		if *flagTrace {
			logf("grant: create %s", ar.Name)
		}
		if err := b.createAs(ctx, user, ar); err != nil {
			return err
		}
		if *flagTrace {
			logf("grant: created %s", ar.Name)
		}
		t1, err := b.waitAccess(ctx, user, true, sarInterval, 30*time.Second)
		if err != nil {
			return err
		}
		if *flagTrace {
			logf("grant: allowed %s after %s", ar.Name, ms(t1.Sub(t0)))
		}
		b.counter.trace(false)
		s = append(s, t1.Sub(t0))
		if err := b.settled(ctx, ar.Name); err != nil {
			return err
		}
	}
	res.add(latencyRow(b.label+"Grant: ActivationRequest create → SAR allowed", s, 0))
	if len(b.bareGrant) > 0 {
		ratio := float64(s.quantile(0.99)) / float64(b.bareGrant.quantile(0.99))
		res.add(row{Metric: b.label + "Grant p99 / bare p99", P50: fmt.Sprintf("%.2f×", float64(s.quantile(0.5))/float64(b.bareGrant.quantile(0.5))),
			P99: fmt.Sprintf("%.2f×", ratio), Max: "—", Target: "p99 ≤ 1.5×", Verdict: verdict(ratio <= 1.5, ratio/1.5)})
	}
	return nil
}

// approval measures an approver's annotation on a PendingApproval request
// until the API server's authorizer allows the requester.
func (b *bench) approval(ctx context.Context, res *results) error {
	role, users, approver := "bench-approval", names("approval", *flagApproval), "bench-approver"
	rs := &pimv1.RoleSetting{ObjectMeta: metav1.ObjectMeta{Name: role}, Spec: pimv1.RoleSettingSpec{
		RoleRef: pimv1.RoleSettingRoleRef{Kind: pimv1.RoleKindClusterRole, Name: role},
		Activation: pimv1.ActivationPolicy{MaxDuration: metav1.Duration{Duration: 8 * time.Hour}, RequireJustification: ptr.To(true),
			Approval: pimv1.ApprovalPolicy{Required: true, RequiredApprovals: 1, Timeout: metav1.Duration{Duration: time.Hour},
				Approvers: []pimv1.Principal{{Kind: "User", Name: approver}}}},
		// A Go client sends false for unset bools: spell out the defaults.
		Assignment: pimv1.AssignmentPolicy{
			Eligible: pimv1.EligibleAssignmentPolicy{AllowPermanent: ptr.To(true)},
			Active:   pimv1.ActiveAssignmentPolicy{AllowPermanent: ptr.To(true)},
		},
	}}
	if err := b.admin.Create(ctx, rs); err != nil {
		return err
	}
	err := poll(ctx, 20*time.Millisecond, time.Minute, func() (bool, error) {
		got := &pimv1.RoleSetting{}
		err := b.admin.Get(ctx, client.ObjectKeyFromObject(rs), got)
		return err == nil && got.Status.ObservedGeneration == got.Generation, err
	})
	if err != nil {
		return fmt.Errorf("the RoleSetting was not observed: %w", err)
	}
	if err := b.eligible(ctx, role, users); err != nil {
		return err
	}
	var s sample
	for _, user := range users {
		ar := activation(user+"-ok", role, 30*time.Minute)
		if err := b.createAs(ctx, user, ar); err != nil {
			return err
		}
		err := poll(ctx, 5*time.Millisecond, 30*time.Second, func() (bool, error) {
			got, err := b.getActivation(ctx, ar.Name)
			return err == nil && got.Status.State == pimv1.ActivationStatePendingApproval, err
		})
		if err != nil {
			return fmt.Errorf("%s did not wait for approval: %w", ar.Name, err)
		}
		t0 := time.Now()
		if err := b.annotateAs(ctx, approver, ar.Name, pimv1.AnnotationApprove, "ok"); err != nil {
			return err
		}
		t1, err := b.waitAccess(ctx, user, true, sarInterval, 30*time.Second)
		if err != nil {
			return err
		}
		s = append(s, t1.Sub(t0))
		if err := b.settled(ctx, ar.Name); err != nil {
			return err
		}
	}
	res.add(latencyRow("Approval: approve annotation → SAR allowed", s, 0))
	return nil
}

// revoke starts many short activations (2 s and 3 s, whole-second expiry)
// at a steady rate and measures, for each, the time from status.expiresAt
// to the first SubjectAccessReview that denies, polling every 5 ms.
func (b *bench) revoke(ctx context.Context, res *results) error {
	if *flagRevokeSlow > 0 {
		if err := b.revokeRun(ctx, res, "revoke-slow", *flagRevokeSlow, *flagRevokeSlowRate); err != nil {
			return err
		}
	}
	return b.revokeRun(ctx, res, "revoke", *flagRevoke, *flagRevokeRate)
}

// revokeRun starts n short activations at rate per second.
func (b *bench) revokeRun(ctx context.Context, res *results, set string, n int, rate float64) error {
	role, users := "bench-"+set, names(set, n)
	if err := b.eligible(ctx, role, users); err != nil {
		return err
	}
	_, lagSum0, lagCount0 := gather("kubepim_revocation_lag_seconds", nil)
	pollers := make(chan struct{}, *flagRevokePoll)
	every := time.Duration(float64(time.Second) / rate)
	var (
		mu                    sync.Mutex
		lags                  sample
		missed, failed, early int
		firstErr              error
		waitedForPoller       time.Duration
		wg                    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failed++
		if firstErr == nil {
			firstErr = err
		}
	}
	start := time.Now()
	for i, user := range users {
		if err := sleep(ctx, time.Until(start.Add(time.Duration(i)*every))); err != nil {
			return err
		}
		wg.Go(func() {
			ar := activation(user+"-short", role, time.Duration(2+i%2)*time.Second)
			if err := b.createAs(ctx, user, ar); err != nil {
				fail(err)
				return
			}
			var expires time.Time
			err := poll(ctx, 20*time.Millisecond, 60*time.Second, func() (bool, error) {
				got, err := b.getActivation(ctx, ar.Name)
				if err != nil || got.Status.ExpiresAt == nil {
					return false, err
				}
				expires = got.Status.ExpiresAt.Time
				return got.Status.State != pimv1.ActivationStatePending, nil
			})
			if err != nil {
				fail(fmt.Errorf("%s: %w", ar.Name, err))
				return
			}
			if time.Until(expires) < 30*time.Millisecond {
				mu.Lock()
				missed++ // active too late to watch its end from before it
				mu.Unlock()
				return
			}
			if err := sleep(ctx, time.Until(expires.Add(-30*time.Millisecond))); err != nil {
				return
			}
			t := time.Now()
			pollers <- struct{}{}
			defer func() { <-pollers }()
			waited := time.Since(t)
			denied, err := b.waitAccess(ctx, user, false, 5*time.Millisecond, 30*time.Second)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			waitedForPoller = max(waitedForPoller, waited)
			lag := denied.Sub(expires)
			if lag < 0 {
				early++
			}
			lags = append(lags, lag)
		})
	}
	wg.Wait()
	if firstErr != nil && len(lags) == 0 {
		return firstErr
	}
	res.add(latencyRow(fmt.Sprintf("%sRevoke lag: status.expiresAt → SAR denied, %g started/s", b.label, rate), lags, 100*time.Millisecond))
	_, lagSum1, lagCount1 := gather("kubepim_revocation_lag_seconds", nil)
	controllerMean := "n/a"
	if c := lagCount1 - lagCount0; c > 0 {
		controllerMean = ms(time.Duration((lagSum1 - lagSum0) / float64(c) * float64(time.Second)))
	}
	res.note("%sRevoke lag run: %d activations of 2 s and 3 s started at %.0f/s (so about %.0f share each whole-second expiry), SAR polled every 5 ms from 30 ms before expiresAt by at most %d pollers (longest wait for a poller %s); min %s; %d revoked before expiresAt, %d active too late to measure, %d failed%s. The controller's own kubepim_revocation_lag_seconds (expiresAt → binding deleted) averaged %s.",
		b.label, len(users), rate, rate, *flagRevokePoll, ms(waitedForPoller), ms(lags.min()), early, missed, failed, errSuffix(firstErr), controllerMean)
	return nil
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprintf(" (first: %v)", err)
}

// throughput makes n users eligible, creates one ActivationRequest for each
// at once, and times until all are Active.
func (b *bench) throughput(ctx context.Context, res *results) error {
	n := *flagThroughput
	role, users := "bench-throughput", names("tput", n)
	if err := b.eligible(ctx, role, users); err != nil {
		return err
	}
	if err := b.quiet(ctx, time.Second, time.Minute); err != nil {
		return err
	}
	before := b.counter.snapshot()
	t0 := time.Now()
	err := parallel(ctx, n, 100, func(ctx context.Context, i int) error {
		return b.createAs(ctx, users[i], activation(users[i]+"-tput", role, 30*time.Minute))
	})
	if err != nil {
		return err
	}
	created := time.Since(t0)
	var t1 time.Time
	err = poll(ctx, 100*time.Millisecond, 10*time.Minute, func() (bool, error) {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(pimv1.GroupVersion.WithKind("ActivationRequestList"))
		if err := b.admin.List(ctx, list, client.MatchingFields{pimv1.FieldState: string(pimv1.ActivationStateActive)}); err != nil {
			return false, err
		}
		active := 0
		for _, m := range list.Items {
			if len(m.Name) > 5 && m.Name[:5] == "tput-" {
				active++
			}
		}
		t1 = time.Now()
		return active == n, nil
	})
	if err != nil {
		return fmt.Errorf("not all %d activations became Active: %w", n, err)
	}
	total := t1.Sub(t0)
	writes, w, _ := delta(before, b.counter.snapshot())
	res.add(row{Metric: fmt.Sprintf("Throughput: %d activations in flight, create → all Active", n), P50: "—", P99: "—",
		Max: fmt.Sprintf("%.0f activations/s (%s)", float64(n)/total.Seconds(), secs(total)), Target: "—", Verdict: "reported"})
	res.note("Throughput run: the %d creates (100 at a time, through both admission webhooks) took %s; all were Active (status.state) %s after the first; the manager sent %.1f writes per activation up to Active (%s).",
		n, secs(created), secs(total), float64(w)/float64(n), formatBreakdown(maps.Clone(writes), float64(n)))
	return nil
}

// gather reads a metric from controller-runtime's registry (the manager
// runs in this process): the sum of matching counters or gauges, and of
// matching histograms' sums and counts.
func gather(name string, labels map[string]string) (value, hsum float64, hcount uint64) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return 0, 0, 0
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			value += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			hsum += m.GetHistogram().GetSampleSum()
			hcount += m.GetHistogram().GetSampleCount()
		}
	}
	return value, hsum, hcount
}
