package grant

// A Syncer's own creates and deletes come back to the owner's controller as
// watch events; running the owner's reconcile again for them would only
// repeat the pass that made them. This file tells them apart.

import (
	"context"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// echo is one expected watch event.
type echo struct {
	done bool   // the request returned
	rv   string // the resourceVersion created
	seen bool   // the event came while the request was in flight
}

func echoKey(obj client.Object) string { return Key(obj) }

// Echo reports whether a binding's create (deleted false) or delete
// (deleted true) watch event is the echo of this Syncer's own request for
// an owner of kind, and forgets it then. The pass that sent it already
// knew: running the owner's reconcile again for it, from a cache that may
// not yet hold that pass's own status, would only repeat its work. A
// binding changed by anyone since (another resourceVersion) is no echo.
func (s *Syncer) Echo(kind string, obj client.Object, deleted bool) bool {
	if obj.GetLabels()[pimv1.LabelOwnerKind] != kind {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if deleted {
		return consume(s.deleted, obj.GetUID(), "")
	}
	return consume(s.created, echoKey(obj), obj.GetResourceVersion())
}

func consume[K comparable](m map[K]*echo, key K, rv string) bool {
	e := m[key]
	if e == nil {
		return false
	}
	if !e.done {
		e.seen = true
		return true
	}
	delete(m, key)
	return rv == "" || e.rv == rv
}

// expect notes a request about to be sent; its result is given to the
// returned function.
func expect[K comparable](mu *sync.Mutex, m *map[K]*echo, key K) func(ok bool, rv string) {
	mu.Lock()
	if *m == nil {
		*m = map[K]*echo{}
	}
	e := &echo{}
	(*m)[key] = e
	mu.Unlock()
	return func(ok bool, rv string) {
		mu.Lock()
		defer mu.Unlock()
		if (*m)[key] != e {
			return
		}
		if !ok || e.seen {
			delete(*m, key)
			return
		}
		e.done, e.rv = true, rv
	}
}

// create creates obj, noting its echo.
func (s *Syncer) create(ctx context.Context, obj client.Object) error {
	done := expect(&s.mu, &s.created, echoKey(obj))
	err := s.Client.Create(ctx, obj)
	done(err == nil, obj.GetResourceVersion())
	return err
}
