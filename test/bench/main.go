// Command bench measures kubepim end to end: the real manager (controllers
// and admission webhooks, in this process) against a real kube-apiserver and
// etcd (envtest, from KUBEBUILDER_ASSETS), and prints one results table.
// Run it with `make bench`; docs/performance.md explains the numbers.
//
// Every request goes to the loopback control plane that this program starts,
// every loop is bounded in count and time, and every client (the manager's
// included) has a high client-side rate limit, so that client-go's default
// of 5 requests per second does not become the thing measured.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/test/kubepimtest"
)

var (
	flagRoot            = flag.String("root", ".", "the repository root (CRDs, webhook and RBAC manifests)")
	flagBare            = flag.Int("bare", 200, "bare ClusterRoleBinding creations (the physical limit)")
	flagGrant           = flag.Int("grant", 200, "activations for the grant latency")
	flagApproval        = flag.Int("approval", 50, "approved activations for the approval latency")
	flagLifecycles      = flag.Int("lifecycles", 5, "sequential lifecycles whose API writes are counted")
	flagRevoke          = flag.Int("revoke", 200, "short activations for the revoke lag")
	flagRevokeRate      = flag.Float64("revoke-rate", 4, "short activations started per second in the revoke-lag run (keep it below the activation throughput)")
	flagRevokeSlow      = flag.Int("revoke-slow", 30, "short activations for the revoke lag at the slow rate (0: skip)")
	flagRevokeSlowRate  = flag.Float64("revoke-slow-rate", 2, "short activations started per second in the slow revoke-lag run")
	flagRevokePoll      = flag.Int("revoke-pollers", 64, "SubjectAccessReview pollers at most at once in the revoke-lag run")
	flagThroughput      = flag.Int("throughput", 1000, "activations in flight at once for the throughput")
	flagScale           = flag.Int("scale", 10000, "RoleAssignments in the large scale step")
	flagScaleSmall      = flag.Int("scale-small", 1000, "RoleAssignments in the small scale step")
	flagActiveShare     = flag.Float64("active-share", 0.2, "share of Active (rather than Eligible) RoleAssignments in the scale steps")
	flagWriters         = flag.Int("writers", 16, "concurrent writers when creating many objects")
	flagOnly            = flag.String("only", "", "comma-separated subset of: lifecycle,bare,grant,approval,revoke,throughput,scale,review,outside,authorizer,authorizer-scale")
	flagOutsideRemovals = flag.Int("outside-removals", 50, "outside bindings of a governed role whose removal (enforce mode) is timed in the outside step")
	flagOutside         = flag.Int("outside-bindings", 50000, "unrelated RoleBindings and ClusterRoleBindings created in the outside step (after the scale steps, on their control plane)")
	flagTrace           = flag.Bool("trace-writes", false, "print every write the manager sends during the counted lifecycles")
	flagMemLimit        = flag.String("manager-gomemlimit", "", "GOMEMLIMIT for the cmd/manager process of the scale steps (e.g. 120MiB; empty: none)")
	flagPprof           = flag.String("manager-pprof", "", "a directory: serve pprof from the cmd/manager process and save its CPU and heap profiles there during the authorizer-scale step")
	flagTimeout         = flag.Duration("timeout", 20*time.Minute, "give up after this long")
)

const (
	// qps and burst for every client, the manager's included: client-go's
	// defaults (5 and 10) would throttle everything measured here.
	qps   = 5000
	burst = 10000
	// setLabel marks the objects of one scenario.
	setLabel = "bench.kubepim.io/set"
)

// logOut receives progress lines; the table goes to stdout.
var logOut io.Writer = os.Stderr

func main() {
	flag.Parse()
	ctrl.SetLogger(logr.New(&errorSink{}))
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	// Ctrl-C stops the runs and still tears the control plane down.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := &results{}
	start := time.Now()
	err := run(ctx, res)
	fmt.Println()
	fmt.Printf("kubepim benchmark — %d CPUs (GOMAXPROCS %d), %s, %s/%s; total %s\n\n", runtime.NumCPU(), runtime.GOMAXPROCS(0),
		runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Since(start).Round(time.Second))
	res.print(os.Stdout)
	if n, first := loggedErrors(); n > 0 {
		fmt.Printf("\n%d errors were logged by the manager; the first: %s\n", n, strings.Join(first, " | "))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func enabled(name string) bool {
	if *flagOnly == "" {
		return true
	}
	return slices.Contains(strings.Split(*flagOnly, ","), name)
}

func run(ctx context.Context, res *results) error {
	root, err := filepath.Abs(*flagRoot)
	if err != nil {
		return err
	}
	if enabled("lifecycle") || enabled("bare") || enabled("grant") || enabled("approval") || enabled("revoke") || enabled("throughput") {
		b, err := setup(ctx, root, true, kubepimtest.Options{}, grant.AccessModeBindings)
		if err != nil {
			return err
		}
		err = b.latencies(ctx, res)
		b.teardown()
		if err != nil {
			return err
		}
	}
	if enabled("scale") || enabled("outside") || enabled("review") {
		// A fresh control plane: the scale steps count only their own
		// assignments. The manager runs as its own process (cmd/manager),
		// so that its memory and CPU are measured without the benchmark's.
		// The outside step measures on top of what the scale steps made.
		b, err := setup(ctx, root, false, kubepimtest.Options{}, grant.AccessModeBindings)
		if err != nil {
			return err
		}
		err = b.startProcess(ctx, root)
		if err == nil && enabled("scale") {
			err = b.scale(ctx, res)
		}
		if err == nil && enabled("review") {
			logf("--- review")
			err = b.review(ctx, res)
		}
		if err == nil && enabled("outside") {
			logf("--- outside")
			err = b.outside(ctx, res)
		}
		b.teardown()
		if err != nil {
			return err
		}
	}
	if enabled("authorizer") {
		// The same grant and revoke runs, and the bare binding beside them,
		// on a control plane of their own whose kube-apiserver asks
		// kubepim's authorization webhook (config/authorizer), with the
		// manager in --access-mode=authorizer.
		logf("--- authorizer")
		b, err := setup(ctx, root, true, kubepimtest.Options{Authorizer: true}, grant.AccessModeAuthorizer)
		if err != nil {
			return err
		}
		err = b.authorizer(ctx, res)
		b.teardown()
		if err != nil {
			return fmt.Errorf("authorizer: %w", err)
		}
	}
	if enabled("authorizer-scale") {
		// Authorizer mode at scale, the manager as a process of its own.
		logf("--- authorizer-scale")
		b, err := setup(ctx, root, false, kubepimtest.Options{Authorizer: true}, grant.AccessModeAuthorizer)
		if err != nil {
			return err
		}
		err = b.startProcess(ctx, root, "--access-mode="+string(grant.AccessModeAuthorizer))
		if err == nil {
			err = b.authorizerScale(ctx, res)
		}
		b.teardown()
		if err != nil {
			return fmt.Errorf("authorizer-scale: %w", err)
		}
	}
	return nil
}

func (b *bench) latencies(ctx context.Context, res *results) error {
	steps := []struct {
		name string
		fn   func(context.Context, *results) error
	}{
		{"lifecycle", b.lifecycle},
		{"bare", b.bare},
		{"grant", b.grant},
		{"approval", b.approval},
		{"revoke", b.revoke},
		{"throughput", b.throughput},
	}
	for _, s := range steps {
		if !enabled(s.name) {
			continue
		}
		logf("--- %s", s.name)
		if err := s.fn(ctx, res); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// bench is a control plane with kubepim's manager running in this process.
type bench struct {
	env     *kubepimtest.Env
	admin   client.Client
	cs      kubernetes.Interface
	pim     rest.Interface // kubepim.io/v1alpha1, acting as users by impersonation headers
	counter *writeCounter
	stopMgr func()
	// bareGrant is the physical limit, for the grant ratio.
	bareGrant sample
	// proc is the manager as a process of its own (scale steps), or nil.
	proc *managerProcess
	// label prefixes the rows of a run in another access mode.
	label string
}

// setup starts a control plane with opts and, with inProcess, kubepim's
// manager in this process in access mode mode.
func setup(ctx context.Context, root string, inProcess bool, opts kubepimtest.Options, mode grant.AccessMode) (*bench, error) {
	logf("starting kube-apiserver and etcd")
	env, err := kubepimtest.StartWith(root, opts)
	if err != nil {
		return nil, fmt.Errorf("starting the control plane (is KUBEBUILDER_ASSETS set? `make bench` sets it): %w", err)
	}
	env.AccessMode = mode
	b := &bench{env: env, counter: newWriteCounter()}
	adminCfg := rest.CopyConfig(env.Config)
	adminCfg.QPS, adminCfg.Burst = qps, burst
	// The manager's identity: no client-side throttling, and every request
	// counted. Env.ManagerConfig is what StartManager builds the manager on.
	env.ManagerConfig.QPS, env.ManagerConfig.Burst = qps, burst
	env.ManagerConfig.WrapTransport = b.counter.wrap
	if b.admin, err = client.New(adminCfg, client.Options{Scheme: env.Scheme}); err != nil {
		return nil, b.fail(err)
	}
	if b.cs, err = kubernetes.NewForConfig(adminCfg); err != nil {
		return nil, b.fail(err)
	}
	pimCfg := rest.CopyConfig(adminCfg)
	pimCfg.GroupVersion = &pimv1.GroupVersion
	pimCfg.APIPath = "/apis"
	pimCfg.NegotiatedSerializer = serializer.NewCodecFactory(env.Scheme).WithoutConversion()
	pimCfg.ContentType = "application/json"
	if b.pim, err = rest.RESTClientFor(pimCfg); err != nil {
		return nil, b.fail(err)
	}
	// Every authenticated user may request and decide on activations, as
	// the kubepim-requester and kubepim-approver roles allow.
	objs := []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bench-pim-user"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{pimv1.GroupVersion.Group}, Resources: []string{"activationrequests"}, Verbs: []string{"get", "list", "watch", "create", "patch"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "bench-pim-user"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "bench-pim-user"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}}},
	}
	for _, obj := range objs {
		if err := b.admin.Create(ctx, obj); err != nil {
			return nil, b.fail(err)
		}
	}
	if !inProcess {
		return b, nil
	}
	logf("starting the kubepim manager")
	if b.stopMgr, err = env.StartManager(clock.RealClock{}); err != nil {
		return nil, b.fail(err)
	}
	return b, nil
}

// startProcess builds and starts cmd/manager as a process of its own and
// waits until its webhooks admit an assignment.
func (b *bench) startProcess(ctx context.Context, root string, args ...string) error {
	logf("building and starting cmd/manager as its own process")
	var err error
	if b.proc, err = newManagerProcess(ctx, root, b.env); err != nil {
		return err
	}
	b.proc.args = append(b.proc.args, args...)
	if err := b.proc.start(); err != nil {
		return err
	}
	if err := b.clusterRole(ctx, "bench-warmup"); err != nil {
		return err
	}
	warmup := assignment("warmup", "bench-warmup", "warmup-user", "bench-warmup", pimv1.AssignmentEligible, nil)
	return poll(ctx, 20*time.Millisecond, 2*time.Minute, func() (bool, error) {
		return b.admin.Create(ctx, warmup.DeepCopy()) == nil, nil
	})
}

func (b *bench) fail(err error) error {
	b.teardown()
	return err
}

// stopManager stops the manager and waits until it has stopped.
func (b *bench) stopManager() {
	if b.stopMgr == nil {
		return
	}
	// Requests cut short by the shutdown are not errors worth reporting.
	errMu.Lock()
	stopping = true
	errMu.Unlock()
	b.stopMgr()
	b.stopMgr = nil
	errMu.Lock()
	stopping = false
	errMu.Unlock()
}

func (b *bench) teardown() {
	b.stopManager()
	if b.proc != nil {
		b.proc.cleanup()
	}
	if err := b.env.Stop(); err != nil {
		logf("stopping the control plane: %v", err)
	}
}

// --- objects ---------------------------------------------------------------

// clusterRole makes a ClusterRole that grants list on pods.
func (b *bench) clusterRole(ctx context.Context, name string) error {
	return b.admin.Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	})
}

func assignment(name, set, user, role, typ string, end *time.Time) *pimv1.RoleAssignment {
	ra := &pimv1.RoleAssignment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{setLabel: set}},
		Spec: pimv1.RoleAssignmentSpec{
			Subject: pimv1.Subject{Kind: pimv1.SubjectKindUser, Name: user},
			RoleRef: pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role},
			Type:    typ,
		},
	}
	if end != nil {
		ra.Spec.EndTime = &metav1.Time{Time: *end}
	}
	return ra
}

// eligible makes each user eligible for role, cluster-wide, and waits until
// the manager has seen every assignment.
func (b *bench) eligible(ctx context.Context, role string, users []string) error {
	if err := b.clusterRole(ctx, role); err != nil {
		return err
	}
	err := parallel(ctx, len(users), *flagWriters, func(ctx context.Context, i int) error {
		return b.admin.Create(ctx, assignment(role+"-"+users[i], role, users[i], role, pimv1.AssignmentEligible, nil))
	})
	if err != nil {
		return err
	}
	return b.waitAssignments(ctx, role, len(users), 5*time.Minute)
}

// waitAssignments waits until n assignments of set are reconciled: state
// set and status.observedGeneration current.
func (b *bench) waitAssignments(ctx context.Context, set string, n int, timeout time.Duration) error {
	return poll(ctx, 200*time.Millisecond, timeout, func() (bool, error) {
		current, err := b.currentAssignments(ctx, set)
		return current >= n, err
	})
}

func (b *bench) currentAssignments(ctx context.Context, set string) (int, error) {
	current := 0
	opts := []client.ListOption{client.MatchingLabels{setLabel: set}, client.Limit(1000)}
	for {
		var list pimv1.RoleAssignmentList
		if err := b.admin.List(ctx, &list, opts...); err != nil {
			return 0, err
		}
		for _, ra := range list.Items {
			if ra.Status.State != "" && ra.Status.ObservedGeneration == ra.Generation {
				current++
			}
		}
		if list.Continue == "" {
			return current, nil
		}
		opts = append(opts[:2], client.Continue(list.Continue))
	}
}

func activation(name, role string, d time.Duration) *pimv1.ActivationRequest {
	return &pimv1.ActivationRequest{
		TypeMeta:   metav1.TypeMeta{APIVersion: pimv1.GroupVersion.String(), Kind: "ActivationRequest"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: pimv1.ActivationRequestSpec{
			RoleRef:       pimv1.RoleRef{Kind: pimv1.RoleKindClusterRole, Name: role},
			Duration:      metav1.Duration{Duration: d},
			Justification: "benchmark",
		},
	}
}

// createAs creates an ActivationRequest as user, by impersonation: the API
// server authenticates the admin and then treats the request as user's,
// webhooks and authorization included (what Env.ConfigAs does, without a
// client per user).
func (b *bench) createAs(ctx context.Context, user string, ar *pimv1.ActivationRequest) error {
	return b.pim.Post().Resource("activationrequests").SetHeader("Impersonate-User", user).Body(ar).Do(ctx).Into(ar)
}

// annotateAs adds an annotation to an ActivationRequest as user, the way
// `kubectl annotate` does.
func (b *bench) annotateAs(ctx context.Context, user, name, key, value string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
	return b.pim.Patch(types.MergePatchType).Resource("activationrequests").Name(name).
		SetHeader("Impersonate-User", user).Body([]byte(patch)).Do(ctx).Error()
}

func (b *bench) getActivation(ctx context.Context, name string) (*pimv1.ActivationRequest, error) {
	ar := &pimv1.ActivationRequest{}
	return ar, b.admin.Get(ctx, client.ObjectKey{Name: name}, ar)
}

// canList asks the API server's authorizer whether user may list pods
// cluster-wide.
func (b *bench) canList(ctx context.Context, user string) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"},
	}}
	got, err := b.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return got.Status.Allowed, nil
}

// waitAccess asks canList every interval (start to start) until it
// answers want, and returns when that answer arrived.
func (b *bench) waitAccess(ctx context.Context, user string, want bool, interval, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		start := time.Now()
		got, err := b.canList(ctx, user)
		now := time.Now()
		if err != nil || got == want {
			return now, err
		}
		if now.After(deadline) {
			return now, fmt.Errorf("%s: access still %v after %s", user, !want, timeout)
		}
		if d := interval - now.Sub(start); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return now, err
			}
		}
	}
}

// --- helpers ---------------------------------------------------------------

// parallel runs fn(0..n-1) on at most workers goroutines; the first error
// stops the rest.
func parallel(ctx context.Context, n, workers int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = context.Cause(ctx)
	}
	return first
}

// poll calls cond every interval until it is true, it fails, or timeout.
func poll(ctx context.Context, interval, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %s", timeout)
		}
		if err := sleep(ctx, interval); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func logf(format string, args ...any) {
	fmt.Fprintf(logOut, "%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// errorSink is the manager's logger: it drops Info lines (the audit trail
// logs every event) and keeps a count and the first few errors.
type errorSink struct {
	name string
}

var (
	errMu    sync.Mutex
	errCount int
	errFirst []string
	stopping bool
)

func loggedErrors() (int, []string) {
	errMu.Lock()
	defer errMu.Unlock()
	return errCount, slices.Clone(errFirst)
}

func (s *errorSink) Init(logr.RuntimeInfo)    {}
func (s *errorSink) Enabled(int) bool         { return false }
func (s *errorSink) Info(int, string, ...any) {}
func (s *errorSink) Error(err error, msg string, kv ...any) {
	errMu.Lock()
	defer errMu.Unlock()
	if stopping {
		return
	}
	errCount++
	if len(errFirst) < 3 {
		errFirst = append(errFirst, fmt.Sprintf("%s: %s: %v", s.name, msg, err))
	}
}
func (s *errorSink) WithValues(...any) logr.LogSink { return s }
func (s *errorSink) WithName(name string) logr.LogSink {
	return &errorSink{name: strings.TrimPrefix(s.name+"/"+name, "/")}
}
