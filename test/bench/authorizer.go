package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// authorizer runs the bare binding, grant and revoke steps on a control
// plane in authorizer mode (setup with kubepimtest.Options.Authorizer and
// the manager in --access-mode=authorizer), their rows prefixed
// "authorizer: ", and reports the webhook's own decision time over those
// runs from kubepim_authorizer_decision_seconds (the manager runs in this
// process, so its registry is read directly).
func (b *bench) authorizer(ctx context.Context, res *results) error {
	b.label = "authorizer: "
	before := histogram("kubepim_authorizer_decision_seconds")
	decisions0 := map[string]float64{}
	for _, d := range []string{"allowed", "no-opinion", "error"} {
		decisions0[d], _, _ = gather("kubepim_authorizer_decisions_total", map[string]string{"decision": d})
	}
	for _, step := range []struct {
		name string
		fn   func(context.Context, *results) error
	}{{"bare", b.bare}, {"grant", b.grant}, {"revoke", b.revoke}} {
		logf("--- authorizer: %s", step.name)
		if err := step.fn(ctx, res); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	after := histogram("kubepim_authorizer_decision_seconds")
	h := after.minus(before)
	if h.count == 0 {
		return fmt.Errorf("kubepim_authorizer_decision_seconds observed nothing: did the API server call the webhook?")
	}
	p50, p99 := h.quantile(0.5), h.quantile(0.99)
	res.add(row{Metric: fmt.Sprintf("authorizer: decision time, kubepim_authorizer_decision_seconds over these runs (n=%d)", h.count),
		P50: "≤ " + ms(p50), P99: "≤ " + ms(p99), Max: "mean " + ms(time.Duration(h.sum/float64(h.count)*float64(time.Second))),
		Target: "p99 ≤ 1 ms", Verdict: verdict(p99 <= time.Millisecond, float64(p99)/float64(time.Millisecond))})
	counts := map[string]float64{}
	for _, d := range []string{"allowed", "no-opinion", "error"} {
		v, _, _ := gather("kubepim_authorizer_decisions_total", map[string]string{"decision": d})
		counts[d] = v - decisions0[d]
	}
	res.note("authorizer: the decision-time quantiles are the upper bounds of the histogram's buckets (50, 100, 250, 500 µs, 1 ms, ...); the webhook answered %.0f allowed, %.0f no opinion, %.0f errors in these runs. The SAR answer includes the webhook call: the API server's TLS connection to the manager, the JSON round trip and the decision.",
		counts["allowed"], counts["no-opinion"], counts["error"])
	return nil
}

// hist is a Prometheus histogram read from the registry: cumulative counts
// by upper bound.
type hist struct {
	bounds []float64
	cum    []uint64
	count  uint64
	sum    float64
}

func histogram(name string) hist {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return hist{}
	}
	for _, f := range families {
		if f.GetName() == name {
			return histogramOf(f)
		}
	}
	return hist{}
}

// histogramOf sums a histogram family's series.
func histogramOf(f *dto.MetricFamily) hist {
	var h hist
	for _, m := range f.GetMetric() {
		mh := m.GetHistogram()
		h.count += mh.GetSampleCount()
		h.sum += mh.GetSampleSum()
		for i, bk := range mh.GetBucket() {
			if len(h.bounds) <= i {
				h.bounds = append(h.bounds, bk.GetUpperBound())
				h.cum = append(h.cum, 0)
			}
			h.cum[i] += bk.GetCumulativeCount()
		}
	}
	return h
}

func (h hist) minus(o hist) hist {
	d := hist{bounds: slices.Clone(h.bounds), cum: slices.Clone(h.cum), count: h.count - o.count, sum: h.sum - o.sum}
	for i := range d.cum {
		if i < len(o.cum) {
			d.cum[i] -= o.cum[i]
		}
	}
	return d
}

// quantile is the upper bound of the bucket the q-quantile falls in
// (+Inf beyond the last bucket).
func (h hist) quantile(q float64) time.Duration {
	want := uint64(math.Ceil(q * float64(h.count)))
	for i, c := range h.cum {
		if c >= want {
			return time.Duration(h.bounds[i] * float64(time.Second))
		}
	}
	return time.Duration(math.MaxInt64)
}
