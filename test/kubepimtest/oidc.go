package kubepimtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubepim/kubepim/test/oidcprovider"
)

// MFAClaim is the user-extra key config/console/authentication-config.yaml
// maps the ID token's amr claim to: a manager behind that configuration
// runs with --mfa-claim=kubepim.io/amr.
const MFAClaim = "kubepim.io/amr"

// OIDCAuthentication returns the structured authentication configuration
// of config/console/authentication-config.yaml (under root), trusting
// issuer (its CA given as PEM) for tokens issued to clientID. Tests so run
// kube-apiserver with the claim mappings the documentation shows.
func OIDCAuthentication(root, issuer, clientID string, caPEM []byte) ([]byte, error) {
	raw, err := os.ReadFile(filepath.Join(root, "config", "console", "authentication-config.yaml"))
	if err != nil {
		return nil, err
	}
	return oidcprovider.AuthenticationConfig(raw, issuer, clientID, caPEM)
}

// BearerConfig is a rest config that authenticates with a bearer token
// (an OIDC ID token, say) instead of the admin's client certificate.
func (e *Env) BearerConfig(token string) *rest.Config {
	c := rest.AnonymousClientConfig(e.Config)
	c.BearerToken = token
	return c
}

// WaitForToken waits until the API server accepts token: its JWT
// authenticator fetches the issuer's keys after it starts serving.
func (e *Env) WaitForToken(ctx context.Context, token string) (*authenticationv1.SelfSubjectReview, error) {
	cs, err := kubernetes.NewForConfig(e.BearerConfig(token))
	if err != nil {
		return nil, err
	}
	var review *authenticationv1.SelfSubjectReview
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		review, last = cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return last == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("the API server did not accept the token: %w (last: %v)", err, last)
	}
	return review, nil
}
