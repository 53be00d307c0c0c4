// Package kubepimtest runs kubepim for tests: a real kube-apiserver and etcd
// (envtest) with kubepim's CRDs and webhook configurations installed, and
// kubepim's manager (controllers and webhooks) running on a given clock.
// The controllers' suite and the kubectl plugin's suite share it.
package kubepimtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/controllers"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/test/clockqueue"
	"github.com/kubepim/kubepim/webhooks"
)

// Namespace is where the manager keeps its Secrets in tests.
const Namespace = "kubepim-system"

// ManagerUser is the identity the manager runs as in tests: a user with
// exactly the RBAC that config/rbac/role.yaml (generated from the code's
// kubebuilder markers) gives the manager in a cluster, so a missing
// permission fails a test instead of a user's install.
const ManagerUser = "kubepim-test-manager"

// Env is a running control plane with kubepim's APIs.
type Env struct {
	Env    *envtest.Environment
	Config *rest.Config
	Scheme *runtime.Scheme
	// Client is the cluster admin, uncached.
	Client client.Client
	// ManagerConfig authenticates as ManagerUser.
	ManagerConfig *rest.Config
	// MFAClaim is the user-extra key the manager's webhooks read the
	// identity provider's amr from (--mfa-claim); empty: the default.
	MFAClaim string
	// AccessMode is the manager's --access-mode (empty: bindings).
	AccessMode grant.AccessMode
	// authzDir holds kube-apiserver's authorization configuration files.
	authzDir string
	// ConsoleURL is the manager's --console-url.
	ConsoleURL string
	// ManagerCache is the running manager's cache (set by StartManager):
	// a test that must not move the fake clock before the manager has seen
	// a write waits on it with Eventually instead of sleeping.
	ManagerCache client.Reader
}

// Options change how the control plane starts.
type Options struct {
	// AuthenticationConfig is a structured authentication configuration
	// for kube-apiserver (--authentication-config); see OIDCAuthentication.
	AuthenticationConfig []byte
	// Authorizer starts kube-apiserver with kubepim's structured
	// authorization configuration (config/authorizer: Node, RBAC, then
	// kubepim's webhook at the manager's webhook server), for a manager in
	// --access-mode=authorizer (set Env.AccessMode).
	Authorizer bool
}

// Start starts kube-apiserver and etcd (from KUBEBUILDER_ASSETS) with the
// CRDs and webhook configurations of the repository at root.
func Start(root string) (*Env, error) { return StartWith(root, Options{}) }

// StartWith starts the control plane as Start does, with options.
func StartWith(root string, o Options) (*Env, error) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(pimv1.AddToScheme(scheme))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// The webhooks are served by the manager and called by the API
		// server for real.
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			Paths: []string{filepath.Join(root, "config", "webhook", "manifests.yaml")},
		},
	}
	var authnDir string
	if o.AuthenticationConfig != nil {
		dir, err := os.MkdirTemp("", "kubepimtest-authn-")
		if err != nil {
			return nil, err
		}
		authnDir = dir
		file := filepath.Join(dir, "authentication-config.yaml")
		if err := os.WriteFile(file, o.AuthenticationConfig, 0o600); err != nil {
			return nil, err
		}
		env.ControlPlane.GetAPIServer().Configure().Set("authentication-config", file)
	}
	var authz *authorizerSetup
	if o.Authorizer {
		var err error
		if authz, err = prepareAuthorizer(root, env); err != nil {
			return nil, err
		}
	}
	cfg, err := env.Start()
	if authnDir != "" {
		// kube-apiserver has read it.
		_ = os.RemoveAll(authnDir)
	}
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	e := &Env{Env: env, Config: cfg, Scheme: scheme, Client: c}
	if authz != nil {
		e.authzDir = authz.dir
		if err := e.installWebhookCertificate(authz); err != nil {
			return nil, errors.Join(err, env.Stop())
		}
	}
	if err := e.installManagerIdentity(root); err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	if err := e.installUserRoles(root); err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	return e, nil
}

// The ClusterRoles kubepim ships for people (config/rbac/*_role.yaml), with
// the names config/default gives them. Tests bind them to play a hostile
// user with exactly the power an installation hands out.
const (
	RoleRequester = "kubepim-requester"
	RoleApprover  = "kubepim-approver"
	RoleAdmin     = "kubepim-admin"
	RoleAuditor   = "kubepim-auditor"
)

// installUserRoles creates the shipped user ClusterRoles, as they are in
// config/rbac.
func (e *Env) installUserRoles(root string) error {
	for _, name := range []string{"requester", "approver", "admin", "auditor"} {
		raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", name+"_role.yaml"))
		if err != nil {
			return err
		}
		role := &rbacv1.ClusterRole{}
		if err := yaml.Unmarshal(raw, role); err != nil {
			return err
		}
		role.Name = "kubepim-" + name
		if err := e.Client.Create(context.Background(), role); err != nil {
			return err
		}
	}
	return nil
}

// Bind binds a ClusterRole (one of the Role* constants, say) to a User or
// Group cluster-wide, and waits until the API server's authorizer sees it.
// It returns a function that removes the binding.
func (e *Env) Bind(clusterRole, kind, name string) (func(), error) {
	ctx := context.Background()
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "test-" + clusterRole + "-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{Kind: kind, APIGroup: rbacv1.GroupName, Name: name}},
	}
	if err := e.Client.Create(ctx, crb); err != nil {
		return nil, err
	}
	remove := func() { _ = e.Client.Delete(context.Background(), crb) }
	role := &rbacv1.ClusterRole{}
	if err := e.Client.Get(ctx, client.ObjectKey{Name: clusterRole}, role); err != nil || len(role.Rules) == 0 || len(role.Rules[0].Verbs) == 0 {
		return remove, err
	}
	rule := role.Rules[0]
	attrs := authorizationv1.ResourceAttributes{Verb: rule.Verbs[0]}
	if len(rule.APIGroups) > 0 {
		attrs.Group = rule.APIGroups[0]
	}
	if len(rule.Resources) > 0 {
		attrs.Resource = rule.Resources[0]
	}
	spec := authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: &attrs}
	if kind == rbacv1.GroupKind {
		spec.User, spec.Groups = "kubepimtest-probe", []string{name}
	} else {
		spec.User = name
	}
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: spec}
		if err := e.Client.Create(ctx, sar); err != nil {
			return false, err
		}
		return sar.Status.Allowed, nil
	})
	return remove, err
}

// installManagerIdentity makes ManagerUser and gives it the manager's
// generated RBAC: the ClusterRole cluster-wide and the Role in Namespace.
func (e *Env) installManagerIdentity(root string) error {
	ctx := context.Background()
	user, err := e.Env.AddUser(envtest.User{Name: ManagerUser}, nil)
	if err != nil {
		return err
	}
	e.ManagerConfig = user.Config()
	// As controller-runtime's GetConfig does for the real manager: client-go's
	// default of 5 requests a second would throttle the tests' manager.
	e.ManagerConfig.QPS, e.ManagerConfig.Burst = 200, 400
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	if err != nil {
		return err
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: ManagerUser}}
	for _, doc := range strings.Split(string(raw), "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return err
		}
		switch head.Kind {
		case "ClusterRole":
			role := &rbacv1.ClusterRole{}
			if err := yaml.Unmarshal([]byte(doc), role); err != nil {
				return err
			}
			if err := e.Client.Create(ctx, role); err != nil {
				return err
			}
			if err := e.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}}); err != nil {
				return err
			}
		case "Role":
			role := &rbacv1.Role{}
			if err := yaml.Unmarshal([]byte(doc), role); err != nil {
				return err
			}
			role.Namespace = Namespace
			if err := e.Client.Create(ctx, role); err != nil {
				return err
			}
			if err := e.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: Namespace}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}}); err != nil {
				return err
			}
		}
	}
	// RBAC reaches the authorizer's cache a moment later; a manager started
	// before would begin with refusals and back off.
	return wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, attrs := range []authorizationv1.ResourceAttributes{
			{Group: pimv1.GroupVersion.Group, Resource: "roleassignments", Verb: "list"},
			{Resource: "secrets", Verb: "create", Namespace: Namespace},
		} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: ManagerUser, ResourceAttributes: &attrs}}
			if err := e.Client.Create(ctx, sar); err != nil || !sar.Status.Allowed {
				return false, err
			}
		}
		return true, nil
	})
}

// Stop stops the control plane.
func (e *Env) Stop() error {
	err := e.Env.Stop()
	if e.authzDir != "" {
		_ = os.RemoveAll(e.authzDir)
	}
	return err
}

// StartManager runs kubepim's manager on clk and returns a function that
// stops it and waits until it has stopped. With a fake clock, requeue delays
// follow the fake clock.
func (e *Env) StartManager(clk clock.WithTicker) (func(), error) {
	wh := e.Env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(e.ManagerConfig, ctrl.Options{
		Scheme:  e.Scheme,
		Cache:   controllers.CacheOptions(Namespace),
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir,
		}),
		// Tests restart the manager; controller names repeat in one process.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts := controllers.Options{Clock: clk, Namespace: Namespace, AccessMode: e.AccessMode, ConsoleURL: e.ConsoleURL}
	if fc, ok := clk.(*clocktesting.FakeClock); ok {
		opts.Controller = controller.Options{NewQueue: clockqueue.New(fc)}
	}
	if err := controllers.SetupWithManager(ctx, mgr, opts); err != nil {
		cancel()
		return nil, err
	}
	if err := webhooks.Setup(mgr, webhooks.Config{Clock: clk, Namespace: Namespace, MFAClaim: e.MFAClaim, AccessMode: e.AccessMode}); err != nil {
		cancel()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stop := func() {
		cancel()
		<-done
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		stop()
		return nil, errors.New("the manager's cache did not sync")
	}
	e.ManagerCache = mgr.GetCache()
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return mgr.GetWebhookServer().StartedChecker()(nil) == nil, nil
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("the webhook server did not start: %w", err)
	}
	return stop, nil
}

// ConfigAs returns a rest config that acts as user, with groups and extra
// claims, by impersonation: the API server authenticates the admin and then
// treats every request as that user's, webhooks and authorization included.
func (e *Env) ConfigAs(user string, groups []string, extra map[string][]string) *rest.Config {
	c := rest.CopyConfig(e.Config)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups, Extra: extra}
	return c
}
