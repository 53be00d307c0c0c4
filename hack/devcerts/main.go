// Command devcerts writes the certificates, keys and kubeconfig of the local
// control plane that hack/dev.sh runs. It uses the standard library only, so
// that a fresh machine needs neither openssl nor cfssl.
//
// Files already present are kept (the CA in particular, so that the etcd data,
// the kubeconfig and the webhook caBundle stay valid across restarts); delete
// the directory to start over.
//
//	devcerts -dir bin/dev/pki -webhook-dir bin/dev/webhook-certs \
//	         -kubeconfig bin/dev/kubeconfig -server https://127.0.0.1:16443
//
// It writes, under -dir:
//
//	ca.crt, ca.key                  the dev CA (signs everything below)
//	apiserver.crt, apiserver.key    kube-apiserver's serving certificate
//	admin.crt, admin.key            client certificate of user kubepim-dev-admin in group system:masters
//	front-proxy-client.crt, .key    the API server's client certificate towards aggregated APIs
//	sa.key, sa.pub                  service-account token signing key pair
//
// under -webhook-dir: tls.crt, tls.key (serving certificate of the manager's
// webhook server on 127.0.0.1 and localhost) and ca.crt; and the kubeconfig.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const validity = 10 * 365 * 24 * time.Hour

func main() {
	dir := flag.String("dir", "bin/dev/pki", "directory for the CA, the API server's certificates and the service-account keys")
	webhookDir := flag.String("webhook-dir", "bin/dev/webhook-certs", "directory for the manager's webhook serving certificate (tls.crt, tls.key)")
	kubeconfig := flag.String("kubeconfig", "bin/dev/kubeconfig", "admin kubeconfig to write")
	server := flag.String("server", "https://127.0.0.1:16443", "API server URL written into the kubeconfig")
	serviceIP := flag.String("service-ip", "10.0.0.1", "first IP of the service CIDR (the kubernetes Service), added to the API server certificate")
	flag.Parse()
	if err := run(*dir, *webhookDir, *kubeconfig, *server, *serviceIP); err != nil {
		fmt.Fprintln(os.Stderr, "devcerts:", err)
		os.Exit(1)
	}
}

func run(dir, webhookDir, kubeconfig, server, serviceIP string) error {
	for _, d := range []string{dir, webhookDir, filepath.Dir(kubeconfig)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	ca, caKey, err := loadOrCreateCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	apiIPs := []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback}
	if ip := net.ParseIP(serviceIP); ip != nil {
		apiIPs = append(apiIPs, ip)
	}
	leaves := []struct {
		name string
		tmpl x509.Certificate
		crt  string
		key  string
	}{
		{name: "kube-apiserver", crt: filepath.Join(dir, "apiserver.crt"), key: filepath.Join(dir, "apiserver.key"), tmpl: x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			IPAddresses: apiIPs,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{name: "admin", crt: filepath.Join(dir, "admin.crt"), key: filepath.Join(dir, "admin.key"), tmpl: x509.Certificate{
			Subject:     pkix.Name{CommonName: "kubepim-dev-admin", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{name: "front-proxy client", crt: filepath.Join(dir, "front-proxy-client.crt"), key: filepath.Join(dir, "front-proxy-client.key"), tmpl: x509.Certificate{
			Subject:     pkix.Name{CommonName: "front-proxy-client"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{name: "webhook server", crt: filepath.Join(webhookDir, "tls.crt"), key: filepath.Join(webhookDir, "tls.key"), tmpl: x509.Certificate{
			Subject:     pkix.Name{CommonName: "kubepim-webhook"},
			DNSNames:    []string{"localhost"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
	}
	for _, l := range leaves {
		if err := ensureLeaf(l.crt, l.key, l.tmpl, ca, caKey); err != nil {
			return fmt.Errorf("%s certificate: %w", l.name, err)
		}
	}
	if err := copyFile(filepath.Join(dir, "ca.crt"), filepath.Join(webhookDir, "ca.crt")); err != nil {
		return err
	}
	if err := ensureServiceAccountKeys(filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")); err != nil {
		return fmt.Errorf("service-account keys: %w", err)
	}
	return writeKubeconfig(kubeconfig, server, dir)
}

func exists(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func loadOrCreateCA(crtPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	if exists(crtPath, keyPath) {
		crt, err := readCert(crtPath)
		if err != nil {
			return nil, nil, err
		}
		key, err := readKey(keyPath)
		if err != nil {
			return nil, nil, err
		}
		return crt, key, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kubepim-dev-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := writePEM(crtPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	crt, err := x509.ParseCertificate(der)
	return crt, key, err
}

// ensureLeaf keeps an existing certificate that the CA signed and that is
// valid for at least another day; otherwise it issues a new one.
func ensureLeaf(crtPath, keyPath string, tmpl x509.Certificate, ca *x509.Certificate, caKey crypto.Signer) error {
	if exists(crtPath, keyPath) {
		if crt, err := readCert(crtPath); err == nil && crt.CheckSignatureFrom(ca) == nil && time.Until(crt.NotAfter) > 24*time.Hour {
			return nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(validity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, key.Public(), caKey)
	if err != nil {
		return err
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(crtPath, "CERTIFICATE", der, 0o644)
}

// ensureServiceAccountKeys writes an RSA key pair: every version of
// kube-apiserver and kube-controller-manager accepts RSA for tokens.
func ensureServiceAccountKeys(keyPath, pubPath string) error {
	if exists(keyPath, pubPath) {
		return nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if err := writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	return writePEM(pubPath, "PUBLIC KEY", pub, 0o644)
}

// writeKubeconfig writes the admin context plus, for trying kubepim as
// ordinary users, contexts that impersonate them with the admin credentials.
func writeKubeconfig(path, server, dir string) error {
	b64 := func(name string) (string, error) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		return base64.StdEncoding.EncodeToString(data), err
	}
	ca, err := b64("ca.crt")
	if err != nil {
		return err
	}
	crt, err := b64("admin.crt")
	if err != nil {
		return err
	}
	key, err := b64("admin.key")
	if err != nil {
		return err
	}
	type persona struct{ name, user string }
	personas := []persona{
		{name: "admin"},
		{name: "alice", user: "as: alice\n    as-groups: [developers]\n"},
		{name: "alice-mfa", user: "as: alice\n    as-groups: [developers]\n    as-user-extra:\n      amr: [pwd, mfa]\n      kubepim.io/amr: [pwd, mfa]\n"},
		{name: "bob", user: "as: bob\n    as-groups: [sre]\n"},
		{name: "carol", user: "as: carol\n    as-groups: [platform-leads]\n    as-user-extra:\n      amr: [pwd, mfa]\n      kubepim.io/amr: [pwd, mfa]\n"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by hack/devcerts for the kubepim dev control plane (hack/dev.sh).
# Context "admin" is user kubepim-dev-admin in group system:masters; the
# others impersonate ordinary users with the admin's credentials.
apiVersion: v1
kind: Config
current-context: admin
preferences: {}
clusters:
- name: kubepim-dev
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
`, server, ca)
	for _, p := range personas {
		fmt.Fprintf(&b, "- name: %s\n  context:\n    cluster: kubepim-dev\n    user: %s\n", p.name, p.name)
	}
	b.WriteString("users:\n")
	for _, p := range personas {
		fmt.Fprintf(&b, "- name: %s\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n", p.name, crt, key)
		if p.user != "" {
			b.WriteString("    " + p.user)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readBlock(path string) (*pem.Block, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM data", path)
	}
	return block, nil
}

func readCert(path string) (*x509.Certificate, error) {
	block, err := readBlock(path)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(block.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	block, err := readBlock(path)
	if err != nil {
		return nil, err
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: unsupported private key: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New(path + ": not a signing key")
	}
	return s, nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}
