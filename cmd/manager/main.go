// Command manager runs kubepim's controllers and admission webhooks.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/controllers"
	"github.com/kubepim/kubepim/controllers/notify"
	"github.com/kubepim/kubepim/webhooks"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(pimv1.AddToScheme(scheme))
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "audit" {
		os.Exit(auditCommand(os.Args[2:]))
	}
	var (
		metricsAddr, probeAddr, webhookHost, certDir string
		webhookPort                                  int
		leaderElect, enableWebhooks                  bool
		leaderElectionNamespace, namespace           string
		mfaClaim, mfaClaimValues, auditSinkURL       string
		activationRetention, auditRetention          time.Duration
		leaseDuration, renewDeadline, retryPeriod    time.Duration
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that only one of several replicas acts at a time.")
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: --namespace).")
	// How fast a standby takes over bounds how late an expiry can be
	// revoked after the leader dies: at most about lease duration + 2 retry
	// periods (docs/reliability.md). The defaults are controller-runtime's.
	flag.DurationVar(&leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a standby waits after the leader's last renewal before it takes over (whole seconds).")
	flag.DurationVar(&renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps retrying to renew before it gives up leadership (and exits); less than the lease duration.")
	flag.DurationVar(&retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often the leader renews and a standby tries to acquire the lease.")
	flag.BoolVar(&enableWebhooks, "enable-webhooks", true, "Serve the admission webhooks.")
	flag.StringVar(&webhookHost, "webhook-host", "", "Address the webhook server binds to (default: all).")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "Port of the webhook server.")
	flag.StringVar(&certDir, "webhook-cert-dir", "", "Directory holding tls.crt and tls.key for the webhook server.")
	flag.StringVar(&namespace, "namespace", envOr("POD_NAMESPACE", "kubepim-system"), "Namespace kubepim keeps its Secrets (TOTP enrollments) in.")
	flag.StringVar(&mfaClaim, "mfa-claim", "amr", "User-extra key that carries the identity provider's authentication methods (map the OIDC amr claim to it).")
	flag.StringVar(&mfaClaimValues, "mfa-claim-values", strings.Join(webhooks.DefaultMFAClaimValues, ","), "Comma-separated values of --mfa-claim that prove a second factor.")
	flag.DurationVar(&activationRetention, "activation-retention", controllers.DefaultActivationRetention, "How long ended ActivationRequests are kept as history before they are deleted.")
	flag.DurationVar(&auditRetention, "audit-retention", controllers.DefaultAuditRetention, "How long AuditEvents are kept before they are pruned, oldest first.")
	flag.StringVar(&auditSinkURL, "audit-sink-url", "", "URL that receives a JSON POST of every audit event, with retries (optional).")
	var notifyOpts controllers.Options
	flag.StringVar(&notifyOpts.UserDirectory, "user-directory", notify.DefaultDirectory, "Where people's email addresses are, in --namespace: configmap/NAME or secret/NAME (keys users and groups, YAML maps).")
	flag.StringVar(&notifyOpts.EmailClaim, "email-claim", notify.DefaultEmailClaim, "User-extra key that carries the requester's email address at request time (map the OIDC email claim to it).")
	flag.DurationVar(&notifyOpts.NotificationMaxAge, "notification-max-age", controllers.DefaultNotificationMaxAge, "Events older than this are not notified (a manager starting on a cluster with history stays quiet about it).")
	flag.DurationVar(&notifyOpts.NotificationRetention, "notification-retention", controllers.DefaultNotificationRetention, "How long delivered and failed Notifications are kept; must exceed --notification-max-age.")
	flag.DurationVar(&notifyOpts.NotificationGiveUp, "notification-give-up", controllers.DefaultNotificationGiveUp, "How long delivery of a notification is retried before it is marked Failed.")
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

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controllers.CacheOptions(),
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "kubepim.io",
		LeaderElectionNamespace: leaderElectionNamespace,
		LeaseDuration:           &leaseDuration,
		RenewDeadline:           &renewDeadline,
		RetryPeriod:             &retryPeriod,
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
		UserDirectory: notifyOpts.UserDirectory, EmailClaim: notifyOpts.EmailClaim,
		NotificationMaxAge: notifyOpts.NotificationMaxAge, NotificationRetention: notifyOpts.NotificationRetention, NotificationGiveUp: notifyOpts.NotificationGiveUp,
	}); err != nil {
		log.Error(err, "unable to set up the controllers")
		os.Exit(1)
	}
	if enableWebhooks {
		webhooks.Setup(mgr, webhooks.Config{
			Clock:          clock.RealClock{},
			MFAClaim:       mfaClaim,
			MFAClaimValues: strings.Split(mfaClaimValues, ","),
			Namespace:      namespace,
		})
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up the ready check")
		os.Exit(1)
	}
	log.Info("starting kubepim")
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "the manager stopped with an error")
		os.Exit(1)
	}
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
