package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// writeCounter counts the requests the manager sends to the API server, by
// method and resource. It wraps the manager's transport
// (rest.Config.WrapTransport), so it sees the controllers, the webhooks'
// direct clients, the audit recorder and the event recorder alike.
type writeCounter struct {
	mu      sync.Mutex
	counts  map[string]int
	tracing bool
}

// trace turns printing every write (to the progress log) on or off.
func (c *writeCounter) trace(on bool) {
	c.mu.Lock()
	c.tracing = on
	c.mu.Unlock()
}

func newWriteCounter() *writeCounter { return &writeCounter{counts: map[string]int{}} }

func (c *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		tracing := false
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			c.mu.Lock()
			c.counts[req.Method+" "+resourceOf(req.URL.Path)]++
			if tracing = c.tracing; tracing {
				logf("write: %s %s", req.Method, req.URL.Path)
			}
			c.mu.Unlock()
		}
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		if tracing {
			logf("write: %s %s answered after %s", req.Method, req.URL.Path, ms(time.Since(start)))
		}
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// snapshot returns a copy of the counts so far.
func (c *writeCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// reviews are POSTs that store nothing (authorization and identity checks).
var reviews = []string{"subjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectreviews", "tokenreviews", "localsubjectaccessreviews"}

func isReview(key string) bool {
	res := strings.SplitN(strings.Fields(key)[1], ".", 2)[0]
	return slices.Contains(reviews, strings.Split(res, "/")[0])
}

// delta returns after − before, writes only (reviews left out), and the
// number of reviews.
func delta(before, after map[string]int) (writes map[string]int, total, reviewCount int) {
	writes = map[string]int{}
	for k, v := range after {
		d := v - before[k]
		if d == 0 {
			continue
		}
		if isReview(k) {
			reviewCount += d
			continue
		}
		writes[k] = d
		total += d
	}
	return writes, total, reviewCount
}

func totalWrites(m map[string]int) int {
	n := 0
	for k, v := range m {
		if !isReview(k) {
			n += v
		}
	}
	return n
}

func formatBreakdown(m map[string]int, divisor float64) string {
	keys := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(keys, func(a, b string) int { return m[b] - m[a] })
	var parts []string
	for _, k := range keys {
		if divisor == 1 {
			parts = append(parts, fmt.Sprintf("%d× %s", m[k], k))
		} else {
			parts = append(parts, fmt.Sprintf("%.2f× %s", float64(m[k])/divisor, k))
		}
	}
	return strings.Join(parts, ", ")
}

// resourceOf turns an API path into "resource[.group][/subresource]":
// /apis/kubepim.io/v1alpha1/activationrequests/x/status is
// "activationrequests.kubepim.io/status".
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var group string
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		group, parts = parts[1], parts[3:]
	default:
		return path
	}
	if len(parts) >= 3 && parts[0] == "namespaces" {
		parts = parts[2:]
	}
	if len(parts) == 0 {
		return path
	}
	res := parts[0]
	if group != "" {
		res += "." + group
	}
	if len(parts) >= 3 {
		res += "/" + parts[2]
	}
	return res
}
