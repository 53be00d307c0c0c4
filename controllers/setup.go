// Package controllers holds kubepim's reconcilers, one per kind.
package controllers

import (
	"cmp"
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/approval"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/grant"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/notify"
)

// DefaultMaxRequeue caps how long a reconciler waits before looking at an
// object again when nothing is due sooner: a missed watch event heals within
// this time. Deadlines closer than this are hit exactly.
const DefaultMaxRequeue = 5 * time.Minute

// CacheOptions restricts the manager's cache of RoleBindings and
// ClusterRoleBindings to the ones kubepim manages: a large cluster has many
// bindings kubepim never needs to hold in memory. Nothing in kubepim reads
// managedFields, so the cache drops them: they are a large share of each
// cached object (and an update that omits them keeps them on the server).
//
// Secrets are cached only when they are TOTP enrollments (by label) in
// kubepim's namespace: the manager must never hold other Secrets of the
// cluster, nor even its own signing key, in memory (and its RBAC lets it
// list and watch Secrets in that namespace only).
func CacheOptions(namespace string) cache.Options {
	managed := labels.SelectorFromSet(labels.Set{pimv1.LabelManagedBy: pimv1.ManagedByValue})
	enrollments := labels.SelectorFromSet(labels.Set{mfa.LabelTOTPEnrollment: "true"})
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&rbacv1.ClusterRoleBinding{}: {Label: managed},
			&rbacv1.RoleBinding{}:        {Label: managed},
			&corev1.Secret{}:             {Namespaces: map[string]cache.Config{namespace: {}}, Label: enrollments, Transform: dropSecretData},
			// Roles are cached for their rules: the authorizer reads them
			// at each request (--access-mode=authorizer), and a
			// reduced-scope activation is checked against its role's
			// whenever the role changes. Only what those read is kept.
			&rbacv1.ClusterRole{}: {Transform: keepRoleRules},
			&rbacv1.Role{}:        {Transform: keepRoleRules},
		},
	}
}

// keepRoleRules keeps of a cached Role or ClusterRole its identity, rules
// and aggregation rule: annotations (a kubectl apply's last-applied copy
// of the whole role), labels and owner references are dropped — but for
// the labels and owner-name annotation of a role kubepim generated for a
// reduced-scope activation, which say whose it is.
func keepRoleRules(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	var labels, annotations map[string]string
	if o.GetLabels()[pimv1.LabelManagedBy] == pimv1.ManagedByValue {
		labels = o.GetLabels()
		if name, ok := o.GetAnnotations()[pimv1.AnnotationOwnerName]; ok {
			annotations = map[string]string{pimv1.AnnotationOwnerName: name}
		}
	}
	switch r := obj.(type) {
	case *rbacv1.ClusterRole:
		r.Annotations, r.Labels, r.ManagedFields, r.OwnerReferences = annotations, labels, nil, nil
	case *rbacv1.Role:
		r.Annotations, r.Labels, r.ManagedFields, r.OwnerReferences = annotations, labels, nil, nil
	}
	return obj, nil
}

// dropSecretData keeps TOTP keys out of the manager's memory: the audit
// reconciler reads only annotations, and the webhook reads enrollments
// from the API server. Nothing may update a Secret read from the cache:
// the update would erase its data.
func dropSecretData(obj any) (any, error) {
	if s, ok := obj.(*corev1.Secret); ok {
		s.Data, s.StringData, s.ManagedFields = nil, nil, nil
	}
	return obj, nil
}

// DefaultAuditRetention is how long AuditEvents are kept.
const DefaultAuditRetention = 90 * 24 * time.Hour

// auditPruneInterval is how often events past their retention are pruned.
const auditPruneInterval = time.Hour

// DefaultMaxConcurrentReconciles is how many objects of one kind are
// reconciled at once. The work queue never hands the same object to two
// workers, so this only lets independent objects proceed side by side: an
// expiry due now does not wait behind other requests' grants.
const DefaultMaxConcurrentReconciles = 4

// Options configure kubepim's reconcilers; withDefaults fills in what is
// left zero, and each reconciler takes by name the values it uses.
type Options struct {
	// Clock is the source of "now" for every decision; tests pass a fake.
	Clock clock.PassiveClock
	// ActivationRetention is how long ended ActivationRequests are kept
	// (DefaultActivationRetention when zero).
	ActivationRetention time.Duration
	// AuditRetention is how long AuditEvents are kept
	// (DefaultAuditRetention when zero).
	AuditRetention time.Duration
	// AuditSinkURL, when set, receives a JSON copy of every audit event.
	AuditSinkURL string
	// Namespace holds kubepim's own Secrets and ConfigMaps.
	Namespace string
	// MaxRequeue caps requeue delays (DefaultMaxRequeue when zero).
	MaxRequeue time.Duration
	// Audit records every action (a recorder on the manager's client when
	// nil).
	Audit *audit.Recorder
	// UserDirectory is where people's email addresses are:
	// "configmap/NAME" or "secret/NAME" in Namespace
	// (notify.DefaultDirectory when empty).
	UserDirectory string
	// EmailClaim is the user-extra key that carries a requester's address
	// at request time (notify.DefaultEmailClaim when empty).
	EmailClaim string
	// ConsoleURL is the web console's URL (--console-url): notifications
	// link to the request's page there. Empty: no links.
	ConsoleURL string
	// NotificationMaxAge: older events are not notified
	// (DefaultNotificationMaxAge when zero).
	NotificationMaxAge time.Duration
	// NotificationRetention: how long finished Notifications are kept
	// (DefaultNotificationRetention when zero).
	NotificationRetention time.Duration
	// NotificationGiveUp: how long delivery is retried
	// (DefaultNotificationGiveUp when zero).
	NotificationGiveUp time.Duration
	// AccessMode is --access-mode: in authorizer mode activations get no
	// binding (AccessModeBindings when empty).
	AccessMode grant.AccessMode
	// Controller options for every controller (tests install a queue whose
	// delays follow the fake clock). MaxConcurrentReconciles defaults to
	// DefaultMaxConcurrentReconciles.
	Controller controller.Options
}

// withDefaults fills in every default, in this one place: each reconciler
// then takes, by name, exactly the values it uses.
func (o Options) withDefaults() (Options, error) {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Controller.MaxConcurrentReconciles <= 0 {
		o.Controller.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	o.MaxRequeue = cmp.Or(o.MaxRequeue, DefaultMaxRequeue)
	o.AccessMode = cmp.Or(o.AccessMode, grant.AccessModeBindings)
	o.ActivationRetention = cmp.Or(o.ActivationRetention, DefaultActivationRetention)
	o.AuditRetention = cmp.Or(o.AuditRetention, DefaultAuditRetention)
	o.NotificationMaxAge = cmp.Or(o.NotificationMaxAge, DefaultNotificationMaxAge)
	o.NotificationRetention = cmp.Or(o.NotificationRetention, DefaultNotificationRetention)
	o.NotificationGiveUp = cmp.Or(o.NotificationGiveUp, DefaultNotificationGiveUp)
	o.UserDirectory = cmp.Or(o.UserDirectory, notify.DefaultDirectory)
	o.EmailClaim = cmp.Or(o.EmailClaim, notify.DefaultEmailClaim)
	if o.NotificationRetention <= o.NotificationMaxAge {
		return o, fmt.Errorf("the notification retention (%s) must be longer than the notification max age (%s): "+
			"a record deleted while its event still counts as news would be sent again", o.NotificationRetention, o.NotificationMaxAge)
	}
	return o, nil
}

// SetupWithManager registers indexes and every kubepim reconciler.
func SetupWithManager(ctx context.Context, mgr manager.Manager, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := lookup.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	syncer := &grant.Syncer{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}
	if opts.Audit == nil {
		direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper()})
		if err != nil {
			return err
		}
		opts.Audit = &audit.Recorder{Client: direct, Clock: opts.Clock, Log: mgr.GetLogger().WithName("audit")}
		if opts.AuditSinkURL != "" {
			opts.Audit.Sink = audit.NewSink(opts.AuditSinkURL, 10000, mgr.GetLogger().WithName("audit-sink"))
			if err := mgr.Add(opts.Audit.Sink); err != nil {
				return err
			}
		}
	}
	keys := &approval.Keys{Client: opts.Audit.Client, Namespace: opts.Namespace}
	if err := (&RoleAssignmentReconciler{
		Client: mgr.GetClient(), Bindings: syncer, Recorder: eventRecorder(mgr, "kubepim-roleassignment"),
		Clock: opts.Clock, Audit: opts.Audit, MaxRequeue: opts.MaxRequeue, Controller: opts.Controller,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&ActivationRequestReconciler{
		Client: mgr.GetClient(), Bindings: syncer, Keys: keys, Recorder: eventRecorder(mgr, "kubepim-activationrequest"),
		Retention: opts.ActivationRetention, AccessMode: opts.AccessMode,
		Clock: opts.Clock, Audit: opts.Audit, MaxRequeue: opts.MaxRequeue, Controller: opts.Controller,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&AccessReviewReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Keys: keys, Recorder: eventRecorder(mgr, "kubepim-accessreview"),
		Clock: opts.Clock, Audit: opts.Audit, MaxRequeue: opts.MaxRequeue, Controller: opts.Controller,
		UsageTracked: !opts.AccessMode.BindsActivations(),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&AccessReviewItemReconciler{
		Client: mgr.GetClient(), Keys: keys, Recorder: eventRecorder(mgr, "kubepim-accessreview"),
		Clock: opts.Clock, Audit: opts.Audit, Controller: opts.Controller,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := setupNotifications(mgr, opts); err != nil {
		return err
	}
	if err := (&TOTPAuditReconciler{
		Client: mgr.GetClient(), Audit: opts.Audit, Namespace: opts.Namespace, Controller: opts.Controller,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.Add(auditPruner(opts)); err != nil {
		return err
	}
	return (&RoleSettingReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: eventRecorder(mgr, "kubepim-rolesetting"), Keys: keys,
		Clock: opts.Clock, Audit: opts.Audit, MaxRequeue: opts.MaxRequeue, Controller: opts.Controller,
	}).SetupWithManager(mgr)
}

// setupNotifications registers the notifier, delivery and channel
// controllers.
func setupNotifications(mgr manager.Manager, opts Options) error {
	if err := (&Notifier{
		Client:     mgr.GetClient(),
		Directory:  notify.DirectorySource{Reader: mgr.GetAPIReader(), Namespace: opts.Namespace, Ref: opts.UserDirectory},
		EmailClaim: opts.EmailClaim,
		ConsoleURL: opts.ConsoleURL,
		MaxAge:     opts.NotificationMaxAge,
		Clock:      opts.Clock, Namespace: opts.Namespace, Controller: opts.Controller,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&NotificationReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: eventRecorder(mgr, "kubepim-notification"),
		Retention: opts.NotificationRetention, GiveUp: opts.NotificationGiveUp,
		Clock: opts.Clock, Namespace: opts.Namespace, Controller: opts.Controller,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&NotificationChannelReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: eventRecorder(mgr, "kubepim-notificationchannel"),
		Clock: opts.Clock, Namespace: opts.Namespace, MaxRequeue: opts.MaxRequeue, Controller: opts.Controller,
	}).SetupWithManager(mgr)
}

// auditPruner labels unlabelled audit events and prunes the audit trail
// every hour on the leader.
func auditPruner(opts Options) manager.Runnable {
	retention := opts.AuditRetention
	return manager.RunnableFunc(func(ctx context.Context) error {
		log := logf.FromContext(ctx).WithName("audit-retention")
		wait.UntilWithContext(ctx, func(ctx context.Context) {
			// Events written before kubepim labelled them (an upgrade).
			if n, err := opts.Audit.LabelOld(ctx); err != nil {
				log.Error(err, "labelling old audit events")
			} else if n > 0 {
				log.Info("labelled audit events written before the upgrade", "events", n)
			}
			if n, err := opts.Audit.Prune(ctx, opts.Namespace, retention); err != nil {
				log.Error(err, "pruning the audit trail")
			} else if n > 0 {
				log.Info("pruned audit events past their retention", "events", n, "retention", retention)
			}
		}, auditPruneInterval)
		return nil
	})
}
