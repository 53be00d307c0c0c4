// Package certs manages the webhook server's certificate inside the manager
// ("built-in" certificate management, --cert-management=builtin): a CA and a
// serving certificate kept in a Secret, renewed before they expire, and the
// CA injected into kubepim's webhook configurations as caBundle.
//
// The work is done by open-policy-agent/cert-controller's rotator, which
// runs on every replica (not only the leader): each replica serves
// webhooks, so each must find a valid certificate at start, and whichever
// replica notices an expiring certificate first renews it; the others see
// the Secret change and converge (writes race on resourceVersion, the loser
// retries and finds a valid certificate).
//
// The Secret is mounted into the pod at the webhook server's certificate
// directory; the kubelet copies new data into the volume within about a
// minute, and the webhook server's certificate watcher reloads it. The
// webhook server is therefore started only once the files are there
// (Ready): controller-runtime's server fails at start without them.
package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Default names: those of config/default (namespace kubepim-system, prefix
// kubepim-) and of the Helm chart installed as release "kubepim".
const (
	DefaultSecretName                     = "kubepim-webhook-server-cert"
	DefaultServiceName                    = "kubepim-webhook-service"
	DefaultMutatingWebhookConfiguration   = "kubepim-mutating-webhook-configuration"
	DefaultValidatingWebhookConfiguration = "kubepim-validating-webhook-configuration"
)

// Defaults: a 10-year CA, a 1-year serving certificate, both renewed 90 days
// before they expire, checked twice a day (and whenever the Secret changes).
const (
	DefaultCAValidity    = 10 * 365 * 24 * time.Hour
	DefaultCertValidity  = 365 * 24 * time.Hour
	DefaultRenewBefore   = 90 * 24 * time.Hour
	DefaultCheckInterval = 12 * time.Hour
)

// Options name what the rotator manages.
type Options struct {
	// Namespace and SecretName: the Secret holding ca.crt, ca.key, tls.crt
	// and tls.key. It must exist (the chart and config/ create it empty):
	// the rotator updates it, and the manager is not allowed to create
	// arbitrary Secrets under that name.
	Namespace, SecretName string
	// ServiceName is the webhook Service; the certificate is valid for
	// <service>.<namespace>.svc and .svc.cluster.local.
	ServiceName string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration get
	// the CA as caBundle of every webhook they list.
	MutatingWebhookConfiguration, ValidatingWebhookConfiguration string
	// CertDir is where the Secret is mounted (the webhook server's
	// certificate directory).
	CertDir string
	// Validity, renewal and check period; zero means the default.
	CAValidity, CertValidity, RenewBefore, CheckInterval time.Duration
	// ControllerName defaults to kubepim-cert-rotator. Controller names are
	// unique per process: tests that run several replicas in one process
	// give each its own.
	ControllerName string
}

func (o *Options) defaults() error {
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.RenewBefore == 0 {
		o.RenewBefore = DefaultRenewBefore
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.ControllerName == "" {
		o.ControllerName = "kubepim-cert-rotator"
	}
	var missing []string
	for name, v := range map[string]string{
		"namespace": o.Namespace, "secret name": o.SecretName, "service name": o.ServiceName,
		"mutating webhook configuration":   o.MutatingWebhookConfiguration,
		"validating webhook configuration": o.ValidatingWebhookConfiguration, "certificate directory": o.CertDir,
	} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("built-in certificate management needs: %v", missing)
	}
	// A certificate renewed only when it is about to expire from the start
	// would be renewed at every check, and one renewed less often than it is
	// checked could expire between two checks.
	if o.RenewBefore >= o.CertValidity || o.RenewBefore >= o.CAValidity {
		return errors.New("the renewal period must be shorter than the certificates' validity")
	}
	if o.CheckInterval >= o.RenewBefore {
		return errors.New("the check interval must be shorter than the renewal period")
	}
	return nil
}

// DNSNames are the names the serving certificate is valid for.
func (o Options) DNSNames() []string {
	svc := fmt.Sprintf("%s.%s.svc", o.ServiceName, o.Namespace)
	return []string{svc, svc + ".cluster.local"}
}

// Setup adds the rotator to mgr. The returned channel is closed once the
// certificate is in CertDir and the CA is in both webhook configurations:
// start the webhook server (register the webhooks) only then.
func Setup(mgr manager.Manager, o Options) (<-chan struct{}, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	names := o.DNSNames()
	err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:      types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName},
		CertDir:        o.CertDir,
		CAName:         "kubepim-webhook-ca",
		CAOrganization: "kubepim",
		DNSName:        names[0],
		ExtraDNSNames:  names[1:],
		IsReady:        ready,
		Webhooks: []rotator.WebhookInfo{
			{Name: o.MutatingWebhookConfiguration, Type: rotator.Mutating},
			{Name: o.ValidatingWebhookConfiguration, Type: rotator.Validating},
		},
		FieldOwner: "kubepim-cert-rotator",
		// Every replica serves webhooks, so every replica keeps the
		// certificate valid, leader or not.
		RequireLeaderElection:  false,
		CaCertDuration:         o.CAValidity,
		ServerCertDuration:     o.CertValidity,
		LookaheadInterval:      o.RenewBefore,
		RotationCheckFrequency: o.CheckInterval,
		ExtKeyUsages:           &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// Wait for the mounted files before injecting the CA, so the API
		// server is not told to trust a CA whose certificate no replica
		// serves yet.
		EnableReadinessCheck: true,
		ControllerName:       o.ControllerName,
	})
	if err != nil {
		return nil, err
	}
	return ready, nil
}
