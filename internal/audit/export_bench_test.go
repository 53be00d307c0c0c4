package audit_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/test/kubepimtest"
)

// BenchmarkExport10000 exports a trail of 10,000 events from a real API
// server, as CSV and as JSON lines. Run with `make bench`.
func BenchmarkExport10000(b *testing.B) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		b.Skip("needs KUBEBUILDER_ASSETS (make bench sets it)")
	}
	logf.SetLogger(logr.Discard())
	env, err := kubepimtest.Start(filepath.Join("..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	stop, err := env.StartManager(clock.RealClock{})
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	// Only the manager may write events. No client-side rate limit: the
	// setup is not what is measured.
	cfg := rest.CopyConfig(env.ManagerConfig)
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	const events = 10000
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < events; i += 8 {
				ev := &pimv1.AuditEvent{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%05d", i)}, Spec: pimv1.AuditEventSpec{
					Time: metav1.NewTime(start.Add(time.Duration(i) * time.Second).Truncate(time.Second)), Action: pimv1.AuditActivated,
					Actor:   &pimv1.UserInfo{Username: "kubepim:controller"},
					Subject: &pimv1.Subject{Kind: "User", Name: fmt.Sprintf("user-%d", i%50)},
					RoleRef: &pimv1.RoleRef{Kind: "ClusterRole", Name: fmt.Sprintf("role-%d", i%20)},
					Reason:  "benchmark, with a comma", Sequence: int64(i + 1), Outcome: pimv1.AuditOutcomeSuccess,
				}}
				if err := c.Create(ctx, ev); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("created %d events in %s", events, time.Since(start).Round(time.Millisecond))

	// A reader as kubectl would be: default rate limits do not matter for
	// a paged list of 20 pages, but set them as for the writer.
	reader := c
	for _, format := range []string{"csv", "json"} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				counter := &countingWriter{}
				if err := audit.Export(ctx, reader, audit.Filter{}, time.Now(), format, counter); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(counter.n)/1e6, "MB")
			}
		})
	}
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

var _ io.Writer = &countingWriter{}
