package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

var (
	notificationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubepim_notifications_total",
		Help: "Notification delivery attempts, by channel and result (delivered, retried, failed).",
	}, []string{"channel", "result"})

	notificationsPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kubepim_notifications_pending",
		Help: "Notifications waiting for their channel, by channel.",
	}, []string{"channel"})

	activationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubepim_activations_total",
		Help: "ActivationRequests that reached a result (Activated, Expired, Deactivated, Cancelled, Denied, Failed), by role.",
	}, []string{"role", "result"})

	activationGrantSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kubepim_activation_grant_seconds",
		Help:    "Seconds from the moment an activation was due (its creation, its start time, or its last approval) to its binding existing.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	})

	revocationLagSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kubepim_revocation_lag_seconds",
		Help:    "Seconds from an activation's or assignment's end time to its binding being deleted.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30, 300},
	})

	approvalsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubepim_approvals_total",
		Help: "Approval decisions recorded, by decision (Approve, Deny).",
	}, []string{"decision"})

	decisionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kubepim_approval_decision_seconds",
		Help:    "Seconds from an ActivationRequest's creation to the end of its wait for approval.",
		Buckets: prometheus.ExponentialBuckets(10, 3, 10),
	})

	reviewDecisionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kubepim_review_decisions_total",
		Help: "Access review decisions recorded, by decision (Approve, Deny) and by whom (reviewer, default).",
	}, []string{"decision", "by"})

	reviewRemovalsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "kubepim_review_removals_total",
		Help: "Assignments removed by access reviews (auto-apply).",
	})

	reviewItemsDesc = prometheus.NewDesc("kubepim_review_items",
		"Items of access reviews in progress, by review and whether decided.", []string{"review", "decided"}, nil)

	pendingApprovalsDesc = prometheus.NewDesc("kubepim_pending_approvals",
		"ActivationRequests waiting for approval now.", nil, nil)

	activeActivationsDesc = prometheus.NewDesc("kubepim_active_activations",
		"ActivationRequests that are Active now.", nil, nil)
)

// activeActivations counts Active requests from the cache at scrape time, so
// the gauge is right after a restart and never drifts.
type activeActivations struct{ reader client.Reader }

func (c *activeActivations) Describe(ch chan<- *prometheus.Desc) {
	ch <- activeActivationsDesc
	ch <- pendingApprovalsDesc
	ch <- reviewItemsDesc
}

func (c *activeActivations) Collect(ch chan<- prometheus.Metric) {
	if c.reader == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list pimv1.ActivationRequestList
	if err := c.reader.List(ctx, &list); err != nil {
		return
	}
	active, pending := 0, 0
	for i := range list.Items {
		switch list.Items[i].Status.State {
		case pimv1.ActivationStateActive:
			active++
		case pimv1.ActivationStatePendingApproval:
			pending++
		}
	}
	ch <- prometheus.MustNewConstMetric(activeActivationsDesc, prometheus.GaugeValue, float64(active))
	ch <- prometheus.MustNewConstMetric(pendingApprovalsDesc, prometheus.GaugeValue, float64(pending))
	var reviews pimv1.AccessReviewList
	if err := c.reader.List(ctx, &reviews); err != nil {
		return
	}
	for _, rev := range reviews.Items {
		if rev.Status.State != pimv1.ReviewStateInProgress {
			continue
		}
		ch <- prometheus.MustNewConstMetric(reviewItemsDesc, prometheus.GaugeValue, float64(rev.Status.Reviewed), rev.Name, "true")
		ch <- prometheus.MustNewConstMetric(reviewItemsDesc, prometheus.GaugeValue, float64(rev.Status.Total-rev.Status.Reviewed), rev.Name, "false")
	}
}

var activeCollector = &activeActivations{}

func init() {
	metrics.Registry.MustRegister(notificationsTotal, notificationsPending, reviewDecisionsTotal, reviewRemovalsTotal, approvalsTotal, decisionSeconds, activationsTotal, activationGrantSeconds, revocationLagSeconds, activeCollector)
}
