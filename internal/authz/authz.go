// Package authz lets the API server decide who may read kubepim's own
// HTTPS endpoints (metrics, the audit download): a bearer token is
// authenticated with a TokenReview and the request is authorized with a
// SubjectAccessReview, as kube-rbac-proxy and controller-runtime's metrics
// filters do. It is written here, on client-go alone, because
// controller-runtime's filters package brings in k8s.io/apiserver, which
// added 32 MB to the binary and 18 MiB to the manager's resident memory
// before it served a single request (measured: docs/performance.md).
package authz

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Check authenticates the request's bearer token and asks whether that user
// may do what attributes says. It returns the HTTP status to answer (200
// when allowed) and a message.
func Check(ctx context.Context, c client.Client, r *http.Request, attributes func(*authorizationv1.SubjectAccessReviewSpec)) (int, string) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return http.StatusUnauthorized, "send a bearer token: Authorization: Bearer <token>"
	}
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if err := c.Create(ctx, tr); err != nil {
		return http.StatusInternalServerError, "token review failed"
	}
	if !tr.Status.Authenticated {
		return http.StatusUnauthorized, "the token is not valid"
	}
	u := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
	}}
	attributes(&sar.Spec)
	if err := c.Create(ctx, sar); err != nil {
		return http.StatusInternalServerError, "access review failed"
	}
	if !sar.Status.Allowed {
		return http.StatusForbidden, fmt.Sprintf("%s may not do this: %s", u.Username, sar.Status.Reason)
	}
	return http.StatusOK, ""
}

// MetricsFilter is a metrics server FilterProvider: a scraper needs a token
// whose user may "get" the non-resource URL it asks for (/metrics), for
// example through the ClusterRole kubepim-metrics-reader.
func MetricsFilter(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	c, err := client.New(cfg, client.Options{HTTPClient: httpClient})
	if err != nil {
		return nil, err
	}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			status, msg := Check(r.Context(), c, r, func(s *authorizationv1.SubjectAccessReviewSpec) {
				s.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: r.URL.Path, Verb: strings.ToLower(r.Method)}
			})
			if status != http.StatusOK {
				log.V(1).Info("metrics request refused", "status", status, "reason", msg)
				http.Error(w, msg, status)
				return
			}
			next.ServeHTTP(w, r)
		}), nil
	}, nil
}
