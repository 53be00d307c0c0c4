package audit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/apimachinery/pkg/util/wait"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestSinkRetriesUntilTheCollectorAccepts(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	received := make(chan map[string]any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		if n < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("body is not JSON: %v", err)
		}
		received <- got
	}))
	defer srv.Close()

	s := NewSink(srv.URL, 10, logr.Discard())
	s.Backoff = wait.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 5}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Start(ctx) }()
	ev := &pimv1.AuditEvent{Spec: pimv1.AuditEventSpec{Action: pimv1.AuditActivated, Sequence: 7}}
	ev.Name = "activated-abc"
	s.Enqueue(ev)

	select {
	case got := <-received:
		if got["name"] != "activated-abc" || got["action"] != "Activated" || got["sequence"] != float64(7) {
			t.Fatalf("received %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the collector never received the event")
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts != 3 {
		t.Fatalf("attempts = %d, want 3 (two refusals, then success)", attempts)
	}
}

// TestSinkNeverLogsItsURL: the sink URL may carry a token or a password;
// the log line of an event given up on names only the host.
func TestSinkNeverLogsItsURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unknown collector "+r.URL.RequestURI(), http.StatusForbidden)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	logged := make(chan string, 1)
	log := funcr.New(func(_, args string) {
		select {
		case logged <- args:
		default:
		}
	}, funcr.Options{})
	s := NewSink("http://siem:pa55word@"+host+"/ingest/T0KEN123?apikey=K3Y456\n", 10, log)
	s.Backoff = wait.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Start(ctx) }()
	ev := &pimv1.AuditEvent{Spec: pimv1.AuditEventSpec{Action: pimv1.AuditActivated}}
	ev.Name = "activated-abc"
	s.Enqueue(ev)
	select {
	case got := <-logged:
		if !strings.Contains(got, host) || !strings.Contains(got, "403 Forbidden") {
			t.Errorf("log %q does not say which host answered what", got)
		}
		for _, secret := range []string{"pa55word", "T0KEN123", "K3Y456", "/ingest", "siem"} {
			if strings.Contains(got, secret) {
				t.Errorf("log %q contains %q", got, secret)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sink never gave up")
	}
}
