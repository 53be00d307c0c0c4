// Package kubepimtest runs kubepim for tests: a real kube-apiserver and etcd
// (envtest) with kubepim's CRDs and webhook configurations installed, and
// kubepim's manager (controllers and webhooks) running on a given clock.
// The controllers' suite and the kubectl plugin's suite share it.
package kubepimtest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

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
	"github.com/kubepim/kubepim/controllers/clockqueue"
	"github.com/kubepim/kubepim/webhooks"
)

// Namespace is where the manager keeps its Secrets in tests.
const Namespace = "kubepim-system"

// Env is a running control plane with kubepim's APIs.
type Env struct {
	Env    *envtest.Environment
	Config *rest.Config
	Scheme *runtime.Scheme
	// Client is the cluster admin, uncached.
	Client client.Client
}

// Start starts kube-apiserver and etcd (from KUBEBUILDER_ASSETS) with the
// CRDs and webhook configurations of the repository at root.
func Start(root string) (*Env, error) {
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
	cfg, err := env.Start()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	return &Env{Env: env, Config: cfg, Scheme: scheme, Client: c}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.Env.Stop() }

// StartManager runs kubepim's manager on clk and returns a function that
// stops it and waits until it has stopped. With a fake clock, requeue delays
// follow the fake clock.
func (e *Env) StartManager(clk clock.WithTicker) (func(), error) {
	wh := e.Env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:  e.Scheme,
		Cache:   controllers.CacheOptions(),
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
	opts := controllers.Options{Clock: clk, Namespace: Namespace}
	if fc, ok := clk.(*clocktesting.FakeClock); ok {
		opts.Controller = controller.Options{NewQueue: clockqueue.New(fc)}
	}
	if err := controllers.SetupWithManager(ctx, mgr, opts); err != nil {
		cancel()
		return nil, err
	}
	webhooks.Setup(mgr, webhooks.Config{Clock: clk, Namespace: Namespace})
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
