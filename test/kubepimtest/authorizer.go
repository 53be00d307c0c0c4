package kubepimtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// authorizerSetup is what StartWith prepares for Options.Authorizer: the
// webhook server's address and certificate (fixed before kube-apiserver
// starts, as the authorization configuration names them), and the files
// kube-apiserver reads.
type authorizerSetup struct {
	dir           string
	certPEM, key  []byte
	host          string
	port          int
	configFile    string
	kubeconfigRaw []byte
}

// prepareAuthorizer picks the webhook server's port, makes its certificate
// and writes kube-apiserver's authorization configuration: the file
// config/authorizer/authorization-config.yaml under root, with its
// kubeconfig pointing at the manager's webhook server and the manager's
// test identity in place of its ServiceAccount.
func prepareAuthorizer(root string, env *envtest.Environment) (*authorizerSetup, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	certPEM, key, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kubepimtest-authz-")
	if err != nil {
		return nil, err
	}
	a := &authorizerSetup{dir: dir, certPEM: certPEM, key: key, host: "127.0.0.1", port: port}
	kubeconfig := map[string]any{
		"apiVersion": "v1", "kind": "Config",
		"clusters": []any{map[string]any{"name": "kubepim", "cluster": map[string]any{
			"server":                     "https://" + net.JoinHostPort(a.host, strconv.Itoa(port)) + "/authorize",
			"certificate-authority-data": certPEM,
		}}},
		"users":           []any{map[string]any{"name": "kube-apiserver", "user": map[string]any{}}},
		"contexts":        []any{map[string]any{"name": "kubepim", "context": map[string]any{"cluster": "kubepim", "user": "kube-apiserver"}}},
		"current-context": "kubepim",
	}
	if a.kubeconfigRaw, err = yaml.Marshal(kubeconfig); err != nil {
		return nil, err
	}
	kubeconfigFile := filepath.Join(dir, "kubepim-authorizer.kubeconfig")
	if err := os.WriteFile(kubeconfigFile, a.kubeconfigRaw, 0o600); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "authorizer", "authorization-config.yaml"))
	if err != nil {
		return nil, err
	}
	cfg := string(raw)
	for old, replacement := range map[string]string{
		"/etc/kubernetes/kubepim-authorizer.kubeconfig":                   kubeconfigFile,
		"system:serviceaccount:kubepim-system:kubepim-controller-manager": ManagerUser,
	} {
		if !strings.Contains(cfg, old) {
			return nil, fmt.Errorf("authorization-config.yaml no longer contains %q", old)
		}
		cfg = strings.ReplaceAll(cfg, old, replacement)
	}
	a.configFile = filepath.Join(dir, "authorization-config.yaml")
	if err := os.WriteFile(a.configFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	api := env.ControlPlane.GetAPIServer()
	api.Configure().Disable("authorization-mode").Set("authorization-config", a.configFile)
	// envtest keeps a port it is given; the certificate is replaced once
	// envtest has made its own (installWebhookCertificate).
	env.WebhookInstallOptions.LocalServingHost, env.WebhookInstallOptions.LocalServingPort = a.host, port
	return a, nil
}

// installWebhookCertificate makes the manager's webhook server serve the
// certificate the authorization configuration trusts, and has the
// admission webhooks trust it too.
func (e *Env) installWebhookCertificate(a *authorizerSetup) error {
	wh := &e.Env.WebhookInstallOptions
	if err := os.WriteFile(filepath.Join(wh.LocalServingCertDir, "tls.crt"), a.certPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(wh.LocalServingCertDir, "tls.key"), a.key, 0o600); err != nil {
		return err
	}
	wh.LocalServingCAData = a.certPEM
	ctx := context.Background()
	var mutating admissionregistrationv1.MutatingWebhookConfigurationList
	if err := e.Client.List(ctx, &mutating); err != nil {
		return err
	}
	for i := range mutating.Items {
		for j := range mutating.Items[i].Webhooks {
			mutating.Items[i].Webhooks[j].ClientConfig.CABundle = a.certPEM
		}
		if err := e.Client.Update(ctx, &mutating.Items[i]); err != nil {
			return err
		}
	}
	var validating admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := e.Client.List(ctx, &validating); err != nil {
		return err
	}
	for i := range validating.Items {
		for j := range validating.Items[i].Webhooks {
			validating.Items[i].Webhooks[j].ClientConfig.CABundle = a.certPEM
		}
		if err := e.Client.Update(ctx, &validating.Items[i]); err != nil {
			return err
		}
	}
	return nil
}
