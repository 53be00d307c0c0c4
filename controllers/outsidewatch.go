package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/policy"
)

// The manager's cache holds only the bindings kubepim manages (see
// CacheOptions): a large cluster has tens of thousands of others. But a
// binding made past kubepim to a governed role must be noticed at once,
// not on the next periodic pass, or it is standing access (and the way
// a user whose activated role may create bindings would copy it into a
// permanent one).
//
// outsideWatch therefore watches every RoleBinding and ClusterRoleBinding,
// and keeps of each only what is needed to find the bindings of a role:
// its namespace, name and resourceVersion, grouped by the role it grants
// (the RoleSetting index key of that role). That is about 100 bytes a
// binding, against several hundred for even a stripped object in an
// informer cache (ObjectMeta alone is ~250 bytes of struct); the few
// bindings of governed roles are then read in full when judged (from the
// manager's cache when they are kubepim-labelled and current there, from
// the API server otherwise). Every change of a binding enqueues the
// RoleSettings of its role.
//
// The initial list (and a relist after the watch lost its place) is read
// in pages of 500, each compacted before the next is requested, so a
// (re)start never holds a full list of decoded bindings.
//
// It is a source of the RoleSetting controller: it runs only on the
// leader, and the controller's workers start after it has synced.
type outsideWatch struct {
	config  *rest.Config
	reader  client.Reader // RoleSettings, by index
	crbs    *roleIndex
	rbs     *roleIndex
	started chan struct{}
}

func newOutsideWatch(cfg *rest.Config, reader client.Reader) *outsideWatch {
	return &outsideWatch{config: cfg, reader: reader, crbs: newRoleIndex("ClusterRoleBinding"), rbs: newRoleIndex("RoleBinding"), started: make(chan struct{})}
}

// Start starts the two reflectors; changes enqueue the RoleSettings of the
// role concerned on queue.
func (w *outsideWatch) Start(ctx context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	cfg := rest.CopyConfig(w.config)
	// Protobuf: less to decode and to collect than JSON, per event.
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	log := logf.FromContext(ctx).WithName("outside-bindings")
	enqueue := func(settingKey string) {
		settingKey = w.governingKey(ctx, settingKey)
		var list pimv1.RoleSettingList
		if err := w.reader.List(ctx, &list, client.MatchingFields{lookup.RoleSettingByRole: settingKey}); err != nil {
			log.Error(err, "looking up the RoleSettings of a role", "role", settingKey)
			return
		}
		for _, rs := range list.Items {
			queue.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: rs.Name}})
		}
	}
	w.crbs.onChange, w.rbs.onChange = enqueue, enqueue
	crbs := pagedListWatch{&toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, _ metav1.ListOptions) (runtime.Object, error) {
			return pagedList(ctx, func(ctx context.Context, opts metav1.ListOptions) (metav1.ListInterface, []runtime.Object, error) {
				l, err := cs.RbacV1().ClusterRoleBindings().List(ctx, opts)
				if err != nil {
					return nil, nil, err
				}
				items := make([]runtime.Object, len(l.Items))
				for i := range l.Items {
					items[i] = &l.Items[i]
				}
				return l, items, nil
			})
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return cs.RbacV1().ClusterRoleBindings().Watch(ctx, opts)
		},
	}}
	rbs := pagedListWatch{&toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, _ metav1.ListOptions) (runtime.Object, error) {
			return pagedList(ctx, func(ctx context.Context, opts metav1.ListOptions) (metav1.ListInterface, []runtime.Object, error) {
				l, err := cs.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, opts)
				if err != nil {
					return nil, nil, err
				}
				items := make([]runtime.Object, len(l.Items))
				for i := range l.Items {
					items[i] = &l.Items[i]
				}
				return l, items, nil
			})
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return cs.RbacV1().RoleBindings(metav1.NamespaceAll).Watch(ctx, opts)
		},
	}}
	for _, r := range []*toolscache.Reflector{
		toolscache.NewReflectorWithOptions(crbs, &rbacv1.ClusterRoleBinding{}, w.crbs, toolscache.ReflectorOptions{Name: "outside-clusterrolebindings"}),
		toolscache.NewReflectorWithOptions(rbs, &rbacv1.RoleBinding{}, w.rbs, toolscache.ReflectorOptions{Name: "outside-rolebindings"}),
	} {
		go r.RunWithContext(ctx)
	}
	close(w.started)
	return nil
}

// listPageSize is how many bindings one list request returns: the most
// decoded bindings the watch holds at once.
const listPageSize = 500

// pagedListWatch lists with pagedList. It tells the reflector not to use
// the streaming list (WatchList): that keeps every object of the initial
// state in a temporary store until the last has arrived, and measured
// (docs/performance.md) it cost the restart ~9 MiB more than this.
type pagedListWatch struct{ *toolscache.ListWatch }

func (pagedListWatch) IsWatchListSemanticsUnSupported() bool { return true }

// pagedList lists every binding, page by page (a consistent snapshot:
// every page has the first one's resourceVersion), compacting each page
// into a new roleSets before the next is requested. It returns the
// roleSets inside a metav1.List, which the reflector hands to Replace as
// it is, with the snapshot's resourceVersion to watch from.
func pagedList(ctx context.Context, page func(context.Context, metav1.ListOptions) (metav1.ListInterface, []runtime.Object, error)) (runtime.Object, error) {
	set := newRoleSets()
	opts := metav1.ListOptions{Limit: listPageSize}
	for {
		meta, items, err := page(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, obj := range items {
			c, err := compact(obj)
			if err != nil {
				return nil, err
			}
			set.insert(c.(*compactBinding))
		}
		if meta.GetContinue() == "" {
			return &metav1.List{ListMeta: metav1.ListMeta{ResourceVersion: meta.GetResourceVersion()}, Items: []runtime.RawExtension{{Object: set}}}, nil
		}
		opts.Continue = meta.GetContinue()
	}
}

// WaitForSync returns once both reflectors delivered their initial state:
// the controller's workers (which judge from it) start only then.
func (w *outsideWatch) WaitForSync(ctx context.Context) error {
	select {
	case <-w.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, ix := range []*roleIndex{w.crbs, w.rbs} {
		select {
		case <-ix.synced:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the bindings watch to sync: %w", ctx.Err())
		}
	}
	return nil
}

func (w *outsideWatch) String() string { return "outside bindings watch" }

// bindingKey names a binding of one kind (namespace "" for a
// ClusterRoleBinding).
type bindingKey struct{ Namespace, Name string }

// bindingEntry is one binding of a role as the watch last saw it.
type bindingEntry struct {
	bindingKey
	ResourceVersion string
}

// lookup returns the bindings that grant ref, as the watch last saw them:
// ClusterRoleBindings first, then RoleBindings.
func (w *outsideWatch) lookup(ref pimv1.RoleSettingRoleRef) (crbs, rbs []bindingEntry) {
	key := roleKeyOf(ref)
	crbs = w.crbs.bindingsOf(key, "")
	if ref.Kind == pimv1.RoleKindClusterRole {
		// As the periodic list did: a ClusterRole's setting with a
		// namespace looks at RoleBindings there only.
		return crbs, w.rbs.bindingsOf(key, ref.Namespace)
	}
	return nil, w.rbs.bindingsOf(key, "")
}

// governingKey maps the key of a role kubepim generated for a
// reduced-scope activation to the key of the activation's role, whose
// RoleSettings judge the bindings of both; any other key is its own.
func (w *outsideWatch) governingKey(ctx context.Context, key string) string {
	kind, rest, _ := strings.Cut(key, "/")
	namespace, name, _ := strings.Cut(rest, "/")
	if !strings.HasPrefix(name, grant.ScopedRolePrefix) {
		return key
	}
	var role client.Object = &rbacv1.ClusterRole{}
	if kind == pimv1.RoleKindRole {
		role = &rbacv1.Role{}
	}
	if err := w.reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, role); err != nil {
		return key
	}
	owner := grant.OwnerName(role, "ActivationRequest")
	if owner == "" {
		return key
	}
	ar := &pimv1.ActivationRequest{}
	if err := w.reader.Get(ctx, client.ObjectKey{Name: owner}, ar); err != nil || grant.ScopedRoleName(ar) != name {
		return key
	}
	return lookup.SettingKey(policy.SettingRoleRef(ar.Spec.RoleRef, ar.Spec.Namespace))
}

// roleKeyOf is the RoleSetting index key of the role a setting governs.
func roleKeyOf(ref pimv1.RoleSettingRoleRef) string {
	return lookup.SettingKey(policy.SettingRoleRef(pimv1.RoleRef{Kind: ref.Kind, Name: ref.Name}, ref.Namespace))
}

// roleIndex is a client-go reflector store that keeps, per role, the
// bindings granting it: name, namespace and resourceVersion, nothing else.
// roleRef is immutable, so a binding's role only changes by a delete and a
// create, each of which comes as its own event.
type roleIndex struct {
	kind string // for the gauge
	mu   sync.RWMutex
	set  *roleSets
	// onChange is called (outside the lock) with the role key of every
	// binding added, changed or removed.
	onChange   func(roleKey string)
	synced     chan struct{}
	syncedOnce sync.Once
}

func newRoleIndex(kind string) *roleIndex {
	return &roleIndex{kind: kind, set: newRoleSets(), synced: make(chan struct{})}
}

// roleSets is the content of a roleIndex.
type roleSets struct {
	roles  map[string]map[bindingKey]string // role key → binding → resourceVersion
	spaces map[string]string                // namespace names, shared by every entry
	count  int
}

func newRoleSets() *roleSets {
	return &roleSets{roles: map[string]map[bindingKey]string{}, spaces: map[string]string{}}
}

// insert adds or updates b and reports whether it is new.
func (s *roleSets) insert(b *compactBinding) bool {
	if ns, ok := s.spaces[b.key.Namespace]; ok {
		b.key.Namespace = ns
	} else {
		s.spaces[b.key.Namespace] = b.key.Namespace
	}
	set := s.roles[b.role]
	if set == nil {
		set = map[bindingKey]string{}
		s.roles[b.role] = set
	}
	_, had := set[b.key]
	set[b.key] = b.rv
	if !had {
		s.count++
	}
	return !had
}

func (s *roleSets) remove(b *compactBinding) {
	set := s.roles[b.role]
	if _, had := set[b.key]; !had {
		return
	}
	delete(set, b.key)
	if len(set) == 0 {
		delete(s.roles, b.role)
	}
	s.count--
}

// A roleSets travels from the list function (pagedList) to Replace inside
// a metav1.List, as a runtime.Object.
func (s *roleSets) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject returns s itself: it is handed over once, never shared.
func (s *roleSets) DeepCopyObject() runtime.Object { return s }

var watchedBindings = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "kubepim_watched_bindings",
	Help: "Bindings of every role held (compactly) by the outside-bindings watch, by kind.",
}, []string{"kind"})

func init() { metrics.Registry.MustRegister(watchedBindings) }

func (ix *roleIndex) setGauge() { watchedBindings.WithLabelValues(ix.kind).Set(float64(ix.set.count)) }

// compactBinding is what the reflector's stores hold of a binding: the
// transform below turns each decoded object into one as it arrives.
type compactBinding struct {
	key  bindingKey
	rv   string
	role string
}

// compact reduces a decoded binding to its compactBinding.
func compact(obj interface{}) (interface{}, error) {
	switch b := obj.(type) {
	case *compactBinding:
		return b, nil
	case *rbacv1.ClusterRoleBinding:
		return &compactBinding{key: bindingKey{Name: b.Name}, rv: b.ResourceVersion, role: bindingRoleKey(b.RoleRef, "")}, nil
	case *rbacv1.RoleBinding:
		return &compactBinding{key: bindingKey{Namespace: b.Namespace, Name: b.Name}, rv: b.ResourceVersion, role: bindingRoleKey(b.RoleRef, b.Namespace)}, nil
	case toolscache.DeletedFinalStateUnknown:
		return compact(b.Obj)
	}
	return nil, fmt.Errorf("not a binding: %T", obj)
}

// bindingRoleKey is the RoleSetting index key of the role a binding in
// namespace grants.
func bindingRoleKey(ref rbacv1.RoleRef, namespace string) string {
	return lookup.SettingKey(policy.SettingRoleRef(pimv1.RoleRef{Kind: ref.Kind, Name: ref.Name}, namespace))
}

func (ix *roleIndex) Add(obj interface{}) error    { return ix.put(obj) }
func (ix *roleIndex) Update(obj interface{}) error { return ix.put(obj) }

func (ix *roleIndex) put(obj interface{}) error {
	c, err := compact(obj)
	if err != nil {
		return err
	}
	b := c.(*compactBinding)
	ix.mu.Lock()
	ix.set.insert(b)
	ix.setGauge()
	ix.mu.Unlock()
	ix.changed(b.role)
	return nil
}

func (ix *roleIndex) Delete(obj interface{}) error {
	c, err := compact(obj)
	if err != nil {
		return err
	}
	b := c.(*compactBinding)
	ix.mu.Lock()
	ix.set.remove(b)
	ix.setGauge()
	ix.mu.Unlock()
	ix.changed(b.role)
	return nil
}

// Replace installs a complete new state (the initial list, or a relist
// after the watch lost its place) and reports every role whose bindings
// differ from before: what changed while nobody watched. The list is the
// one roleSets pagedList built, or (should a reflector stream it) the
// bindings one by one.
func (ix *roleIndex) Replace(list []interface{}, _ string) error {
	next, ok := (*roleSets)(nil), false
	if len(list) == 1 {
		next, ok = list[0].(*roleSets)
	}
	if !ok {
		next = newRoleSets()
		for _, obj := range list {
			c, err := compact(obj)
			if err != nil {
				return err
			}
			next.insert(c.(*compactBinding))
		}
	}
	ix.mu.Lock()
	var changed []string
	for role, set := range next.roles {
		if !maps.Equal(set, ix.set.roles[role]) {
			changed = append(changed, role)
		}
	}
	for role := range ix.set.roles {
		if _, ok := next.roles[role]; !ok {
			changed = append(changed, role)
		}
	}
	ix.set = next
	ix.setGauge()
	ix.mu.Unlock()
	ix.syncedOnce.Do(func() { close(ix.synced) })
	for _, role := range changed {
		ix.changed(role)
	}
	return nil
}

func (ix *roleIndex) Resync() error { return nil }

func (ix *roleIndex) changed(role string) {
	if ix.onChange != nil {
		ix.onChange(role)
	}
}

// bindingsOf lists the bindings of a role, in namespace when it is not "".
func (ix *roleIndex) bindingsOf(role, namespace string) []bindingEntry {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []bindingEntry
	for k, rv := range ix.set.roles[role] {
		if namespace == "" || k.Namespace == namespace {
			out = append(out, bindingEntry{bindingKey: k, ResourceVersion: rv})
		}
	}
	return out
}
