package controllers

import (
	"context"
	"strconv"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/controller"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	pimv1 "github.com/kubepim/kubepim/api/v1alpha1"
	"github.com/kubepim/kubepim/internal/audit"
	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

// TOTPAuditReconciler puts refused TOTP attempts into the audit trail. The
// webhook that refuses them runs on every replica, but the hash chain has
// one writer, the leader: so the webhook only notes each refusal in the
// user's enrollment Secret, and this reconciler, on the leader, records
// one MFAFailed event per noted refusal. The event's name is derived from
// the user and the refusal's time, so a refusal seen again (every later
// write of the Secret, a restart, a new leader) is not recorded twice.
//
// The Secret keeps only the newest refusals (policy.TOTPLimit bounds it):
// a refusal pushed out before any leader saw it — possible only after the
// lockout window has passed with no leader running — is not recorded;
// kubepim_totp_failures_total still counts it.
type TOTPAuditReconciler struct {
	// Client reads enrollments from the manager's cache, which holds only
	// labelled Secrets in Namespace (CacheOptions).
	client.Client
	// Audit records every action in the audit trail.
	Audit *audit.Recorder
	// Namespace is kubepim's own namespace.
	Namespace string
	// Controller configures the controller (workers; the tests' queue that
	// follows a fake clock).
	Controller controller.Options
}

// +kubebuilder:rbac:groups=core,namespace=kubepim-system,resources=secrets,verbs=get;list;watch

// Reconcile records the refusals noted in one enrollment Secret.
func (r *TOTPAuditReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	secret := &corev1.Secret{}
	if err := r.Get(ctx, req.NamespacedName, secret); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	user := secret.Annotations[mfa.AnnotationTOTPUser]
	// The webhook only uses the enrollment named after the user; a Secret
	// that names another user than its name says was never used to
	// verify anyone, so what it notes is no one's refusal.
	if user == "" || mfa.TOTPSecretName(user) != secret.Name {
		return reconcile.Result{}, nil
	}
	failures, err := policy.ParseTOTPFailures(secret.Annotations[mfa.AnnotationTOTPFailures])
	if err != nil {
		// The webhook refuses every attempt of this user until an admin
		// repairs the annotation (then this runs again); retrying cannot help.
		logf.FromContext(ctx).Info("malformed TOTP failure annotation; not audited", "secret", req.Name, "error", err.Error())
		return reconcile.Result{}, nil
	}
	for _, f := range failures {
		if err := r.Audit.Record(ctx, mfaFailedEntry(user, f)); err != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, nil
}

// mfaFailedEntry is the audit entry of one refused TOTP attempt. The
// discriminator is the user and the refusal's time in nanoseconds: unique
// per refusal (the webhook stores them at that precision), stable across
// reconciles.
func mfaFailedEntry(user string, f policy.TOTPFailure) audit.Entry {
	e := audit.Entry{
		Action:        pimv1.AuditMFAFailed,
		Actor:         &pimv1.UserInfo{Username: user},
		Outcome:       pimv1.AuditOutcomeFailure,
		Reason:        "wrong one-time code",
		Details:       map[string]string{"method": pimv1.MFAMethodTOTP, "attemptedAt": f.At.UTC().Format(time.RFC3339Nano)},
		Discriminator: user + "\x00" + strconv.FormatInt(f.At.UnixNano(), 10),
	}
	if f.LockedUntil != nil {
		e.Reason = "locked out until " + f.LockedUntil.UTC().Format(time.RFC3339) + " after too many wrong one-time codes"
		e.Details["lockedUntil"] = f.LockedUntil.UTC().Format(time.RFC3339Nano)
		e.Discriminator += "\x00locked"
	}
	if f.DryRun {
		e.Reason += " (server-side dry-run)"
		e.Details["dryRun"] = "true"
	}
	return e
}

// SetupWithManager watches TOTP enrollment Secrets in kubepim's namespace.
// It needs leader election (the controller-runtime default): only the
// leader writes the audit trail.
func (r *TOTPAuditReconciler) SetupWithManager(mgr manager.Manager) error {
	ours := predicate.NewPredicateFuncs(func(obj client.Object) bool {
		return obj.GetNamespace() == r.Namespace && obj.GetLabels()[mfa.LabelTOTPEnrollment] != ""
	})
	return ctrl.ControllerManagedBy(mgr).
		Named("totpaudit").
		For(&corev1.Secret{}, ctrl.WithPredicates(ours)).
		WithOptions(r.Controller).
		Complete(r)
}
