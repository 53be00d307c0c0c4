package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var (
	flagAuthzScale   = flag.Int("authorizer-scale", 10000, "eligible RoleAssignments in the authorizer-scale step")
	flagAuthzActive  = flag.Int("authorizer-active", 1000, "of those users, how many hold an active ActivationRequest in the authorizer-scale step")
	flagAuthzSamples = flag.Int("authorizer-samples", 400, "SubjectAccessReviews per kind of request in the authorizer-scale step's per-request latency")
)

// authorizerScale measures authorizer mode at scale with the manager as a
// process of its own (cmd/manager --access-mode=authorizer): its memory
// with flagAuthzScale eligible assignments and flagAuthzActive activations
// in force, the webhook's decision time at that size (from the process's
// kubepim_authorizer_decision_seconds), and the latency the webhook adds to
// an API request of a user on its path. That last figure is isolated side
// by side on one control plane, interleaving four kinds of request that
// differ only in who asks:
//
//   - off the path: a system: user, kept away from kubepim by the
//     AuthorizationConfiguration's matchConditions; RBAC says no, nobody
//     else is asked;
//   - on the path, no opinion: a user kubepim knows nothing for; RBAC says
//     no, then kubepim is asked and gives no opinion;
//   - allowed by kubepim: a user with an activation in force;
//   - allowed by RBAC: a user with a bare ClusterRoleBinding; kubepim is
//     never asked.
//
// "no opinion" minus "off the path" is what every request RBAC does not
// allow costs a user on the path; "allowed by kubepim" minus "allowed by
// RBAC" is what an elevated request costs over standing access.
func (b *bench) authorizerScale(ctx context.Context, res *results) error {
	m := b.proc
	role := "bench-az"
	if err := b.clusterRole(ctx, role); err != nil {
		return err
	}
	n, active := *flagAuthzScale, min(*flagAuthzActive, *flagAuthzScale)
	users := names("az", n)
	m.resetPeakRSS()
	t0 := time.Now()
	err := parallel(ctx, n, *flagWriters, func(ctx context.Context, i int) error {
		return b.admin.Create(ctx, assignment(role+"-"+users[i], role, users[i], role, pimv1.AssignmentEligible, nil))
	})
	if err != nil {
		return err
	}
	if err := b.waitReconciled(ctx, role, n, 15*time.Minute); err != nil {
		return err
	}
	logf("authorizer-scale: %d eligible assignments reconciled after %s; %d activate", n, secs(time.Since(t0)), active)
	go m.profile(ctx, "profile?seconds=20", "authorizer-scale-cpu-activating.pprof")
	t1 := time.Now()
	err = parallel(ctx, active, *flagWriters, func(ctx context.Context, i int) error {
		return b.createAs(ctx, users[i], activation(users[i]+"-jit", role, 8*time.Hour))
	})
	if err != nil {
		return err
	}
	err = poll(ctx, 250*time.Millisecond, 15*time.Minute, func() (bool, error) {
		var list pimv1.ActivationRequestList
		if err := b.admin.List(ctx, &list); err != nil {
			return false, err
		}
		count := 0
		for _, ar := range list.Items {
			if ar.Status.State == pimv1.ActivationStateActive {
				count++
			}
		}
		return count >= active, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d activations in force: %w", active, err)
	}
	logf("authorizer-scale: %d activations in force after %s", active, secs(time.Since(t1)))
	settledPeak, settledRSS := m.peakRSS(), m.rss()
	heap, _ := m.gather(ctx, "go_memstats_heap_alloc_bytes", nil)

	// The four kinds of request, interleaved so that load drifts alike.
	standing := "bench-az-standing"
	if err := b.admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: standing},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: standing}}}); err != nil {
		return err
	}
	kinds := []struct {
		label, user string
		want        bool
	}{
		{"off the path (system: user, RBAC denies, kubepim not asked)", "system:bench-offpath", false},
		{"on the path, no opinion (RBAC denies, kubepim asked)", "bench-az-nobody", false},
		{"allowed by kubepim (an activation in force)", users[0], true},
		{"allowed by RBAC (a bare ClusterRoleBinding; kubepim not asked)", standing, true},
	}
	if _, err := b.waitAccess(ctx, standing, true, 10*time.Millisecond, 30*time.Second); err != nil {
		return err
	}
	before := hist{}
	if fams, err := m.scrape(ctx); err == nil {
		if f, ok := fams["kubepim_authorizer_decision_seconds"]; ok {
			before = histogramOf(f)
		}
	}
	m.profile(ctx, "heap", "authorizer-scale-heap.pprof")
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		m.profile(ctx, "profile?seconds=15", "authorizer-scale-cpu.pprof")
	}()
	samples := make([]sample, len(kinds))
	for i := 0; i < *flagAuthzSamples; i++ {
		for k, kind := range kinds {
			d, allowed, err := b.timedSAR(ctx, kind.user)
			if err != nil {
				return err
			}
			if allowed != kind.want {
				return fmt.Errorf("%s: SubjectAccessReview for %s answered allowed=%v", kind.label, kind.user, allowed)
			}
			samples[k] = append(samples[k], d)
		}
	}
	<-profiled
	fams, err := m.scrape(ctx)
	if err != nil {
		return fmt.Errorf("reading the manager's metrics: %w", err)
	}
	f, ok := fams["kubepim_authorizer_decision_seconds"]
	if !ok {
		return fmt.Errorf("kubepim_authorizer_decision_seconds is missing: did the API server call the webhook?")
	}
	decisions := histogramOf(f).minus(before)

	prefix := fmt.Sprintf("authorizer %d/%d: ", n, active)
	res.add(row{Metric: prefix + "manager process memory with every assignment and activation in its cache", P50: "—", P99: "—",
		Max:    fmt.Sprintf("peak %s, resident %s when settled, Go heap in use %s", mib(settledPeak), mib(settledRSS), mib(uint64(heap))),
		Target: "—", Verdict: "reported"})
	res.add(row{Metric: fmt.Sprintf("%sdecision time in the webhook, kubepim_authorizer_decision_seconds (n=%d)", prefix, decisions.count),
		P50: "≤ " + ms(decisions.quantile(0.5)), P99: "≤ " + ms(decisions.quantile(0.99)),
		Max:    "mean " + ms(time.Duration(decisions.sum/float64(max(decisions.count, 1))*float64(time.Second))),
		Target: "p99 ≤ 1 ms", Verdict: verdict(decisions.quantile(0.99) <= time.Millisecond, float64(decisions.quantile(0.99))/float64(time.Millisecond))})
	for k, kind := range kinds {
		res.add(latencyRow(prefix+"SubjectAccessReview round trip, "+kind.label, samples[k], 0))
	}
	added := func(a, z sample, q float64) string { return ms(a.quantile(q) - z.quantile(q)) }
	res.add(row{Metric: prefix + "added per request on the path: no opinion − off the path", P50: added(samples[1], samples[0], 0.5),
		P99: added(samples[1], samples[0], 0.99), Max: "—", Target: "—", Verdict: "reported"})
	res.add(row{Metric: prefix + "elevated over standing: allowed by kubepim − allowed by RBAC", P50: added(samples[2], samples[3], 0.5),
		P99: added(samples[2], samples[3], 0.99), Max: "—", Target: "—", Verdict: "reported"})
	res.note("%sthe manager runs as its own process (cmd/manager --access-mode=authorizer); %d eligible assignments (one user each) and %d of those users' activations in force; the four kinds of SubjectAccessReview are interleaved, %d of each, one at a time. Differences of quantiles are not quantiles of differences: read them as the typical cost.",
		prefix, n, active, *flagAuthzSamples)
	return nil
}

// timedSAR asks whether user may list pods cluster-wide and times the
// answer.
func (b *bench) timedSAR(ctx context.Context, user string) (time.Duration, bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"},
	}}
	t0 := time.Now()
	got, err := b.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return 0, false, err
	}
	return time.Since(t0), got.Status.Allowed, nil
}
