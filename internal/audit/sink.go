package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/safeurl"
)

// Sink POSTs each recorded event, as JSON, to a URL (a SIEM collector, a
// log shipper), retrying with exponential backoff. The AuditEvent objects
// stay the record of truth: the sink is a copy, and an event still queued
// when the manager stops is not sent (export it with `manager audit export`).
type Sink struct {
	URL    string
	Client *http.Client
	Log    logr.Logger
	// Backoff between attempts; the zero value means 1s doubling up to 8
	// attempts.
	Backoff wait.Backoff

	queue chan sinkItem
}

type sinkItem struct {
	Name string `json:"name"`
	pimv1.AuditEventSpec
}

// NewSink returns a sink for url with a queue of size events. The URL
// may carry a credential (a token in the path or query, a password): logs
// and errors name only its host (package safeurl).
func NewSink(url string, size int, log logr.Logger) *Sink {
	return &Sink{URL: strings.TrimSpace(url), Client: &http.Client{Timeout: 10 * time.Second}, Log: log, queue: make(chan sinkItem, size),
		Backoff: wait.Backoff{Duration: time.Second, Factor: 2, Steps: 8, Cap: 2 * time.Minute}}
}

// Enqueue hands an event to the sink without blocking the recorder; when
// the queue is full the event is dropped from the sink (and logged).
func (s *Sink) Enqueue(ev *pimv1.AuditEvent) {
	select {
	case s.queue <- sinkItem{Name: ev.Name, AuditEventSpec: ev.Spec}:
	default:
		s.Log.Info("audit sink queue full: event not forwarded", "event", ev.Name)
	}
}

// Start sends queued events until ctx ends; it is a manager Runnable.
func (s *Sink) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case item := <-s.queue:
			body, err := json.Marshal(item)
			if err != nil {
				continue
			}
			var last error
			err = wait.ExponentialBackoffWithContext(ctx, s.Backoff, func(ctx context.Context) (bool, error) {
				last = s.post(ctx, body)
				return last == nil, nil
			})
			if err != nil {
				if last == nil {
					last = err
				}
				s.Log.Error(last, "audit sink gave up on an event", "event", item.Name, "host", safeurl.Host(s.URL))
			}
		}
	}
}

// NeedLeaderElection: only the leader records events, so only it forwards.
func (s *Sink) NeedLeaderElection() bool { return true }

// post sends one event. Its errors never contain the URL: they are built
// from the host, the status and a class of error.
func (s *Sink) post(ctx context.Context, body []byte) error {
	u, err := safeurl.Parse(s.URL)
	if err != nil {
		return fmt.Errorf("audit sink: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return errors.New("audit sink: " + safeurl.Describe(s.URL, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return errors.New("audit sink: " + safeurl.Describe(s.URL, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return errors.New("audit sink at " + safeurl.Answered(s.URL, resp.Status, snippet))
	}
	return nil
}
