package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kubepim/kubepim/controllers/bindings"
)

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
// that owns it, so that drift is repaired at once.
func enqueueBindingOwner(kind string) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		if name := bindings.OwnerName(obj, kind); name != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
		}
		return nil
	})
}
