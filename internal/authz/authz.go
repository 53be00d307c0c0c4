// Package authz asks the API server who may do what. Allowed is kubepim's
// one SubjectAccessReview, used by the admission webhooks (the escalation
// guard, deactivation, the RoleSetting and AccessReview guards) and by the
// HTTPS endpoints (metrics, the audit download), where a bearer token is
// first authenticated with a TokenReview, as kube-rbac-proxy and
// controller-runtime's metrics filters do. It is written here, on client-go alone, because
// controller-runtime's filters package brings in k8s.io/apiserver, which
// added 32 MB to the binary and 18 MiB to the manager's resident memory
// before it served a single request (measured: docs/performance.md).
package authz

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"slices"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// The manager asks the API server who may do what.
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Attributes is what a user asks to do: a resource or a non-resource URL
// (exactly one of them).
type Attributes struct {
	Resource    *authorizationv1.ResourceAttributes
	NonResource *authorizationv1.NonResourceAttributes
}

// Allowed asks the API server, with a SubjectAccessReview for user (name,
// UID, groups and extra), whether user may do what attrs say.
func Allowed(ctx context.Context, c client.Client, user *pimv1.UserInfo, attrs Attributes) (bool, error) {
	status, err := review(ctx, c, user, attrs)
	return status.Allowed, err
}

func review(ctx context.Context, c client.Client, user *pimv1.UserInfo, attrs Attributes) (authorizationv1.SubjectAccessReviewStatus, error) {
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = v
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		ResourceAttributes: attrs.Resource, NonResourceAttributes: attrs.NonResource,
	}}
	if err := c.Create(ctx, sar); err != nil {
		return authorizationv1.SubjectAccessReviewStatus{}, err
	}
	return sar.Status, nil
}

// User converts a user the API server authenticated (admission userInfo,
// a TokenReview's status).
func User(u authenticationv1.UserInfo) *pimv1.UserInfo {
	info := &pimv1.UserInfo{Username: u.Username, UID: u.UID, Groups: slices.Clone(u.Groups)}
	if len(u.Extra) > 0 {
		info.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			info.Extra[k] = slices.Clone(v)
		}
	}
	return info
}

// Check authenticates the request's bearer token and asks whether that user
// may do what attrs say. It returns the HTTP status to answer (200 when
// allowed) and a message.
func Check(ctx context.Context, c client.Client, r *http.Request, attrs Attributes) (int, string) {
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
	u := User(tr.Status.User)
	status, err := review(ctx, c, u, attrs)
	if err != nil {
		return http.StatusInternalServerError, "access review failed"
	}
	if !status.Allowed {
		return http.StatusForbidden, fmt.Sprintf("%s may not do this: %s", u.Username, status.Reason)
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
			status, msg := Check(r.Context(), c, r, Attributes{
				NonResource: &authorizationv1.NonResourceAttributes{Path: r.URL.Path, Verb: strings.ToLower(r.Method)},
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
