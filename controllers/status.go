package controllers

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/grant"
)

// setStalled keeps kstatus's Stalled condition in conditions: True with
// reason and message while stalled, absent otherwise (an abnormal-true
// condition is only there while it holds).
func setStalled(conditions *[]metav1.Condition, stalled bool, reason, message string, generation int64, now time.Time) {
	if !stalled {
		meta.RemoveStatusCondition(conditions, pimv1.ConditionStalled)
		return
	}
	meta.SetStatusCondition(conditions, metav1.Condition{Type: pimv1.ConditionStalled, Status: metav1.ConditionTrue,
		Reason: reason, Message: message, ObservedGeneration: generation, LastTransitionTime: metav1.NewTime(now)})
}

// equalStatus reports whether two statuses are the same, ignoring nothing:
// condition LastTransitionTimes only move on transitions (meta.SetStatusCondition).
func equalStatus[T any](a, b T) bool {
	return equality.Semantic.DeepEqual(a, b)
}

// patchStatus stores after's status as a merge patch against before, unless
// unchanged; an object deleted meanwhile is not an error.
func patchStatus(ctx context.Context, c client.Client, before, after client.Object, unchanged bool) error {
	if unchanged {
		return nil
	}
	err := c.Status().Patch(ctx, after, client.MergeFrom(before))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// enqueueBindingOwner maps a managed binding to the kubepim object of kind
// that owns it, so that drift is repaired at once. The echoes of the
// syncer's own creates and deletes are left out: the pass that made them
// has done the work.
func enqueueBindingOwner(kind string, syncer *grant.Syncer) handler.EventHandler {
	owner := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		if name := grant.OwnerName(obj, kind); name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
		}
		return nil
	})
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if !syncer.Echo(kind, e.Object, false) {
				owner.Create(ctx, e, q)
			}
		},
		UpdateFunc: owner.Update,
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if !syncer.Echo(kind, e.Object, true) {
				owner.Delete(ctx, e, q)
			}
		},
		GenericFunc: owner.Generic,
	}
}
