package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/notify"
	"github.com/kubepim/kubepim/internal/policy"
	"github.com/kubepim/kubepim/internal/safeurl"
)

// failingAfter is how many failed attempts in a row make a pending
// notification count as its channel failing.
const failingAfter = 3

// NotificationChannelReconciler reports whether a channel delivers: its
// Secret is there, and what its Notifications say of their attempts.
type NotificationChannelReconciler struct {
	client.Client
	// APIReader reads the channel's Secret (Secrets are not cached).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Clock is the source of "now".
	Clock clock.PassiveClock
	// Namespace is kubepim's own namespace.
	Namespace string
	// MaxRequeue caps how long a pass waits before looking again, so a
	// missed event heals.
	MaxRequeue time.Duration
	// Controller configures the controller (workers; the tests' queue that
	// follows a fake clock).
	Controller controller.Options
}

// +kubebuilder:rbac:groups=kubepim.io,resources=notificationchannels,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubepim.io,resources=notificationchannels/status,verbs=get;update;patch

// Reconcile summarizes one channel's deliveries into its status.
func (r *NotificationChannelReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	now := r.Clock.Now()
	ch := &pimv1.NotificationChannel{}
	if err := r.Get(ctx, req.NamespacedName, ch); err != nil {
		if apierrors.IsNotFound(err) {
			notificationsPending.DeleteLabelValues(req.Name)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	var list pimv1.NotificationList
	if err := r.List(ctx, &list, client.InNamespace(r.Namespace), client.MatchingFields{lookup.NotificationByChannel: ch.Name}); err != nil {
		return reconcile.Result{}, err
	}
	secretReason, secretProblem, err := r.checkSecret(ctx, ch)
	if err != nil {
		return reconcile.Result{}, err
	}

	before := ch.DeepCopy()
	summarizeDeliveries(&ch.Status, list.Items)
	ok, reason, message := true, pimv1.ReasonChannelValid, "delivering"
	switch {
	case secretProblem != "":
		ok, reason, message = false, secretReason, secretProblem
	case channelFailing(list.Items):
		ok, reason = false, pimv1.ReasonDeliveryFailing
		message = fmt.Sprintf("%d notification(s) failing; last error: %s", ch.Status.Failing, ch.Status.LastError)
	}
	if was := meta.FindStatusCondition(before.Status.Conditions, pimv1.ConditionReady); !ok && (was == nil || was.Reason != reason) {
		r.Recorder.Eventf(ch, nil, corev1.EventTypeWarning, reason, "Deliver", "%s", message)
	}
	conds := conditionsOf(&ch.Status.Conditions, ch.Generation, now)
	conds.mark(pimv1.ConditionReady, ok, reason, message)
	conds.stalled(secretProblem != "", secretReason, secretProblem)
	ch.Status.ObservedGeneration = ch.Generation
	notificationsPending.WithLabelValues(ch.Name).Set(float64(ch.Status.Pending))
	if err := writeStatus(ctx, r.Client, before, ch); err != nil {
		return reconcile.Result{}, err
	}
	// Secrets are not watched: look at this one again now and then.
	return reconcile.Result{RequeueAfter: r.MaxRequeue}, nil
}

// checkSecret says what is wrong with the channel's Secret, if anything,
// and the condition reason for it. The message names the Secret and the
// key, never the value: the URL is the channel's credential.
func (r *NotificationChannelReconciler) checkSecret(ctx context.Context, ch *pimv1.NotificationChannel) (reason, problem string, err error) {
	if ch.Spec.SecretRef == nil {
		return "", "", nil
	}
	secret := &corev1.Secret{}
	err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: r.Namespace, Name: ch.Spec.SecretRef.Name}, secret)
	if apierrors.IsNotFound(err) {
		return pimv1.ReasonSecretMissing, fmt.Sprintf("Secret %s/%s does not exist", r.Namespace, ch.Spec.SecretRef.Name), nil
	} else if err != nil {
		return "", "", err
	}
	if ch.Spec.Type == pimv1.ChannelSMTP {
		return "", "", nil
	}
	raw := strings.TrimSpace(string(secret.Data[notify.SecretKeyURL]))
	if raw == "" {
		return pimv1.ReasonSecretMissing, fmt.Sprintf("Secret %s/%s has no key %q", r.Namespace, ch.Spec.SecretRef.Name, notify.SecretKeyURL), nil
	}
	if _, err := safeurl.Parse(raw); err != nil {
		return pimv1.ReasonSecretInvalid, fmt.Sprintf("Secret %s/%s, key %q: %s", r.Namespace, ch.Spec.SecretRef.Name, notify.SecretKeyURL, err), nil
	}
	return "", "", nil
}

// summarizeDeliveries counts a channel's pending and failing
// notifications, and finds its last delivery and newest error.
func summarizeDeliveries(s *pimv1.NotificationChannelStatus, notes []pimv1.Notification) {
	s.Pending, s.Failing, s.LastError = 0, 0, ""
	var lastError time.Time
	for _, n := range notes {
		if n.Status.Phase == pimv1.NotificationDelivered || n.Status.Phase == pimv1.NotificationFailed {
			if d := n.Status.DeliveryTime; d != nil && (s.LastDeliveryTime == nil || d.After(s.LastDeliveryTime.Time)) {
				s.LastDeliveryTime = d.DeepCopy()
			}
		} else {
			s.Pending++
			if n.Status.LastError != "" {
				s.Failing++
			}
		}
		if a := n.Status.LastAttemptTime; n.Status.LastError != "" && a != nil && a.After(lastError) {
			lastError, s.LastError = a.Time, policy.Truncate(n.Status.LastError, MaxLastErrorLength)
		}
	}
}

// channelFailing: a notification keeps failing, or the channel's newest
// outcome is a notification given up.
func channelFailing(notes []pimv1.Notification) bool {
	var lastDelivered, lastFailed time.Time
	for _, n := range notes {
		switch n.Status.Phase {
		case pimv1.NotificationDelivered:
			if n.Status.DeliveryTime != nil && n.Status.DeliveryTime.After(lastDelivered) {
				lastDelivered = n.Status.DeliveryTime.Time
			}
		case pimv1.NotificationFailed:
			if n.Status.LastAttemptTime != nil && n.Status.LastAttemptTime.After(lastFailed) {
				lastFailed = n.Status.LastAttemptTime.Time
			}
		default:
			if n.Status.Attempts >= failingAfter {
				return true
			}
		}
	}
	return lastFailed.After(lastDelivered)
}

// SetupWithManager watches channels, and their Notifications.
func (r *NotificationChannelReconciler) SetupWithManager(mgr manager.Manager) error {
	return ctrl.ControllerManagedBy(mgr).
		Named("notificationchannel").
		For(&pimv1.NotificationChannel{}).
		Watches(&pimv1.Notification{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.(*pimv1.Notification).Spec.Channel}}}
		})).
		WithOptions(r.Controller).
		Complete(r)
}
