package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/notify"
	"github.com/kubepim/kubepim/internal/policy"
)

// Defaults of delivery.
const (
	// DefaultNotificationRetention is how long a delivered or failed
	// Notification is kept as a record.
	DefaultNotificationRetention = 7 * 24 * time.Hour
	// DefaultNotificationGiveUp is how long delivery is retried.
	DefaultNotificationGiveUp = 24 * time.Hour
)

// NotificationReconciler delivers each Notification at least once: it
// sends, and only then records the delivery, so a crash in between sends
// again rather than never. A failed attempt is retried with exponential
// backoff (notify.Backoff) until the channel takes it, refuses it for good,
// or DefaultNotificationGiveUp has passed.
type NotificationReconciler struct {
	client.Client
	// APIReader reads channel Secrets, which the manager does not cache,
	// and the Notification itself right before a send.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Retention is how long finished Notifications are kept.
	Retention time.Duration
	// GiveUp is how long delivery is retried.
	GiveUp time.Duration
	// Deliver makes one attempt (notify.Deliver).
	Deliver func(context.Context, notify.Target, *pimv1.Notification, time.Time) notify.Result
	// Clock is the source of "now".
	Clock clock.PassiveClock
	// Namespace is kubepim's own namespace.
	Namespace string
	// Controller configures the controller (workers; the tests' queue that
	// follows a fake clock).
	Controller controller.Options
}

// +kubebuilder:rbac:groups=kubepim.io,resources=notifications,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=kubepim.io,resources=notifications/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=core,namespace=kubepim-system,resources=secrets,verbs=get

// Reconcile makes the next delivery attempt of one Notification when it is
// due, and deletes a finished one after its retention.
func (r *NotificationReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	now := r.Clock.Now()
	n := &pimv1.Notification{}
	if err := r.Get(ctx, req.NamespacedName, n); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if n.Status.Phase == pimv1.NotificationDelivered || n.Status.Phase == pimv1.NotificationFailed {
		return r.expire(ctx, n, now)
	}
	if next := n.Status.NextAttemptTime; next != nil && now.Before(next.Time) {
		return reconcile.Result{RequeueAfter: next.Sub(now)}, nil
	}

	// The cache may be a write behind: a pass woken by the echo of an older
	// status would then send a delivered message again. Decide on the
	// stored object; one read per attempt is cheap next to a send.
	if err := r.APIReader.Get(ctx, req.NamespacedName, n); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if n.Status.Phase == pimv1.NotificationDelivered || n.Status.Phase == pimv1.NotificationFailed {
		return r.expire(ctx, n, now)
	}
	if next := n.Status.NextAttemptTime; next != nil && now.Before(next.Time) {
		return reconcile.Result{RequeueAfter: next.Sub(now)}, nil
	}

	before := n.DeepCopy()
	result := r.attempt(ctx, n, now)
	r.record(n, result, now)
	// What was sent is recorded even when the manager is stopping: a
	// graceful shutdown must not turn a delivery into a repeat.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Optimistic lock: a second writer (an old leader finishing its pass)
	// must not turn a recorded delivery back into a pending one.
	if err := writeStatus(recordCtx, r.Client, before, n, client.MergeFromWithOptimisticLock{}); err != nil {
		return reconcile.Result{}, err
	}
	if n.Status.Phase == pimv1.NotificationPending {
		return reconcile.Result{RequeueAfter: n.Status.NextAttemptTime.Sub(now)}, nil
	}
	return reconcile.Result{RequeueAfter: r.Retention}, nil
}

// attempt sends the notification through its channel once.
func (r *NotificationReconciler) attempt(ctx context.Context, n *pimv1.Notification, now time.Time) notify.Result {
	ch := &pimv1.NotificationChannel{}
	if err := r.Get(ctx, types.NamespacedName{Name: n.Spec.Channel}, ch); err != nil {
		// A channel may be (re)created: keep trying until giving up.
		return notify.Result{Err: fmt.Errorf("NotificationChannel %s: %w", n.Spec.Channel, err)}
	}
	if ch.Spec.Type == pimv1.ChannelSMTP && len(n.Spec.To) == 0 {
		return notify.Result{Err: fmt.Errorf("no email address for %s in the user directory", strings.Join(n.Spec.Unreachable, ", ")), Permanent: true}
	}
	target := notify.Target{Channel: ch}
	if ref := ch.Spec.SecretRef; ref != nil {
		secret := &corev1.Secret{}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: r.Namespace, Name: ref.Name}, secret); err != nil {
			return notify.Result{Err: fmt.Errorf("secret %s/%s of channel %s: %w", r.Namespace, ref.Name, ch.Name, err)}
		}
		target.Secret = secret.Data
	}
	return r.Deliver(ctx, target, n, now)
}

// MaxLastErrorLength bounds status.lastError (of a Notification, and the
// channel's copy of the newest). A mail to a thousand people that fails
// for each joins a thousand errors; the API would refuse more than 32 KiB,
// and a refused status is an attempt recorded never. 4 KiB shows the
// first errors and says how much was cut.
const MaxLastErrorLength = 4096

// record writes an attempt's outcome into status, metrics and Events.
func (r *NotificationReconciler) record(n *pimv1.Notification, result notify.Result, now time.Time) {
	s := &n.Status
	at := metav1.NewTime(now)
	s.Attempts++
	if s.FirstAttemptTime == nil {
		s.FirstAttemptTime = &at
	}
	s.LastAttemptTime = &at
	for _, to := range result.DeliveredTo {
		if !slices.Contains(s.DeliveredTo, to) {
			s.DeliveredTo = append(s.DeliveredTo, to)
		}
	}
	switch {
	case result.Err == nil:
		s.Phase, s.DeliveryTime, s.NextAttemptTime, s.LastError = pimv1.NotificationDelivered, &at, nil, ""
		notificationsTotal.WithLabelValues(n.Spec.Channel, "delivered").Inc()
		if len(n.Spec.Unreachable) > 0 {
			r.Recorder.Eventf(n, nil, corev1.EventTypeWarning, "Unreachable", "Deliver",
				"no email address for %s in the user directory", strings.Join(n.Spec.Unreachable, ", "))
		}
	case result.Permanent || now.Sub(s.FirstAttemptTime.Time) >= r.GiveUp:
		s.Phase, s.NextAttemptTime, s.LastError = pimv1.NotificationFailed, nil, policy.Truncate(result.Err.Error(), MaxLastErrorLength)
		notificationsTotal.WithLabelValues(n.Spec.Channel, "failed").Inc()
		r.Recorder.Eventf(n, nil, corev1.EventTypeWarning, "DeliveryFailed", "Deliver", "gave up after %d attempt(s): %s", s.Attempts, result.Err)
	default:
		next := metav1.NewTime(now.Add(notify.Backoff(s.Attempts)))
		s.Phase, s.NextAttemptTime, s.LastError = pimv1.NotificationPending, &next, policy.Truncate(result.Err.Error(), MaxLastErrorLength)
		notificationsTotal.WithLabelValues(n.Spec.Channel, "retried").Inc()
	}
}

// expire deletes a finished Notification once its retention has passed.
// The notifier never makes Notifications for events older than its max
// age, which is shorter: a deleted one is not made, and sent, again.
func (r *NotificationReconciler) expire(ctx context.Context, n *pimv1.Notification, now time.Time) (reconcile.Result, error) {
	finished := n.CreationTimestamp.Time
	if n.Status.LastAttemptTime != nil {
		finished = n.Status.LastAttemptTime.Time
	}
	if left := finished.Add(r.Retention).Sub(now); left > 0 {
		return reconcile.Result{RequeueAfter: left}, nil
	}
	err := r.Delete(ctx, n, client.Preconditions{UID: &n.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{}, err
}

// SetupWithManager watches Notifications in kubepim's namespace.
func (r *NotificationReconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Deliver == nil {
		r.Deliver = notify.Deliver
	}
	opts := r.Controller
	// A slow channel must not hold up the others' deliveries.
	opts.MaxConcurrentReconciles = max(opts.MaxConcurrentReconciles, 4)
	return ctrl.ControllerManagedBy(mgr).
		Named("notification").
		For(&pimv1.Notification{}).
		WithOptions(opts).
		Complete(r)
}
