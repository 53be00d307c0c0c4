package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/lookup"
	"github.com/kubepim/kubepim/internal/notify"
	"github.com/kubepim/kubepim/internal/policy"
)

// DefaultNotificationMaxAge is how old an event may be and still be
// notified. It keeps a manager that starts on a cluster with history from
// announcing last month's activations, and it must stay below the
// notification retention, or a Notification deleted after its retention
// would be created, and sent, again.
const DefaultNotificationMaxAge = 24 * time.Hour

// Notifier turns what has happened to ActivationRequests and
// RoleAssignments, as their status tells, into Notifications: one per
// event, audience and channel, under a name derived from them, so that
// looking again (after a restart, or on the next change) finds it made and
// makes nothing twice. It only writes Notifications: sending is the
// NotificationReconciler's, so a slow channel never holds up access.
type Notifier struct {
	client.Client
	// Directory is where people's addresses are.
	Directory notify.DirectorySource
	// EmailClaim is the user-extra key carrying a requester's address.
	EmailClaim string
	// ConsoleURL, when set, is the console's URL: messages link to the
	// request's page (an assignment's: My roles).
	ConsoleURL string
	// MaxAge bounds how old an event may be and still be notified.
	MaxAge time.Duration
	// Clock is the source of "now".
	Clock clock.PassiveClock
	// Namespace is kubepim's own namespace.
	Namespace string
	// Controller configures the controller (workers; the tests' queue that
	// follows a fake clock).
	Controller controller.Options
}

// +kubebuilder:rbac:groups=kubepim.io,resources=notifications,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=kubepim.io,resources=notificationchannels,verbs=get;list;watch

// ReconcileActivation announces what has happened to one ActivationRequest.
func (n *Notifier) ReconcileActivation(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	now := n.Clock.Now()
	if on, err := n.notifying(ctx); err != nil || !on {
		return reconcile.Result{}, err
	}
	ar := &pimv1.ActivationRequest{}
	if err := n.Get(ctx, req.NamespacedName, ar); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if ar.Spec.Requester == nil {
		return reconcile.Result{}, nil
	}
	setting, err := n.setting(ctx, ar.Spec.RoleRef, ar.Spec.Namespace)
	if err != nil {
		return reconcile.Result{}, err
	}
	_, reminders := policy.Reminders(setting.Notifications)
	occurrences, next := policy.ActivationOccurrences(ar, reminders, now)
	src := &notifySource{
		obj: ar, kind: "ActivationRequest", setting: setting,
		requester: func(dir notify.Directory) notify.Addresses {
			return requesterAddresses(dir, *ar.Spec.Requester, n.EmailClaim)
		},
		content: func(occ policy.Occurrence, audience string) notify.Content {
			c := notify.ActivationContent(ar, occ, audience)
			c.ConsoleLink(n.ConsoleURL, notify.RequestPath(ar.Name))
			return c
		},
	}
	if err := n.announce(ctx, src, occurrences, now); err != nil {
		return reconcile.Result{}, err
	}
	return untilReminder(now, next), nil
}

// ReconcileAssignment announces what has happened to one RoleAssignment.
func (n *Notifier) ReconcileAssignment(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	now := n.Clock.Now()
	if on, err := n.notifying(ctx); err != nil || !on {
		return reconcile.Result{}, err
	}
	ra := &pimv1.RoleAssignment{}
	if err := n.Get(ctx, req.NamespacedName, ra); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	setting, err := n.setting(ctx, ra.Spec.RoleRef, ra.Spec.Namespace)
	if err != nil {
		return reconcile.Result{}, err
	}
	reminders, _ := policy.Reminders(setting.Notifications)
	occurrences, next := policy.AssignmentOccurrences(ra, reminders, now)
	src := &notifySource{
		obj: ra, kind: "RoleAssignment", setting: setting,
		requester: func(dir notify.Directory) notify.Addresses { return subjectAddresses(dir, ra.Spec.Subject) },
		content: func(occ policy.Occurrence, audience string) notify.Content {
			c := notify.AssignmentContent(ra, occ, audience)
			c.ConsoleLink(n.ConsoleURL, "/roles")
			return c
		},
	}
	if err := n.announce(ctx, src, occurrences, now); err != nil {
		return reconcile.Result{}, err
	}
	return untilReminder(now, next), nil
}

// notifying reports whether any NotificationChannel exists: without one
// there is nobody to tell, and the notifier does no work at all. Creating
// the first channel looks at every object again (SetupWithManager).
func (n *Notifier) notifying(ctx context.Context) (bool, error) {
	var channels pimv1.NotificationChannelList
	if err := n.List(ctx, &channels); err != nil {
		return false, err
	}
	return len(channels.Items) > 0, nil
}

// setting is the role's policy; when two RoleSettings conflict, nobody
// can say whose notification policy applies, and the defaults do.
func (n *Notifier) setting(ctx context.Context, roleRef pimv1.RoleRef, namespace string) (pimv1.RoleSettingSpec, error) {
	setting, _, err := lookup.EffectiveSetting(ctx, n.Client, roleRef, namespace)
	var conflict *policy.ErrConflictingSettings
	if errors.As(err, &conflict) {
		return pimv1.RoleSettingSpec{}, nil
	}
	return setting, err
}

// untilReminder comes back when the next reminder is due, however far
// ahead: changes to the object arrive by watch, so there is nothing to poll
// for in between.
func untilReminder(now, next time.Time) reconcile.Result {
	if next.IsZero() {
		return reconcile.Result{}
	}
	return reconcile.Result{RequeueAfter: max(next.Sub(now), time.Nanosecond)}
}

// notifySource is what the notifier needs of an object events happen to.
type notifySource struct {
	obj     client.Object
	kind    string
	setting pimv1.RoleSettingSpec
	// requester returns the requester's or assignee's addresses.
	requester func(notify.Directory) notify.Addresses
	content   func(occ policy.Occurrence, audience string) notify.Content
}

// route is one channel an audience is reached on.
type route struct {
	channel string
	// mail is set for the email channel: the recipients' addresses.
	mail func(notify.Directory) notify.Addresses
}

// announce makes the Notifications of each occurrence that are not made
// yet. Events older than MaxAge are history, not news.
func (n *Notifier) announce(ctx context.Context, src *notifySource, occurrences []policy.Occurrence, now time.Time) error {
	p := src.setting.Notifications
	var dir *notify.Directory
	for _, occ := range occurrences {
		if now.Sub(occ.At) > n.maxAge() {
			continue
		}
		for _, audience := range policy.Notified(p, occ.Event) {
			for _, rt := range n.routes(src, audience) {
				name := notificationName(src.obj.GetUID(), occ, audience, rt.channel)
				first, err := n.made(ctx, name)
				if err != nil {
					return err
				}
				// A mail to more than notify.MaxRecipients people is
				// split over several Notifications (the first under the
				// plain name); only a full first one can have followers.
				if first != nil && (rt.mail == nil || len(first.Spec.To) < notify.MaxRecipients) {
					continue
				}
				ch := &pimv1.NotificationChannel{}
				if err := n.Get(ctx, types.NamespacedName{Name: rt.channel}, ch); apierrors.IsNotFound(err) {
					continue // nobody set this channel up: nothing to send
				} else if err != nil {
					return err
				}
				if (rt.mail != nil) != (ch.Spec.Type == pimv1.ChannelSMTP) {
					logf.FromContext(ctx).Info("notification channel of the wrong type skipped", "channel", rt.channel, "type", ch.Spec.Type, "mail", rt.mail != nil)
					continue
				}
				if rt.mail == nil {
					if err := n.create(ctx, n.notification(src, occ, audience, rt.channel, name)); err != nil {
						return err
					}
					continue
				}
				if dir == nil {
					d, err := n.Directory.Load(ctx)
					if err != nil {
						return err
					}
					dir = &d
				}
				addrs := rt.mail(*dir)
				if len(addrs.To) == 0 && len(addrs.Unreachable) == 0 {
					continue
				}
				for i, batch := range addrs.Batches() {
					bn := notify.BatchName(name, i)
					if i > 0 {
						if made, err := n.made(ctx, bn); err != nil {
							return err
						} else if made != nil {
							continue
						}
					} else if first != nil {
						continue
					}
					note := n.notification(src, occ, audience, rt.channel, bn)
					note.Spec.To, note.Spec.Unreachable = batch.To, batch.Unreachable
					if err := n.create(ctx, note); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (n *Notifier) create(ctx context.Context, note *pimv1.Notification) error {
	if err := n.Create(ctx, note); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// routes are the channels an audience is reached on: mail through the
// policy's email channel, and the chat channels the policy lists.
func (n *Notifier) routes(src *notifySource, audience string) []route {
	p := src.setting.Notifications
	email := policy.EmailChannel(p)
	var out []route
	switch audience {
	case pimv1.AudienceAdmins:
		if len(p.Admins.Emails) > 0 {
			out = append(out, route{channel: email, mail: func(notify.Directory) notify.Addresses {
				var a notify.Addresses
				for _, addr := range p.Admins.Emails {
					a.Add(addr)
				}
				return a
			}})
		}
		for _, ch := range p.Admins.Channels {
			out = append(out, route{channel: ch})
		}
	case pimv1.AudienceRequester:
		out = append(out, route{channel: email, mail: src.requester})
	case pimv1.AudienceApprovers:
		out = append(out, route{channel: email, mail: func(dir notify.Directory) notify.Addresses {
			a := principalAddresses(dir, src.setting.Activation.Approval.Approvers)
			for _, addr := range p.Approvers.Emails {
				a.Add(addr)
			}
			// The requester cannot approve their own request.
			for _, addr := range src.requester(dir).To {
				a.Remove(addr)
			}
			return a
		}})
		for _, ch := range p.Approvers.Channels {
			out = append(out, route{channel: ch})
		}
	}
	return out
}

// made returns the Notification called name, nil when there is none.
func (n *Notifier) made(ctx context.Context, name string) (*pimv1.Notification, error) {
	note := &pimv1.Notification{}
	err := n.Get(ctx, types.NamespacedName{Namespace: n.Namespace, Name: name}, note)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return note, nil
}

func (n *Notifier) notification(src *notifySource, occ policy.Occurrence, audience, channel, name string) *pimv1.Notification {
	c := src.content(occ, audience)
	note := &pimv1.Notification{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: n.Namespace,
			Labels: map[string]string{pimv1.LabelChannel: channel, pimv1.LabelManagedBy: pimv1.ManagedByValue},
		},
		Spec: pimv1.NotificationSpec{
			Event: occ.Event, Audience: audience, Critical: trueOrNil(policy.IsCriticalEvent(occ.Event)), Channel: channel,
			Source:     pimv1.AuditObjectReference{Kind: src.kind, Name: src.obj.GetName(), UID: string(src.obj.GetUID())},
			OccurredAt: metav1.NewTime(occ.At), Title: c.Title, Facts: c.Facts, Actions: c.Actions,
		},
	}
	// Garbage collection removes the Notifications of a removed object (in
	// a cluster that runs kube-controller-manager); retention does the rest.
	_ = controllerutil.SetOwnerReference(src.obj, note, n.Scheme())
	return note
}

// notificationName is derived from what is announced to whom where: the
// same occurrence always yields the same name.
func notificationName(uid types.UID, occ policy.Occurrence, audience, channel string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{string(uid), occ.Event, occ.Key, audience, channel}, "/")))
	return strings.ToLower(occ.Event) + "-" + hex.EncodeToString(sum[:])[:20]
}

func (n *Notifier) maxAge() time.Duration {
	if n.MaxAge <= 0 {
		return DefaultNotificationMaxAge
	}
	return n.MaxAge
}

// requesterAddresses is the address the requester's identity provider
// gave at request time, else the directory's.
func requesterAddresses(dir notify.Directory, user pimv1.UserInfo, emailClaim string) notify.Addresses {
	var a notify.Addresses
	if claim := user.Extra[emailClaim]; emailClaim != "" && len(claim) > 0 && claim[0] != "" {
		a.Add(claim[0])
	} else if addr, ok := dir.User(user.Username); ok {
		a.Add(addr)
	} else {
		a.Missing(user.Username)
	}
	return a
}

// subjectAddresses are an assignee's: a user's, or a group's members'. A
// ServiceAccount has none, and is not missed.
func subjectAddresses(dir notify.Directory, s pimv1.Subject) notify.Addresses {
	switch s.Kind {
	case pimv1.SubjectKindUser:
		return principalAddresses(dir, []pimv1.Principal{{Kind: pimv1.SubjectKindUser, Name: s.Name}})
	case pimv1.SubjectKindGroup:
		return principalAddresses(dir, []pimv1.Principal{{Kind: pimv1.SubjectKindGroup, Name: s.Name}})
	}
	return notify.Addresses{}
}

func principalAddresses(dir notify.Directory, principals []pimv1.Principal) notify.Addresses {
	var a notify.Addresses
	for _, p := range principals {
		switch p.Kind {
		case pimv1.SubjectKindGroup:
			members := dir.Group(p.Name)
			if len(members) == 0 {
				a.Missing("group " + p.Name)
			}
			for _, addr := range members {
				a.Add(addr)
			}
		default:
			if addr, ok := dir.User(p.Name); ok {
				a.Add(addr)
			} else {
				a.Missing(p.Name)
			}
		}
	}
	return a
}

// SetupWithManager runs one controller per source kind. Only changes of
// spec or status can make news: metadata-only updates are not looked at.
// A new channel makes every object be looked at again, so that reminders
// due after its creation are sent.
func (n *Notifier) SetupWithManager(mgr manager.Manager) error {
	news := predicate.Or(predicate.GenerationChangedPredicate{}, statusChanged)
	channelCreated := ctrl.WithPredicates(predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return true },
		UpdateFunc: func(event.UpdateEvent) bool { return false },
		DeleteFunc: func(event.DeleteEvent) bool { return false },
	})
	if err := ctrl.ControllerManagedBy(mgr).
		Named("notify-activationrequest").
		For(&pimv1.ActivationRequest{}, ctrl.WithPredicates(news)).
		Watches(&pimv1.NotificationChannel{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
			var list pimv1.ActivationRequestList
			if err := n.List(ctx, &list); err != nil {
				return nil
			}
			var reqs []reconcile.Request
			for _, ar := range list.Items {
				if !policy.IsFinal(ar.Status.State) {
					reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: ar.Name}})
				}
			}
			return reqs
		}), channelCreated).
		WithOptions(n.Controller).
		Complete(reconcile.Func(n.ReconcileActivation)); err != nil {
		return err
	}
	return ctrl.ControllerManagedBy(mgr).
		Named("notify-roleassignment").
		For(&pimv1.RoleAssignment{}, ctrl.WithPredicates(news)).
		Watches(&pimv1.NotificationChannel{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
			var list pimv1.RoleAssignmentList
			if err := n.List(ctx, &list); err != nil {
				return nil
			}
			reqs := make([]reconcile.Request, 0, len(list.Items))
			for _, ra := range list.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: ra.Name}})
			}
			return reqs
		}), channelCreated).
		WithOptions(n.Controller).
		Complete(reconcile.Func(n.ReconcileAssignment))
}

// statusChanged passes updates that changed an object's status.
var statusChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	switch o := e.ObjectNew.(type) {
	case *pimv1.ActivationRequest:
		old, ok := e.ObjectOld.(*pimv1.ActivationRequest)
		return !ok || !equality.Semantic.DeepEqual(old.Status, o.Status)
	case *pimv1.RoleAssignment:
		old, ok := e.ObjectOld.(*pimv1.RoleAssignment)
		return !ok || !equality.Semantic.DeepEqual(old.Status, o.Status)
	}
	return true
}}

// trueOrNil is a *bool that is serialized only when true, as an omitempty
// bool was.
func trueOrNil(b bool) *bool {
	if b {
		return ptr.To(true)
	}
	return nil
}
