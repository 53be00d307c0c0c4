package webhooks

import (
	"encoding/json"
	"net/http"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

// Config is what the webhooks need from the manager.
type Config struct {
	// Clock is the source of "now".
	Clock clock.PassiveClock
	// MFAClaim is the user-extra key that carries the identity provider's
	// authentication methods (OIDC "amr").
	MFAClaim string
	// MFAClaimValues are the values of MFAClaim that prove a second factor.
	MFAClaimValues []string
	// Namespace holds kubepim's Secrets (TOTP enrollments).
	Namespace string
	// TOTPLimit bounds wrong TOTP codes per user (--totp-max-failures,
	// --totp-failure-window; policy defaults when zero).
	TOTPLimit TOTPLimit
}

// TOTPLimit bounds wrong TOTP codes per user; see policy.TOTPLimit.
type TOTPLimit = policy.TOTPLimit

// Defaults of the TOTP failure limit.
const (
	DefaultTOTPMaxFailures   = policy.DefaultTOTPMaxFailures
	DefaultTOTPFailureWindow = policy.DefaultTOTPFailureWindow
)

// DefaultMFAClaimValues are the RFC 8176 "amr" values that mean a second
// factor was used.
var DefaultMFAClaimValues = []string{"mfa", "otp", "hwk", "swk"}

// Setup registers every kubepim admission webhook with the manager.
func Setup(mgr ctrl.Manager, cfg Config) {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.MFAClaim == "" {
		cfg.MFAClaim = "amr"
	}
	if len(cfg.MFAClaimValues) == 0 {
		cfg.MFAClaimValues = DefaultMFAClaimValues
	}
	base := handlerBase{
		cache:   mgr.GetClient(),
		direct:  directClient(mgr),
		decoder: admission.NewDecoder(mgr.GetScheme()),
		cfg:     cfg,
	}
	totp := &mfa.TOTPVerifier{Client: base.direct, Namespace: cfg.Namespace, Clock: cfg.Clock, Limit: cfg.TOTPLimit.OrDefault()}
	keys := &approval.Keys{Client: base.direct, Namespace: cfg.Namespace}
	server := mgr.GetWebhookServer()
	server.Register("/mutate-kubepim-io-v1alpha1-activationrequest", &webhook.Admission{Handler: &activationMutator{handlerBase: base, totp: totp, keys: keys}})
	server.Register("/validate-kubepim-io-v1alpha1-activationrequest", &webhook.Admission{Handler: &activationValidator{handlerBase: base, keys: keys}})
	server.Register("/mutate-kubepim-io-v1alpha1-roleassignment", &webhook.Admission{Handler: &assignmentMutator{handlerBase: base}})
	server.Register("/validate-kubepim-io-v1alpha1-roleassignment", &webhook.Admission{Handler: &assignmentValidator{handlerBase: base}})
	server.Register("/mutate-kubepim-io-v1alpha1-accessreview", &webhook.Admission{Handler: &reviewMutator{handlerBase: base, keys: keys}})
	server.Register("/validate-kubepim-io-v1alpha1-accessreview", &webhook.Admission{Handler: &reviewGuard{handlerBase: base, keys: keys}})
	server.Register("/mutate-kubepim-io-v1alpha1-rolesetting", &webhook.Admission{Handler: &settingStamper{handlerBase: base}})
	server.Register("/validate-kubepim-io-v1alpha1-rolesetting", &webhook.Admission{Handler: &settingGuard{handlerBase: base}})
	// The audit download shares the webhook server's TLS listener.
	server.Register("/audit", &audit.ExportHandler{Client: base.direct})
	server.Register("/validate-kubepim-io-v1alpha1-auditevent", &webhook.Admission{Handler: &auditGuard{handlerBase: base, self: &selfIdentity{client: base.direct}}})
}

// directClient writes and reads straight to the API server (Secrets are
// not cached: the manager must not hold every Secret of the cluster).
func directClient(mgr ctrl.Manager) client.Client {
	c, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
	if err != nil {
		panic(err)
	}
	return c
}

type handlerBase struct {
	// cache reads kubepim objects through the manager's indexed cache.
	cache   client.Client
	direct  client.Client
	decoder admission.Decoder
	cfg     Config
}

// userInfo converts the authenticated user of an admission request.
func userInfo(u authenticationv1.UserInfo) *pimv1.UserInfo {
	info := &pimv1.UserInfo{Username: u.Username, UID: u.UID, Groups: slices.Clone(u.Groups)}
	if len(u.Extra) > 0 {
		info.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			info.Extra[k] = slices.Clone(v)
		}
	}
	return info
}

// patched answers with the JSON patch from the request's object to obj.
func patched(req admission.Request, obj any) admission.Response {
	raw, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
}
