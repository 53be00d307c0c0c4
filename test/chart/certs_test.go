package chart_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kubepim/kubepim/internal/certs"
)

// optionsFromChart reads the built-in certificate settings from the flags
// the chart passes to the manager, so that the test runs the rotator exactly
// as the chart configures it.
func optionsFromChart(r release) certs.Options {
	GinkgoHelper()
	c := deployment(r).Spec.Template.Spec.Containers[0]
	o := certs.Options{Namespace: r.namespace}
	dur := func(v string) time.Duration {
		d, err := time.ParseDuration(v)
		Expect(err).NotTo(HaveOccurred())
		return d
	}
	for _, a := range c.Args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "--cert-management":
			Expect(v).To(Equal("builtin"))
		case "--cert-secret-name":
			o.SecretName = v
		case "--webhook-service-name":
			o.ServiceName = v
		case "--mutating-webhook-configuration":
			o.MutatingWebhookConfiguration = v
		case "--validating-webhook-configuration":
			o.ValidatingWebhookConfiguration = v
		case "--cert-ca-validity":
			o.CAValidity = dur(v)
		case "--cert-validity":
			o.CertValidity = dur(v)
		case "--cert-renew-before":
			o.RenewBefore = dur(v)
		case "--cert-check-interval":
			o.CheckInterval = dur(v)
		default:
			Expect(k).NotTo(HavePrefix("--cert-"), "a certificate flag this test does not know")
		}
	}
	Expect(c.VolumeMounts).To(ContainElement(HaveField("MountPath", "/tmp/k8s-webhook-server/serving-certs")))
	return o
}

// replica is one manager replica running only the built-in certificate
// management, as the chart's ServiceAccount.
type replica struct {
	dir   string
	ready <-chan struct{}
	stop  func()
}

// startReplica runs the rotator as the chart's ServiceAccount, and stands in
// for the kubelet, which copies the Secret into the pod's volume.
func startReplica(r release, o certs.Options, n int) *replica {
	GinkgoHelper()
	sa := rest.CopyConfig(cfg)
	sa.Impersonate = rest.ImpersonationConfig{
		UserName: fmt.Sprintf("system:serviceaccount:%s:%s-controller-manager", r.namespace, r.name),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + r.namespace, "system:authenticated"},
	}
	mgr, err := ctrl.NewManager(sa, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())
	// Not GinkgoT().TempDir(): the replicas outlive the spec that starts them.
	o.CertDir, err = os.MkdirTemp("", "kubepim-certs-")
	Expect(err).NotTo(HaveOccurred())
	o.ControllerName = fmt.Sprintf("cert-rotator-%d", n)
	ready, err := certs.Setup(mgr, o)
	Expect(err).NotTo(HaveOccurred())
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { defer GinkgoRecover(); done <- mgr.Start(mctx) }()
	go func() {
		defer GinkgoRecover()
		done <- kubelet(mctx, types.NamespacedName{Namespace: r.namespace, Name: o.SecretName}, o.CertDir)
	}()
	return &replica{dir: o.CertDir, ready: ready, stop: func() {
		cancel()
		Expect(<-done).To(Succeed())
		Expect(<-done).To(Succeed())
		Expect(os.RemoveAll(o.CertDir)).To(Succeed())
	}}
}

// kubelet copies the Secret's data into dir whenever it changes, as the
// kubelet does for a Secret volume (there is no kubelet in envtest).
func kubelet(ctx context.Context, key types.NamespacedName, dir string) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s := &corev1.Secret{}
		if err := k8sClient.Get(ctx, key, s); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for name, data := range s.Data {
			old, _ := os.ReadFile(filepath.Join(dir, name))
			if !bytes.Equal(old, data) {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					return err
				}
			}
		}
	}
}

func parseCert(pemBytes []byte) *x509.Certificate {
	GinkgoHelper()
	b, _ := pem.Decode(pemBytes)
	Expect(b).NotTo(BeNil())
	c, err := x509.ParseCertificate(b.Bytes)
	Expect(err).NotTo(HaveOccurred())
	return c
}

// issue makes a key pair and certificate valid from now-1h for validity;
// self-signed (a CA) when parent is nil.
func issue(cn string, dnsNames []string, validity time.Duration, parent *x509.Certificate, parentKey *rsa.PrivateKey) (certPEM, keyPEM []byte) {
	GinkgoHelper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dnsNames,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, BasicConstraintsValid: true,
	}
	if parent == nil {
		tmpl.IsCA = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// certSpecs run inside the chart suite's ordered container, after the
// default release has been applied.
func certSpecs() {
	// The chart's default release, applied by the specs before.
	def := release{name: "kubepim", namespace: "kubepim-system"}
	var (
		o        certs.Options
		replicas []*replica
		key      types.NamespacedName
	)
	secret := func(g Gomega) *corev1.Secret {
		s := &corev1.Secret{}
		g.Expect(k8sClient.Get(ctx, key, s)).To(Succeed())
		return s
	}
	// expectServing checks what the API server needs to call the webhooks:
	// every webhook trusts the Secret's CA, the certificate is valid for the
	// Service's name beyond the renewal period, and every replica has the
	// files in its volume.
	expectServing := func(g Gomega) (ca, crt []byte) {
		s := secret(g)
		ca, crt = s.Data["ca.crt"], s.Data["tls.crt"]
		g.Expect(ca).NotTo(BeEmpty())
		g.Expect(crt).NotTo(BeEmpty())
		mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: o.MutatingWebhookConfiguration}, mwc)).To(Succeed())
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		g.Expect(k8sClient.Get(ctx, types.NamespacedName{Name: o.ValidatingWebhookConfiguration}, vwc)).To(Succeed())
		for _, w := range mwc.Webhooks {
			g.Expect(w.ClientConfig.CABundle).To(Equal(ca), w.Name)
		}
		for _, w := range vwc.Webhooks {
			g.Expect(w.ClientConfig.CABundle).To(Equal(ca), w.Name)
		}
		pool := x509.NewCertPool()
		g.Expect(pool.AppendCertsFromPEM(ca)).To(BeTrue())
		b, _ := pem.Decode(crt)
		g.Expect(b).NotTo(BeNil())
		leaf, err := x509.ParseCertificate(b.Bytes)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = leaf.Verify(x509.VerifyOptions{
			DNSName: fmt.Sprintf("%s.%s.svc", o.ServiceName, def.namespace), Roots: pool,
			CurrentTime: time.Now().Add(o.RenewBefore), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		g.Expect(err).NotTo(HaveOccurred())
		for _, rep := range replicas {
			onDisk, err := os.ReadFile(filepath.Join(rep.dir, "tls.crt"))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(onDisk).To(Equal(crt))
		}
		return ca, crt
	}
	// overwrite replaces the Secret's data, as an expiring certificate would
	// look after time has passed.
	overwrite := func(data map[string][]byte) {
		GinkgoHelper()
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			s := secret(Default)
			for k, v := range data {
				s.Data[k] = v
			}
			return k8sClient.Update(ctx, s)
		})).To(Succeed())
	}

	BeforeAll(func() {
		o = optionsFromChart(def)
		key = types.NamespacedName{Namespace: def.namespace, Name: o.SecretName}
		Expect(o.SecretName).To(Equal("kubepim-webhook-server-cert"))
	})
	AfterAll(func() {
		for _, rep := range replicas {
			rep.stop()
		}
	})

	It("makes a CA and certificate on every replica's start and injects the CA into both webhook configurations, with the chart's RBAC", func() {
		// Two replicas, as the chart deploys: both serve webhooks, neither
		// leads the certificates.
		replicas = append(replicas, startReplica(def, o, 1), startReplica(def, o, 2))
		for _, rep := range replicas {
			Eventually(rep.ready).WithTimeout(time.Minute).Should(BeClosed())
		}
		Eventually(func(g Gomega) { expectServing(g) }).Should(Succeed())
		// The replicas agree on one CA and leave it alone.
		ca, crt := expectServing(Default)
		Consistently(func(g Gomega) {
			c2, t2 := expectServing(g)
			g.Expect(c2).To(Equal(ca))
			g.Expect(t2).To(Equal(crt))
		}).WithTimeout(2 * time.Second).Should(Succeed())
	})

	It("keeps the certificate and caBundle when the chart is applied again (an upgrade)", func() {
		ca, crt := expectServing(Default)
		apply(def, render(def))
		Consistently(func(g Gomega) {
			c2, t2 := expectServing(g)
			g.Expect(c2).To(Equal(ca))
			g.Expect(t2).To(Equal(crt))
		}).WithTimeout(time.Second).Should(Succeed())
	})

	It("renews a serving certificate that expires within the renewal period, keeping the CA", func() {
		s := secret(Default)
		caCert := parseCert(s.Data["ca.crt"])
		kb, _ := pem.Decode(s.Data["ca.key"])
		Expect(kb).NotTo(BeNil())
		caKey, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
		Expect(err).NotTo(HaveOccurred())
		dns := o.DNSNames()
		expiring, expiringKey := issue(dns[0], dns, time.Hour, caCert, caKey)
		overwrite(map[string][]byte{"tls.crt": expiring, "tls.key": expiringKey})

		Eventually(func(g Gomega) {
			ca, crt := expectServing(g) // valid beyond the renewal period again
			g.Expect(crt).NotTo(Equal(expiring))
			g.Expect(ca).To(Equal(s.Data["ca.crt"]), "no new CA for a new certificate")
		}).WithTimeout(time.Minute).Should(Succeed())
	})

	It("renews a CA that expires within the renewal period and injects the new one", func() {
		old := secret(Default).Data["ca.crt"]
		expiringCA, expiringCAKey := issue("expiring-ca", nil, time.Hour, nil, nil)
		caCert := parseCert(expiringCA)
		kb, _ := pem.Decode(expiringCAKey)
		caKey, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
		Expect(err).NotTo(HaveOccurred())
		dns := o.DNSNames()
		crt, crtKey := issue(dns[0], dns, time.Hour, caCert, caKey)
		overwrite(map[string][]byte{"ca.crt": expiringCA, "ca.key": expiringCAKey, "tls.crt": crt, "tls.key": crtKey})

		Eventually(func(g Gomega) {
			ca, _ := expectServing(g)
			g.Expect(ca).NotTo(Equal(expiringCA))
			g.Expect(ca).NotTo(Equal(old))
			g.Expect(parseCert(ca).NotAfter).To(BeTemporally(">", time.Now().Add(o.CAValidity-24*time.Hour)))
		}).WithTimeout(time.Minute).Should(Succeed())
	})
}
