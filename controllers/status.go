package controllers

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kubepim/kubepim/internal/grant"
)

// writeStatus is how every reconciler stores what its pass found: after's
// status as a merge patch against before (the object as the pass read it),
// and nothing at all when the pass changed nothing — conditions'
// LastTransitionTimes only move on transitions, so an unchanged status is
// an empty patch. Controllers never write spec. An object deleted meanwhile
// is not an error. opts may add an optimistic lock, for a status whose
// next pass must see every change made since this one read the object.
func writeStatus(ctx context.Context, c client.Client, before, after client.Object, opts ...client.MergeFromOption) error {
	if unchanged, err := statusUnchanged(before, after); err != nil || unchanged {
		return err
	}
	err := c.Status().Patch(ctx, after, client.MergeFromWithOptions(before, opts...))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func statusUnchanged(before, after client.Object) (bool, error) {
	data, err := client.MergeFrom(before).Data(after)
	if err != nil {
		return false, err
	}
	return string(data) == "{}", nil
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
