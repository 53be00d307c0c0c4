// Package chart_test applies what `helm template charts/kubepim` renders to a
// real kube-apiserver and etcd (envtest), for the chart's main switches, and
// runs the built-in certificate management against the objects the chart
// made, with the RBAC the chart gives the manager's ServiceAccount.
//
// It needs helm: $HELM (make test sets it; `make helm` builds it into bin/),
// else helm on PATH. Without either it fails, rather than pass unseen.
package chart_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

var (
	root      string
	helm      string
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8sClient client.Client
	scheme    = runtime.NewScheme()
	ctx       = context.Background()
)

func TestChart(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Helm chart Suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))
	var err error
	root, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())

	helm = os.Getenv("HELM")
	if helm == "" {
		helm, err = exec.LookPath("helm")
		Expect(err).NotTo(HaveOccurred(), "this suite needs helm: run it with `make test`, or set HELM (`make helm` builds bin/helm-<version>)")
	}

	// A bare API server: the chart brings kubepim's CRDs itself. The
	// Prometheus Operator's and cert-manager's CRDs are stubbed (schemaless)
	// so that the ServiceMonitor, Certificate and Issuer the chart renders
	// are applied too, not skipped.
	testEnv = &envtest.Environment{CRDs: stubCRDs()}
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
