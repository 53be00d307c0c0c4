package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/policy"
)

// liveFor bounds one stream: the browser's EventSource reconnects after
// it (through the session check again, refreshing the ID token when it is
// about to expire), so no stream outlives the token it watches with.
const liveFor = 5 * time.Minute

// liveState is what the stream sends of a request.
type liveState struct {
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// requestEvents streams a request's state as Server-Sent Events: the
// current state at once, then each change, read by a watch *as the user*
// (the user's own token: what the user may not get, the stream does not
// show). It ends when the request is Active or has ended (event "end"),
// when it is deleted, or after liveFor.
func (s *Server) requestEvents(q *request) {
	ctx := q.r.Context()
	name := q.r.PathValue("name")
	ar := &pimv1.ActivationRequest{}
	if err := q.c.Get(ctx, client.ObjectKey{Name: name}, ar); err != nil {
		http.Error(q.w, err.Error(), statusOf(err))
		return
	}
	wc, err := s.kube.watchAs(q.sess.bearer())
	if err != nil {
		http.Error(q.w, err.Error(), http.StatusInternalServerError)
		return
	}
	until := liveFor
	if left := q.sess.Expiry.Sub(s.opts.Clock.Now()); left < until {
		until = max(left, 10*time.Second)
	}
	ctx, cancel := context.WithTimeout(ctx, until)
	defer cancel()
	w, err := wc.Watch(ctx, &pimv1.ActivationRequestList{}, &client.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name),
		Raw:           &metav1.ListOptions{ResourceVersion: ar.ResourceVersion, AllowWatchBookmarks: true},
	})
	if err != nil {
		http.Error(q.w, err.Error(), statusOf(err))
		return
	}
	defer w.Stop()

	h := q.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // a proxy in front must not buffer the stream
	rc := http.NewResponseController(q.w)
	_ = rc.SetWriteDeadline(time.Time{})
	q.w.WriteHeader(http.StatusOK)
	var last liveState
	send := func(ar *pimv1.ActivationRequest) (done bool) {
		st := liveState{State: string(ar.Status.State), Message: ar.Status.Message}
		if st.State == "" {
			st.State = string(pimv1.ActivationStatePending)
		}
		done = policy.IsFinal(ar.Status.State) || ar.Status.State == pimv1.ActivationStateActive
		if st != last {
			last = st
			data, _ := json.Marshal(st)
			_, _ = fmt.Fprintf(q.w, "event: state\ndata: %s\n\n", data)
		}
		if done {
			_, _ = fmt.Fprint(q.w, "event: end\ndata: {}\n\n")
		}
		_ = rc.Flush()
		return done
	}
	// retry: how soon the browser reconnects after the stream ends.
	_, _ = fmt.Fprint(q.w, "retry: 2000\n\n")
	if send(ar) {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepalive.C:
			_, _ = fmt.Fprint(q.w, ": keepalive\n\n")
			if rc.Flush() != nil {
				return
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return // the browser reconnects and starts a fresh watch
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if got, ok := ev.Object.(*pimv1.ActivationRequest); ok && send(got) {
					return
				}
			case watch.Deleted:
				_, _ = fmt.Fprint(q.w, "event: end\ndata: {}\n\n")
				_ = rc.Flush()
				return
			case watch.Error:
				return
			}
		}
	}
}

// statusOf is the HTTP status of an API error.
func statusOf(err error) int {
	switch {
	case apierrors.IsNotFound(err):
		return http.StatusNotFound
	case apierrors.IsForbidden(err):
		return http.StatusForbidden
	}
	return http.StatusBadGateway
}
