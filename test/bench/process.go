package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubepim/kubepim/test/kubepimtest"
)

// managerProcess is kubepim's real manager binary (cmd/manager), built from
// this tree and run as a process of its own for the scale steps: its memory
// and CPU are then its own, without the benchmark's clients. It runs as
// the same identity the in-process manager uses (kubepimtest.ManagerUser,
// with exactly the manager's generated RBAC), serves the webhooks where
// envtest pointed the API server, and its metrics are read over HTTP.
type managerProcess struct {
	bin, dir    string
	args        []string
	metricsAddr string
	// pprofAddr serves the process's pprof profiles (with -manager-pprof).
	pprofAddr string
	cmd       *exec.Cmd
	exited    chan error
}

// newManagerProcess builds cmd/manager and writes its kubeconfig.
func newManagerProcess(ctx context.Context, root string, env *kubepimtest.Env) (*managerProcess, error) {
	dir, err := os.MkdirTemp("", "kubepim-bench-manager-")
	if err != nil {
		return nil, err
	}
	m := &managerProcess{bin: filepath.Join(dir, "manager"), dir: dir}
	build := exec.CommandContext(ctx, "go", "build", "-o", m.bin, "./cmd/manager")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building cmd/manager: %w", err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(env.ManagerConfig, kubeconfig); err != nil {
		return nil, err
	}
	if m.metricsAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	wh := env.Env.WebhookInstallOptions
	m.args = []string{
		"--kubeconfig=" + kubeconfig,
		"--namespace=" + kubepimtest.Namespace,
		"--metrics-bind-address=" + m.metricsAddr,
		// Plain HTTP on loopback, for the benchmark to scrape.
		"--metrics-secure=false",
		"--health-probe-bind-address=0",
		"--webhook-host=" + wh.LocalServingHost,
		"--webhook-port=" + strconv.Itoa(wh.LocalServingPort),
		"--webhook-cert-dir=" + wh.LocalServingCertDir,
		"--zap-log-level=error",
	}
	if *flagPprof != "" {
		if m.pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		m.args = append(m.args, "--pprof-bind-address="+m.pprofAddr)
	}
	return m, nil
}

// profile saves one of the process's pprof profiles (e.g. "heap",
// "profile?seconds=20") into the -manager-pprof directory as file; nothing
// without that flag.
func (m *managerProcess) profile(ctx context.Context, which, file string) {
	if m.pprofAddr == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.pprofAddr+"/debug/pprof/"+which, nil)
	if err != nil {
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logf("pprof %s: %v", which, err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := os.Create(filepath.Join(*flagPprof, file))
	if err != nil {
		logf("pprof %s: %v", which, err)
		return
	}
	defer func() { _ = out.Close() }()
	_, _ = io.Copy(out, resp.Body)
	logf("pprof: %s saved to %s", which, out.Name())
}

func writeKubeconfig(c *rest.Config, path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["manager"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "manager"}
	cfg.CurrentContext = "bench"
	return clientcmd.WriteToFile(*cfg, path)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// start runs the manager; it returns once the process runs (not once it is
// ready: the caller decides what ready means).
func (m *managerProcess) start() error {
	m.cmd = exec.Command(m.bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = os.Stderr, os.Stderr
	if *flagMemLimit != "" {
		m.cmd.Env = append(os.Environ(), "GOMEMLIMIT="+*flagMemLimit)
	}
	if err := m.cmd.Start(); err != nil {
		return err
	}
	m.exited = make(chan error, 1)
	go func() { m.exited <- m.cmd.Wait() }()
	return nil
}

// stop sends SIGTERM (a clean shutdown) and waits for the exit.
func (m *managerProcess) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

func (m *managerProcess) cleanup() {
	m.stop()
	_ = os.RemoveAll(m.dir)
}

func (m *managerProcess) pid() int { return m.cmd.Process.Pid }

// resetPeakRSS resets the process's VmHWM.
func (m *managerProcess) resetPeakRSS() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", m.pid()), []byte("5"), 0)
}

func (m *managerProcess) peakRSS() uint64 {
	return statusField(fmt.Sprintf("/proc/%d/status", m.pid()), "VmHWM:")
}

func (m *managerProcess) rss() uint64 {
	return statusField(fmt.Sprintf("/proc/%d/status", m.pid()), "VmRSS:")
}

func (m *managerProcess) cpu() time.Duration { return procCPU(m.pid()) }

// gather reads one metric from the manager's /metrics, summed over the
// series that carry labels; ok is false when the endpoint does not answer.
func (m *managerProcess) gather(ctx context.Context, name string, labels map[string]string) (value float64, ok bool) {
	families, err := m.scrape(ctx)
	if err != nil {
		return 0, false
	}
	f, found := families[name]
	if !found {
		return 0, true
	}
	return sumMatching(f, labels), true
}

func (m *managerProcess) scrape(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// sumMatching sums the counters, gauges and untyped values of f's series
// that carry labels.
func sumMatching(f *dto.MetricFamily, labels map[string]string) float64 {
	var v float64
metric:
	for _, m := range f.GetMetric() {
		for k, want := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == want {
					found = true
				}
			}
			if !found {
				continue metric
			}
		}
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return v
}

// writes counts the manager's requests that change something, by method,
// from client-go's rest_client_requests_total (the process's lifetime).
// Unlike the in-process counter it cannot tell resources apart, nor leave
// out reviews (SubjectAccessReviews and the one SelfSubjectReview store
// nothing but are POSTs).
func (m *managerProcess) writes(ctx context.Context) (map[string]int, error) {
	families, err := m.scrape(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the manager's metrics: %w", err)
	}
	out := map[string]int{}
	if f, ok := families["rest_client_requests_total"]; ok {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			if v := sumMatching(f, map[string]string{"method": method}); v > 0 {
				out[method] = int(v)
			}
		}
	}
	return out, nil
}
