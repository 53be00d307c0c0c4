//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/yaml"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "kubepim end to end")
}

var (
	root     string
	devDir   string
	replicas = []string{"manager", "manager-1"}
	// leaseDuration is the manager's --leader-elect-lease-duration (hack/e2e.sh).
	leaseDuration time.Duration
	// admin is the dev admin (system:masters); the others are people,
	// authenticated by client certificates with their groups as O.
	admin, alice, bob, carol, dave, mallory, audra user
)

type user struct {
	name       string
	kubeconfig string
}

var _ = BeforeSuite(func() {
	devDir = os.Getenv("DEV_DIR")
	if devDir == "" || os.Getenv("E2E") != "1" {
		Skip("run the end-to-end suite with `make e2e` (hack/e2e.sh sets up the control plane)")
	}
	var err error
	root, err = filepath.Abs("../..")
	Expect(err).NotTo(HaveOccurred())
	leaseDuration, err = time.ParseDuration(os.Getenv("E2E_LEASE_DURATION"))
	Expect(err).NotTo(HaveOccurred(), "E2E_LEASE_DURATION")
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)

	admin = user{name: "kubepim-dev-admin", kubeconfig: filepath.Join(devDir, "kubeconfig")}
	alice = makeUser("alice", "developers")
	bob = makeUser("bob", "sre")
	carol = makeUser("carol", "platform-leads")
	dave = makeUser("dave", "sre-leads")
	mallory = makeUser("mallory")
	audra = makeUser("audra", "auditors")
	out, err := alice.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}")
	Expect(err).NotTo(HaveOccurred())
	Expect(out).To(Equal("alice [\"developers\",\"system:authenticated\"]"))
	// Both replicas run and exactly one leads before anything starts.
	Eventually(leaderIndex).WithTimeout(60 * time.Second).Should(BeNumerically(">=", 0))
})

var _ = AfterSuite(func() {
	writeFigures()
})

// makeUser writes a client certificate (CN user, O groups) signed by the
// dev CA and a kubeconfig that uses it: a real user of the API server, not
// an impersonation.
func makeUser(name string, groups ...string) user {
	GinkgoHelper()
	pki := filepath.Join(devDir, "pki")
	caPEM, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	Expect(err).NotTo(HaveOccurred())
	caKeyPEM, err := os.ReadFile(filepath.Join(pki, "ca.key"))
	Expect(err).NotTo(HaveOccurred())
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(caKeyPEM)
	Expect(cb).NotTo(BeNil())
	Expect(kb).NotTo(BeNil())
	ca, err := x509.ParseCertificate(cb.Bytes)
	Expect(err).NotTo(HaveOccurred())
	var caKey any
	if caKey, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
		caKey, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
		Expect(err).NotTo(HaveOccurred())
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	dir := filepath.Join(devDir, "users")
	Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
	crt, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	Expect(os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)).To(Succeed())
	Expect(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)).To(Succeed())
	server, err := admin.kubectl("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	Expect(err).NotTo(HaveOccurred())
	kc := filepath.Join(dir, name+".kubeconfig")
	Expect(os.WriteFile(kc, fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %s
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: %s
  context: {cluster: e2e, user: %s}
current-context: %s
`, server, filepath.Join(pki, "ca.crt"), name, crt, keyFile, name, name, name), 0o600)).To(Succeed())
	return user{name: name, kubeconfig: kc}
}

// kubectl runs kubectl (with bin/ first on PATH, so `kubectl pim` is the
// plugin just built) as u and returns its stdout; the error carries stderr.
func (u user) kubectl(args ...string) (string, error) {
	return u.kubectlIn("", args...)
}

func (u user) kubectlIn(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if args[0] != "pim" { // kubectl refuses flags before a plugin's name
		args = append([]string{"--request-timeout=10s"}, args...)
	}
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+u.kubeconfig, "PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s (as %s): %w: %s", strings.Join(args, " "), u.name, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), err
}

// can reports whether u may do verb on resource in namespace ns, as the API
// server's authorizer answers u itself (kubectl auth can-i, a
// SelfSubjectAccessReview).
func (u user) can(verb, resource, ns string) (bool, error) {
	out, err := u.kubectl("auth", "can-i", verb, resource, "-n", ns)
	switch {
	case out == "yes":
		return true, nil
	case out == "no", strings.HasPrefix(out, "no - "): // "no - REASON": kubepim's hint in authorizer mode
		return false, nil
	}
	return false, err
}

// dev runs hack/dev.sh with the suite's environment (hack/e2e.sh's ports
// and DEV_DIR).
func dev(args ...string) {
	GinkgoHelper()
	cmd := exec.Command(filepath.Join(root, "hack", "dev.sh"), args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	Expect(cmd.Run()).To(Succeed(), "hack/dev.sh %s", strings.Join(args, " "))
}

func running(component string) bool {
	b, err := os.ReadFile(filepath.Join(devDir, component+".pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// metricsPort is replica i's metrics port (hack/dev.sh: DEV_METRICS_PORT+2i).
func metricsPort(i int) int {
	base, err := strconv.Atoi(os.Getenv("DEV_METRICS_PORT"))
	Expect(err).NotTo(HaveOccurred(), "DEV_METRICS_PORT")
	return base + 2*i
}

var leaderGauge = regexp.MustCompile(`(?m)^leader_election_master_status\{name="kubepim.io"\} 1$`)

// isLeader reads controller-runtime's leader_election_master_status gauge
// from replica i's metrics endpoint.
func isLeader(i int) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort(i)))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return err == nil && leaderGauge.Match(b)
}

// leaderIndex is the replica that leads, or -1 when none or several claim to.
func leaderIndex() int {
	found := -1
	for i := range replicas {
		if isLeader(i) {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}

// --- kubepim objects, read with kubectl -----------------------------------

// sampleActivation is config/samples/activation/activationrequest.yaml with
// another name, namespace and duration: the documented sample, as the
// requester would create it.
func sampleActivation(name, ns string, d time.Duration) string {
	GinkgoHelper()
	b, err := os.ReadFile(filepath.Join(root, "config", "samples", "activation", "activationrequest.yaml"))
	Expect(err).NotTo(HaveOccurred())
	ar := &pimv1.ActivationRequest{}
	Expect(yaml.UnmarshalStrict(b, ar)).To(Succeed())
	Expect(ar.Spec.RoleRef.Name).To(Equal("pod-debugger"))
	ar.Name = name
	ar.Spec.Namespace = ns
	ar.Spec.Duration.Duration = d
	out, err := yaml.Marshal(ar)
	Expect(err).NotTo(HaveOccurred())
	return string(out)
}

// secretReaderActivation is the README's bob-secrets request (Role
// secret-reader in prod, two approvals) with another name and duration.
func secretReaderActivation(name string, d time.Duration) string {
	return fmt.Sprintf(`apiVersion: kubepim.io/v1alpha1
kind: ActivationRequest
metadata: {name: %s}
spec:
  roleRef: {kind: Role, name: secret-reader}
  namespace: prod
  duration: %s
  justification: rotate the payments DB password
  ticket: {system: jira, number: OPS-88}
`, name, d)
}

func getActivation(name string) (*pimv1.ActivationRequest, error) {
	out, err := admin.kubectl("get", "activationrequest", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	ar := &pimv1.ActivationRequest{}
	return ar, json.Unmarshal([]byte(out), ar)
}

func stateOf(name string) func() (string, error) {
	return func() (string, error) {
		ar, err := getActivation(name)
		if err != nil {
			return "", err
		}
		return string(ar.Status.State), nil
	}
}

func notFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NotFound")
}

// activeUntil waits until the request is Active and returns its expiresAt.
func activeUntil(name string) time.Time {
	GinkgoHelper()
	Eventually(stateOf(name)).Should(Equal(string(pimv1.ActivationStateActive)))
	ar, err := getActivation(name)
	Expect(err).NotTo(HaveOccurred())
	Expect(ar.Status.ExpiresAt).NotTo(BeNil())
	return ar.Status.ExpiresAt.Time
}

// revokedAt polls, as the user, until the permission is gone and returns
// when the poll that saw it gone ended: an upper bound of when access ended.
func revokedAt(u user, verb, resource, ns string, timeout time.Duration) time.Time {
	GinkgoHelper()
	var at time.Time
	Eventually(func() (bool, error) {
		ok, err := u.can(verb, resource, ns)
		at = time.Now()
		return ok, err
	}).WithTimeout(timeout).WithPolling(50 * time.Millisecond).Should(BeFalse())
	return at
}

func auditEvents() []pimv1.AuditEvent {
	GinkgoHelper()
	out, err := audra.kubectl("get", "auditevents", "-o", "json")
	Expect(err).NotTo(HaveOccurred())
	var list struct {
		Items []pimv1.AuditEvent `json:"items"`
	}
	Expect(json.Unmarshal([]byte(out), &list)).To(Succeed())
	return list.Items
}

// actionsFor lists the audit actions recorded about the named request, in
// sequence order.
func actionsFor(name string) []string {
	events := auditEvents()
	sort.Slice(events, func(i, j int) bool { return events[i].Spec.Sequence < events[j].Spec.Sequence })
	var out []string
	for _, e := range events {
		if e.Spec.Target != nil && e.Spec.Target.Kind == "ActivationRequest" && e.Spec.Target.Name == name {
			out = append(out, e.Spec.Action)
		}
	}
	return out
}

func verifyAudit() {
	GinkgoHelper()
	out, err := admin.kubectl("pim", "audit", "verify")
	Expect(err).NotTo(HaveOccurred(), out)
	Expect(out).To(ContainSubstring("verified"))
}

// --- figures for docs/reliability.md ---------------------------------------

var figures struct {
	sync.Mutex
	rows []string
}

// figure records a measurement; AfterSuite writes them all to
// DEV_DIR/figures.md (copied into docs/reliability.md by hand).
func figure(what string, d time.Duration, bound string) {
	line := fmt.Sprintf("| %s | %.2f s | %s |", what, d.Seconds(), bound)
	AddReportEntry(what, fmt.Sprintf("%.3fs (bound %s)", d.Seconds(), bound))
	fmt.Fprintln(GinkgoWriter, "FIGURE", line)
	figures.Lock()
	figures.rows = append(figures.rows, line)
	figures.Unlock()
}

func writeFigures() {
	figures.Lock()
	defer figures.Unlock()
	if devDir == "" || len(figures.rows) == 0 {
		return
	}
	text := "| measurement | value | required |\n|---|---|---|\n" + strings.Join(figures.rows, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(devDir, "figures.md"), []byte(text), 0o644); err != nil {
		fmt.Fprintln(GinkgoWriter, "writing figures:", err)
	}
	fmt.Fprintf(GinkgoWriter, "\n%s", text)
}

var errNotYet = errors.New("not yet")

// sleepUntil waits for an instant that a fault case chooses on purpose (how
// long a component stays down, when a kill lands relative to an expiry);
// it never stands in for waiting on a state, which is Eventually's job.
func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// bindingWatch records when RoleBindings of one namespace are deleted, from
// a `kubectl get rolebindings --watch` stream: the deletion's time to a few
// milliseconds, where polling `kubectl auth can-i` would add a kubectl
// round trip.
type bindingWatch struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	deleted map[string]time.Time
}

func watchBindings(ns string) *bindingWatch {
	GinkgoHelper()
	w := &bindingWatch{deleted: map[string]time.Time{}}
	w.cmd = exec.Command("kubectl", "get", "rolebindings", "-n", ns, "--watch-only", "--output-watch-events", "-o", "json")
	w.cmd.Env = append(os.Environ(), "KUBECONFIG="+admin.kubeconfig)
	out, err := w.cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	w.cmd.Stderr = GinkgoWriter
	Expect(w.cmd.Start()).To(Succeed())
	go func() {
		dec := json.NewDecoder(out)
		for {
			var ev struct {
				Type   string `json:"type"`
				Object struct {
					Metadata struct {
						Name string `json:"name"`
					} `json:"metadata"`
				} `json:"object"`
			}
			if err := dec.Decode(&ev); err != nil {
				return
			}
			if ev.Type == "DELETED" {
				w.mu.Lock()
				w.deleted[ev.Object.Metadata.Name] = time.Now()
				w.mu.Unlock()
			}
		}
	}()
	DeferCleanup(func() { _ = w.cmd.Process.Kill(); _ = w.cmd.Wait() })
	return w
}

// deletedAt waits until the binding's deletion is seen and returns when.
func (w *bindingWatch) deletedAt(name string, timeout time.Duration) time.Time {
	GinkgoHelper()
	var at time.Time
	Eventually(func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		at = w.deleted[name]
		return !at.IsZero()
	}).WithTimeout(timeout).Should(BeTrue(), "RoleBinding %s is not deleted", name)
	return at
}

// bindingOf is the binding the (active) request holds.
func bindingOf(name string) string {
	GinkgoHelper()
	ar, err := getActivation(name)
	Expect(err).NotTo(HaveOccurred())
	Expect(ar.Status.Binding).NotTo(BeNil())
	return ar.Status.Binding.Name
}

// revoked waits until the binding is gone and u has lost the permission,
// and returns when the binding was deleted.
func (w *bindingWatch) revoked(binding string, u user, verb, resource, ns string, timeout time.Duration) time.Time {
	GinkgoHelper()
	at := w.deletedAt(binding, timeout)
	Eventually(func() (bool, error) { return u.can(verb, resource, ns) }).Should(BeFalse())
	return at
}

// kill9 kills components at once with SIGKILL (as hack/dev.sh kill does,
// without a shell's start-up in between, so the moment is precise) and
// returns when all are gone.
func kill9(components ...string) {
	GinkgoHelper()
	var pids []int
	for _, c := range components {
		b, err := os.ReadFile(filepath.Join(devDir, c+".pid"))
		Expect(err).NotTo(HaveOccurred(), "%s is not running", c)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		Expect(err).NotTo(HaveOccurred())
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed(), "kill -9 %s (pid %d)", c, pid)
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		// Gone, or a zombie of hack/dev.sh's setsid: either way it no longer runs.
		Eventually(func() bool {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			return err != nil || strings.Contains(string(b), ") Z ")
		}).WithTimeout(5 * time.Second).WithPolling(10 * time.Millisecond).Should(BeTrue())
	}
	for _, c := range components {
		_ = os.Remove(filepath.Join(devDir, c+".pid"))
	}
}
