// Command manager runs kubepim's controllers and admission webhooks.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/controllers"
	"github.com/kubepim/kubepim/internal/authz"
	"github.com/kubepim/kubepim/internal/certs"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/internal/notify"
	"github.com/kubepim/kubepim/internal/safeurl"
	"github.com/kubepim/kubepim/webhooks"
)

var scheme = runtime.NewScheme()

// leaderElectionID names the Lease the replicas compete for.
const leaderElectionID = "kubepim.io"

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(pimv1.AddToScheme(scheme))
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "audit" {
		os.Exit(auditCommand(os.Args[2:]))
	}
	var (
		metricsAddr, probeAddr, pprofAddr, webhookHost, certDir string
		webhookPort                                             int
		leaderElect, enableWebhooks, secureMetrics              bool
		certManagement                                          string
		certOpts                                                certs.Options
		leaderElectionNamespace, namespace                      string
		leaderElectionIdentity                                  string
		mfaClaim, mfaClaimValues, auditSinkURL                  string
		activationRetention, auditRetention                     time.Duration
		leaseDuration, renewDeadline, retryPeriod               time.Duration
		maxConcurrentReconciles                                 int
		kubeAPIQPS                                              float64
		kubeAPIBurst                                            int
		totpMaxFailures                                         int
		totpFailureWindow                                       time.Duration
		accessModeFlag                                          string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address Go's pprof profiles (/debug/pprof/) are served on, for diagnosing CPU and memory; empty disables it. Bind it to loopback: profiles are not authenticated.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas acts at a time.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: --namespace).")
	// How fast a standby takes over bounds how late an expiry can be
	// revoked after the leader dies: at most about lease duration + 2 retry
	// periods (docs/reliability.md). The defaults are controller-runtime's.
	flag.DurationVar(&leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a standby waits after the leader's last renewal before it takes over (whole seconds).")
	flag.DurationVar(&renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps retrying to renew before it gives up leadership (and exits); less than the lease duration.")
	flag.DurationVar(&retryPeriod, "leader-elect-retry-period", 200*time.Millisecond, "How often the leader renews and a standby tries to acquire the lease. 200ms keeps a takeover within the lease duration + 1 s, so expiries stay on time when the leader dies.")
	flag.StringVar(&leaderElectionIdentity, "leader-election-identity", os.Getenv("POD_NAME"), "This replica's name in the leader election Lease (default: $POD_NAME, else host name and a random suffix). A restarted replica with the same name takes its lease back at once instead of waiting out the lease duration; never give two live replicas the same name.")
	flag.BoolVar(&enableWebhooks, "enable-webhooks", true, "Serve the admission webhooks.")
	flag.StringVar(&webhookHost, "webhook-host", "", "Address the webhook server binds to (default: all).")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "Port of the webhook server.")
	flag.StringVar(&certDir, "webhook-cert-dir", "", "Directory holding tls.crt and tls.key for the webhook server (with --cert-management=builtin: where the certificate Secret is mounted).")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS, only to clients the API server authenticates and authorizes (get on the /metrics non-resource URL); false serves plain HTTP to anyone.")
	flag.StringVar(&certManagement, "cert-management", "external", "Who provides the webhook server's certificate: \"external\" (files in --webhook-cert-dir, e.g. a cert-manager Secret, and caBundle set by someone else) or \"builtin\" (the manager keeps a CA and certificate in --cert-secret-name, renews them and injects the CA into the webhook configurations).")
	flag.StringVar(&certOpts.SecretName, "cert-secret-name", certs.DefaultSecretName, "builtin: the Secret in --namespace holding the CA and certificate (must exist, mounted at --webhook-cert-dir).")
	flag.StringVar(&certOpts.ServiceName, "webhook-service-name", certs.DefaultServiceName, "builtin: the webhook Service in --namespace the certificate is valid for.")
	flag.StringVar(&certOpts.MutatingWebhookConfiguration, "mutating-webhook-configuration", certs.DefaultMutatingWebhookConfiguration, "builtin: the MutatingWebhookConfiguration that gets the CA.")
	flag.StringVar(&certOpts.ValidatingWebhookConfiguration, "validating-webhook-configuration", certs.DefaultValidatingWebhookConfiguration, "builtin: the ValidatingWebhookConfiguration that gets the CA.")
	flag.DurationVar(&certOpts.CAValidity, "cert-ca-validity", certs.DefaultCAValidity, "builtin: validity of a new CA.")
	flag.DurationVar(&certOpts.CertValidity, "cert-validity", certs.DefaultCertValidity, "builtin: validity of a new serving certificate.")
	flag.DurationVar(&certOpts.RenewBefore, "cert-renew-before", certs.DefaultRenewBefore, "builtin: renew the CA or the certificate this long before it expires.")
	flag.DurationVar(&certOpts.CheckInterval, "cert-check-interval", certs.DefaultCheckInterval, "builtin: how often to check the certificates (also checked whenever the Secret changes).")
	flag.StringVar(&namespace, "namespace", envOr("POD_NAMESPACE", "kubepim-system"), "Namespace kubepim keeps its Secrets (TOTP enrollments) in.")
	flag.StringVar(&mfaClaim, "mfa-claim", "amr", "User-extra key that carries the identity provider's authentication methods (map the OIDC amr claim to it).")
	flag.StringVar(&mfaClaimValues, "mfa-claim-values", strings.Join(webhooks.DefaultMFAClaimValues, ","), "Comma-separated values of --mfa-claim that prove a second factor.")
	flag.IntVar(&totpMaxFailures, "totp-max-failures", webhooks.DefaultTOTPMaxFailures, "Wrong TOTP codes a user may give within --totp-failure-window; after that every TOTP attempt of that user is refused until the oldest of them leaves the window (server-side dry-runs count too).")
	flag.DurationVar(&totpFailureWindow, "totp-failure-window", webhooks.DefaultTOTPFailureWindow, "The window --totp-max-failures counts wrong TOTP codes in.")
	flag.DurationVar(&activationRetention, "activation-retention", controllers.DefaultActivationRetention, "How long ended ActivationRequests are kept as history before they are deleted.")
	flag.DurationVar(&auditRetention, "audit-retention", controllers.DefaultAuditRetention, "How long AuditEvents are kept before they are pruned, oldest first.")
	flag.StringVar(&auditSinkURL, "audit-sink-url", "", "URL that receives a JSON POST of every audit event, with retries (optional).")
	var notifyOpts controllers.Options
	flag.StringVar(&notifyOpts.UserDirectory, "user-directory", notify.DefaultDirectory, "Where people's email addresses are, in --namespace: configmap/NAME or secret/NAME (keys users and groups, YAML maps).")
	flag.StringVar(&notifyOpts.ConsoleURL, "console-url", "", "The web console's https URL (cmd/console); when set, notifications link to the request's page there.")
	flag.StringVar(&notifyOpts.EmailClaim, "email-claim", notify.DefaultEmailClaim, "User-extra key that carries the requester's email address at request time (map the OIDC email claim to it).")
	flag.DurationVar(&notifyOpts.NotificationMaxAge, "notification-max-age", controllers.DefaultNotificationMaxAge, "Events older than this are not notified (a manager starting on a cluster with history stays quiet about it).")
	flag.DurationVar(&notifyOpts.NotificationRetention, "notification-retention", controllers.DefaultNotificationRetention, "How long delivered and failed Notifications are kept; must exceed --notification-max-age.")
	flag.DurationVar(&notifyOpts.NotificationGiveUp, "notification-give-up", controllers.DefaultNotificationGiveUp, "How long delivery of a notification is retried before it is marked Failed.")
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", -1, "Requests per second the manager sends the API server at most; negative: no client-side limit, the API server's priority and fairness alone paces the manager (controller-runtime's default). A cap slows bulk work: starting a review of 10,000 assignments creates 10,000 AccessReviewItems.")
	flag.IntVar(&kubeAPIBurst, "kube-api-burst", 100, "Requests the manager may send at once above --kube-api-qps (with a cap).")
	flag.StringVar(&accessModeFlag, "access-mode", string(grant.AccessModeBindings), "How activations reach the API server: \"bindings\" (a RoleBinding or ClusterRoleBinding while active; works everywhere) or \"authorizer\" (no binding: the API server asks kubepim's authorization webhook at "+webhooks.AuthorizerPath+" on the webhook server, which needs the API server's --authorization-config; docs/authorizer.md). Active RoleAssignments keep their bindings in both.")
	flag.IntVar(&maxConcurrentReconciles, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles, "How many objects of each kind are reconciled at once (never the same object twice).")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	if leaderElectionNamespace == "" {
		leaderElectionNamespace = namespace
	}
	log := ctrl.Log.WithName("setup")
	if leaderElect && !(retryPeriod > 0 && retryPeriod < renewDeadline && renewDeadline < leaseDuration) {
		log.Error(nil, "leader election needs 0 < --leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration",
			"retryPeriod", retryPeriod, "renewDeadline", renewDeadline, "leaseDuration", leaseDuration)
		os.Exit(2)
	}

	if u, err := url.Parse(notifyOpts.ConsoleURL); notifyOpts.ConsoleURL != "" && (err != nil || u.Scheme != "https" || u.Host == "") {
		log.Error(nil, "--console-url must be an absolute https URL", "value", notifyOpts.ConsoleURL)
		os.Exit(2)
	}
	if auditSinkURL != "" {
		// The URL may hold a token or password: the error names neither.
		if _, err := safeurl.Parse(auditSinkURL); err != nil {
			log.Error(err, "--audit-sink-url")
			os.Exit(2)
		}
	}
	if totpMaxFailures < 1 || totpFailureWindow <= 0 {
		log.Error(nil, "--totp-max-failures must be at least 1 and --totp-failure-window positive",
			"totpMaxFailures", totpMaxFailures, "totpFailureWindow", totpFailureWindow)
		os.Exit(2)
	}

	accessMode, err := grant.ParseAccessMode(accessModeFlag)
	if err != nil {
		log.Error(err, "--access-mode")
		os.Exit(2)
	}
	if accessMode == grant.AccessModeAuthorizer && !enableWebhooks {
		log.Error(nil, "--access-mode=authorizer needs the webhook server (--enable-webhooks)")
		os.Exit(2)
	}

	if certManagement != "external" && certManagement != "builtin" {
		log.Error(fmt.Errorf("--cert-management=%q", certManagement), "want external or builtin")
		os.Exit(2)
	}
	builtinCerts := enableWebhooks && certManagement == "builtin"

	metricsOpts := metricsserver.Options{BindAddress: metricsAddr}
	if secureMetrics {
		// HTTPS with a self-signed certificate controller-runtime makes at
		// start; each scrape is authenticated (TokenReview) and authorized
		// (SubjectAccessReview for get /metrics), so metrics are not open to
		// anything that reaches the pod.
		metricsOpts.SecureServing = true
		metricsOpts.FilterProvider = authz.MetricsFilter
		metricsOpts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }}
	}

	restConfig := ctrl.GetConfigOrDie()
	if kubeAPIQPS >= 0 {
		restConfig.QPS, restConfig.Burst = float32(kubeAPIQPS), kubeAPIBurst
	}
	var lock resourcelock.Interface
	if leaderElect && leaderElectionIdentity != "" {
		var err error
		if lock, err = leaseLock(restConfig, leaderElectionNamespace, leaderElectionIdentity, renewDeadline); err != nil {
			log.Error(err, "unable to set up leader election")
			os.Exit(1)
		}
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                              scheme,
		Cache:                               controllers.CacheOptions(namespace),
		Metrics:                             metricsOpts,
		HealthProbeBindAddress:              probeAddr,
		PprofBindAddress:                    pprofAddr,
		LeaderElection:                      leaderElect,
		LeaderElectionID:                    leaderElectionID,
		LeaderElectionNamespace:             leaderElectionNamespace,
		LeaderElectionResourceLockInterface: lock,
		LeaseDuration:                       &leaseDuration,
		RenewDeadline:                       &renewDeadline,
		RetryPeriod:                         &retryPeriod,
		// Release the lease on a clean shutdown so a standby takes over at
		// once: expiry deadlines must not wait out a lease duration.
		LeaderElectionReleaseOnCancel: true,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    webhookHost,
			Port:    webhookPort,
			CertDir: certDir,
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }},
		}),
	})
	if err != nil {
		log.Error(err, "unable to create the manager")
		os.Exit(1)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controllers.SetupWithManager(ctx, mgr, controllers.Options{
		Clock: clock.RealClock{}, ActivationRetention: activationRetention, AuditRetention: auditRetention, AuditSinkURL: auditSinkURL, Namespace: namespace,
		UserDirectory: notifyOpts.UserDirectory, EmailClaim: notifyOpts.EmailClaim, ConsoleURL: notifyOpts.ConsoleURL,
		NotificationMaxAge: notifyOpts.NotificationMaxAge, NotificationRetention: notifyOpts.NotificationRetention, NotificationGiveUp: notifyOpts.NotificationGiveUp,
		Controller: controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}, AccessMode: accessMode,
	}); err != nil {
		log.Error(err, "unable to set up the controllers")
		os.Exit(1)
	}
	webhookCfg := webhooks.Config{
		Clock:          clock.RealClock{},
		MFAClaim:       mfaClaim,
		MFAClaimValues: strings.Split(mfaClaimValues, ","),
		Namespace:      namespace,
		TOTPLimit:      webhooks.TOTPLimit{MaxFailures: totpMaxFailures, Window: totpFailureWindow},
		AccessMode:     accessMode,
	}
	ready := healthz.Ping
	switch {
	case builtinCerts:
		certOpts.Namespace, certOpts.CertDir = namespace, certDir
		certsReady, err := certs.Setup(mgr, certOpts)
		if err != nil {
			log.Error(err, "unable to set up built-in certificate management")
			os.Exit(1)
		}
		// The webhook server cannot start without its certificate files:
		// register the webhooks (which adds the server to the running
		// manager) once the rotator has them in place. The replica is not
		// ready, so gets no webhook traffic, until then.
		go func() {
			select {
			case <-certsReady:
				log.Info("webhook certificate ready; starting the webhook server")
				if err := webhooks.Setup(mgr, webhookCfg); err != nil {
					log.Error(err, "unable to set up the webhooks")
					os.Exit(1)
				}
			case <-ctx.Done():
			}
		}()
		ready = func(req *http.Request) error {
			select {
			case <-certsReady:
				return mgr.GetWebhookServer().StartedChecker()(req)
			default:
				return errors.New("waiting for the webhook certificate")
			}
		}
	case enableWebhooks:
		if err := webhooks.Setup(mgr, webhookCfg); err != nil {
			log.Error(err, "unable to set up the webhooks")
			os.Exit(1)
		}
		ready = mgr.GetWebhookServer().StartedChecker()
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", ready); err != nil {
		log.Error(err, "unable to set up the ready check")
		os.Exit(1)
	}
	log.Info("starting kubepim")
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "the manager stopped with an error")
		os.Exit(1)
	}
}

// leaseLock is the Lease controller-runtime would use, under a stable
// identity. controller-runtime names each process host_<random>, so a
// replica restarted after a crash (kill -9, OOM) must wait a whole lease
// duration for its own dead predecessor's lease; under its pod name the
// restarted container recognises the lease as its own and renews it at once
// (client-go treats a lease whose holder is its own identity as held). The
// kubelet never runs two containers of one pod at once, so the name is
// never shared by two live replicas.
func leaseLock(cfg *rest.Config, namespace, identity string, renewDeadline time.Duration) (resourcelock.Interface, error) {
	cfg = rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	// As controller-runtime does: one hung request must not outlast the renew deadline.
	cfg.Timeout = max(renewDeadline/2, time.Second)
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	coordination, err := coordinationv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return resourcelock.New(resourcelock.LeasesResourceLock, namespace, leaderElectionID, core, coordination,
		resourcelock.ResourceLockConfig{Identity: identity})
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
