package webhooks

import (
	"context"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/authz"
	"github.com/kubepim/kubepim/internal/grant"
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
	// AccessMode is --access-mode: in authorizer mode the server also
	// answers the API server's SubjectAccessReviews at AuthorizerPath.
	AccessMode grant.AccessMode
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

// VerbManage on activationrequests.kubepim.io lets someone other than the
// requester change a request's metadata; on rolesettings.kubepim.io it
// lets a GitOps pipeline or a platform team weaken a role's policy without
// being able to bind the role; on accessreviews.kubepim.io it is needed to
// create a review or change what it decides with (a reviewer needs only
// patch, to add decision annotations).
const VerbManage = "manage"

// Setup registers every kubepim admission webhook with the manager, and
// in authorizer mode the authorization webhook.
func Setup(mgr ctrl.Manager, cfg Config) error {
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.MFAClaim == "" {
		cfg.MFAClaim = "amr"
	}
	if len(cfg.MFAClaimValues) == 0 {
		cfg.MFAClaimValues = DefaultMFAClaimValues
	}
	direct := directClient(mgr)
	base := handlerBase{
		cache:  mgr.GetClient(),
		direct: direct,
		allowed: func(ctx context.Context, user *pimv1.UserInfo, attrs authz.Attributes) (bool, error) {
			return authz.Allowed(ctx, direct, user, attrs)
		},
		cfg: cfg,
	}
	totp := &mfa.TOTPVerifier{Client: direct, Namespace: cfg.Namespace, Clock: cfg.Clock, Limit: cfg.TOTPLimit.OrDefault()}
	keys := &approval.Keys{Client: direct, Namespace: cfg.Namespace}
	decoder := admission.NewDecoder(mgr.GetScheme())
	server := mgr.GetWebhookServer()
	server.Register("/mutate-kubepim-io-v1alpha1-activationrequest", mutating(decoder, (&activationMutator{handlerBase: base, totp: totp, keys: keys}).mutate))
	server.Register("/validate-kubepim-io-v1alpha1-activationrequest", validating(decoder, (&activationValidator{handlerBase: base, keys: keys}).validate))
	server.Register("/mutate-kubepim-io-v1alpha1-roleassignment", mutating(decoder, mutateAssignment))
	server.Register("/validate-kubepim-io-v1alpha1-roleassignment", validating(decoder, (&assignmentValidator{handlerBase: base}).validate))
	server.Register("/mutate-kubepim-io-v1alpha1-accessreview", mutating(decoder, (&reviewMutator{handlerBase: base}).mutate))
	server.Register("/validate-kubepim-io-v1alpha1-accessreview", validating(decoder, (&reviewGuard{handlerBase: base}).validate))
	server.Register("/mutate-kubepim-io-v1alpha1-rolesetting", mutating(decoder, stampSetting))
	server.Register("/validate-kubepim-io-v1alpha1-rolesetting", validating(decoder, (&settingGuard{handlerBase: base}).validate))
	// The audit download shares the webhook server's TLS listener.
	server.Register("/audit", &audit.ExportHandler{Client: direct, Clock: cfg.Clock})
	self := &selfIdentity{client: direct}
	server.Register("/mutate-kubepim-io-v1alpha1-accessreviewitem", mutating(decoder, (&itemDecider{handlerBase: base, keys: keys}).mutate))
	server.Register("/validate-kubepim-io-v1alpha1-accessreviewitem", validating(decoder, (&itemGuard{handlerBase: base, keys: keys, self: self.username}).validate))
	server.Register("/validate-kubepim-io-v1alpha1-auditevent", validating(decoder, (&auditGuard{self: self.username}).validate))
	if cfg.AccessMode == grant.AccessModeAuthorizer {
		// The roles' informers start with the cache (or at once, when the
		// manager already runs), not at the first request.
		for _, obj := range []client.Object{&rbacv1.ClusterRole{}, &rbacv1.Role{}} {
			if _, err := mgr.GetCache().GetInformer(context.Background(), obj, cache.BlockUntilSynced(false)); err != nil {
				return err
			}
		}
		usage := newUsageRecorder(mgr.GetClient(), cfg.Clock, mgr.GetLogger().WithName("authorizer-usage"))
		if err := mgr.Add(usage); err != nil {
			return err
		}
		server.Register(AuthorizerPath, &accessAuthorizer{cache: mgr.GetClient(), clock: cfg.Clock, log: mgr.GetLogger().WithName("authorizer"), usage: usage})
	}
	return nil
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

// authorizer answers whether user may do what attrs say (in the manager, a
// SubjectAccessReview: authz.Allowed).
type authorizer func(ctx context.Context, user *pimv1.UserInfo, attrs authz.Attributes) (bool, error)

// handlerBase is what the webhooks that look things up share.
type handlerBase struct {
	// cache reads kubepim objects through the manager's indexed cache.
	cache client.Reader
	// direct reads the API server: roles, which are not cached.
	direct  client.Reader
	allowed authorizer
	cfg     Config
}

// mfaClaimed reports whether the user's identity provider says they used
// a second factor.
func (cfg Config) mfaClaimed(user *pimv1.UserInfo) bool {
	return policy.MFAClaimed(user.Extra, cfg.MFAClaim, cfg.MFAClaimValues)
}
