package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

// kube makes API clients that act as the signed-in user: each carries the
// user's own ID token as its bearer token and nothing else. The console
// keeps the API server's address and CA and drops every credential of the
// configuration it was given (a kubeconfig's user, a ServiceAccount token):
// it has no power of its own.
type kube struct {
	cfg    *rest.Config
	base   http.RoundTripper
	mapper meta.RESTMapper
	scheme *runtime.Scheme
}

func newKube(cfg *rest.Config) (*kube, error) {
	anon := rest.AnonymousClientConfig(cfg)
	base, err := rest.TransportFor(anon)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(pimv1.AddToScheme(scheme))
	utilruntime.Must(authenticationv1.AddToScheme(scheme))
	utilruntime.Must(authorizationv1.AddToScheme(scheme))
	utilruntime.Must(corev1.AddToScheme(scheme))
	// A fixed mapping of the few kinds the console uses: no discovery
	// (which would need credentials of its own, and a round trip per user).
	mapper := meta.NewDefaultRESTMapper(nil)
	for _, kind := range []string{"RoleAssignment", "RoleSetting", "ActivationRequest", "AuditEvent", "AccessReview", "AccessReviewItem"} {
		mapper.Add(pimv1.GroupVersion.WithKind(kind), meta.RESTScopeRoot)
	}
	mapper.Add(authenticationv1.SchemeGroupVersion.WithKind("SelfSubjectReview"), meta.RESTScopeRoot)
	// The audit trail's anchor, in kubepim's namespace (read to verify the
	// chain, when the user may).
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	mapper.Add(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview"), meta.RESTScopeRoot)
	return &kube{cfg: anon, base: base, mapper: mapper, scheme: scheme}, nil
}

// as returns a client that authenticates with token alone.
func (k *kube) as(token string) (client.Client, error) {
	hc := &http.Client{Transport: transport.NewBearerAuthRoundTripper(token, k.base), Timeout: 30 * time.Second}
	return client.New(k.cfg, client.Options{Scheme: k.scheme, Mapper: k.mapper, HTTPClient: hc})
}

// watchAs is as, with watches (the live state of a request).
func (k *kube) watchAs(token string) (client.WithWatch, error) {
	// No client timeout: a watch lasts as long as its context.
	hc := &http.Client{Transport: transport.NewBearerAuthRoundTripper(token, k.base)}
	return client.NewWithWatch(k.cfg, client.Options{Scheme: k.scheme, Mapper: k.mapper, HTTPClient: hc})
}

// whoami asks the API server who the token's holder is: the user, groups
// and extra exactly as RBAC and kubepim's webhooks see them.
func whoami(ctx context.Context, c client.Client) (pimv1.UserInfo, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return pimv1.UserInfo{}, err
	}
	u := review.Status.UserInfo
	if u.Username == "" {
		return pimv1.UserInfo{}, fmt.Errorf("the API server did not say who you are")
	}
	info := pimv1.UserInfo{Username: u.Username, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		info.Extra = map[string][]string{}
		for k, v := range u.Extra {
			info.Extra[k] = v
		}
	}
	return info, nil
}
