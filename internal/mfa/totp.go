// Package mfa verifies kubepim's built-in TOTP second factor: enrollments
// are Secrets in kubepim's namespace, checked by the admission webhook and
// managed with kubectl pim mfa; wrong codes are limited per user.
package mfa

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kubepim/kubepim/internal/policy"
)

// TOTP enrollments are Secrets in kubepim's namespace, one per user, that
// users have no RBAC to read. The secret key is under SecretKeyTOTP; the
// last time step accepted is kept in an annotation so a code is never
// accepted twice, and the user's recent refused attempts in another, so
// the failure limit holds across replicas and restarts.
const (
	SecretKeyTOTP          = "totp-secret"
	LabelTOTPEnrollment    = "kubepim.io/totp-enrollment"
	AnnotationTOTPUser     = "kubepim.io/totp-user"
	AnnotationTOTPLastStep = "kubepim.io/totp-last-step"
	// AnnotationTOTPFailures holds the user's recent refused attempts
	// (policy.TOTPFailures as JSON), written by the webhook, read by the
	// webhook (the limit) and by the leader (the audit trail).
	AnnotationTOTPFailures = "kubepim.io/totp-failures"
	// AnnotationTOTPEnrolledAt and AnnotationTOTPEnrolledBy say when and
	// by whom the key was made ("kubectl pim mfa enroll"); informational,
	// for "mfa status": the webhook does not read them.
	AnnotationTOTPEnrolledAt = "kubepim.io/totp-enrolled-at"
	AnnotationTOTPEnrolledBy = "kubepim.io/totp-enrolled-by"
	totpPeriod               = 30 * time.Second
	// totpWriteAttempts bounds the read-decide-write rounds of one
	// verification when concurrent attempts keep changing the Secret.
	totpWriteAttempts = 5
)

var totpOpts = totp.ValidateOpts{Period: uint(totpPeriod / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPSecretName is the name of a user's TOTP enrollment Secret. It is a
// hash: usernames may hold characters a Secret name cannot.
func TOTPSecretName(username string) string {
	sum := sha256.Sum256([]byte(username))
	return "kubepim-totp-" + hex.EncodeToString(sum[:])[:32]
}

// ErrTOTP is a code that was refused; its message is safe to show.
var ErrTOTP = errors.New("the one-time code is not valid (wrong, expired or already used); wait for the next code and try again")

// totpFailuresTotal counts refused TOTP attempts: "wrong" codes, and
// attempts refused unchecked because the user was "locked" out.
var totpFailuresTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "kubepim_totp_failures_total",
	Help: "Refused TOTP attempts, by result: wrong (a wrong, expired or replayed code) or locked (refused without checking, the user having reached --totp-max-failures).",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(totpFailuresTotal)
}

// TOTPLockedError refuses an attempt of a user who gave too many wrong
// codes; its message says when to try again.
type TOTPLockedError struct {
	Limit policy.TOTPLimit
	Until time.Time
}

func (e *TOTPLockedError) Error() string {
	return fmt.Sprintf("too many wrong one-time codes (%d within %s): TOTP is locked for you until %s; try again then (every attempt is refused until then, a right code too)",
		e.Limit.MaxFailures, e.Limit.Window, retryTime(e.Until))
}

// retryTime formats the end of a lockout in RFC 3339, rounded up to the
// second: a user who retries at the stated second must not be refused.
func retryTime(until time.Time) string {
	if t := until.Truncate(time.Second); !t.Equal(until) {
		until = t.Add(time.Second)
	}
	return until.UTC().Format(time.RFC3339)
}

// TOTPVerifier checks RFC 6238 codes against users' enrollments.
type TOTPVerifier struct {
	Client    client.Client
	Namespace string
	Clock     clock.PassiveClock
	// Limit bounds wrong codes per user (policy defaults when zero).
	Limit policy.TOTPLimit
}

// Verify checks code for username. Unless dryRun, it records the time step
// it accepted, with an optimistic-concurrency update, so the same code (or
// an earlier one) is refused from then on, even by a concurrent request.
//
// Every refused code is recorded in the enrollment Secret, dry-run or not:
// a server-side dry-run checks a code without using it up, so without that
// it would be an unlimited oracle for guessing. This counter (and the
// lockout entry below) is the one deliberate write a dry-run causes (a
// dry-run with a right code only makes an unchanged, version-conditional
// write; see attempt). The webhook still declares sideEffects
// NoneOnDryRun, because "Some" would make the API server refuse every
// dry-run of an ActivationRequest.
//
// A right code does not reset the count: if it did, a legitimate login
// would hand someone guessing with the same user's credentials a fresh
// set of guesses; as it is, no one gets more than MaxFailures per window.
func (v *TOTPVerifier) Verify(ctx context.Context, username, code string, dryRun bool) error {
	limit := v.Limit.OrDefault()
	for range totpWriteAttempts {
		err := v.attempt(ctx, limit, username, code, dryRun)
		if !apierrors.IsConflict(err) {
			return err
		}
		// Someone else's attempt changed the Secret in between: decide
		// again on what it holds now (it may now be a replay, or locked).
	}
	return errors.New("too many concurrent one-time code attempts; try again with the next code")
}

// attempt is one read-decide-write round of Verify; a conflict on the
// write is returned as is, for Verify to retry.
func (v *TOTPVerifier) attempt(ctx context.Context, limit policy.TOTPLimit, username, code string, dryRun bool) error {
	secret := &corev1.Secret{}
	if err := v.Client.Get(ctx, client.ObjectKey{Namespace: v.Namespace, Name: TOTPSecretName(username)}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%s has no TOTP enrollment; ask a platform admin to enroll you (kubectl pim mfa enroll)", username)
		}
		return err
	}
	if secret.Annotations[AnnotationTOTPUser] != username {
		return fmt.Errorf("the TOTP enrollment for %s is malformed; ask a platform admin to enroll you again", username)
	}
	failures, err := policy.ParseTOTPFailures(secret.Annotations[AnnotationTOTPFailures])
	if err != nil {
		// Deny by default: an unreadable count cannot show the user is
		// under the limit.
		return fmt.Errorf("the TOTP enrollment for %s has a malformed annotation %s; ask a platform admin to remove it", username, AnnotationTOTPFailures)
	}
	now := v.Clock.Now()
	if until, locked := limit.LockedUntil(failures, now); locked {
		// The code is not even looked at: a lockout that still answered
		// "right" or "wrong" would be no limit.
		if updated, changed := limit.WithLocked(failures, now, until, dryRun); changed {
			if err := v.recordFailures(ctx, secret, updated); err != nil {
				return err
			}
		}
		totpFailuresTotal.WithLabelValues("locked").Inc()
		return &TOTPLockedError{Limit: limit, Until: until}
	}
	matched, err := matchTOTP(string(secret.Data[SecretKeyTOTP]), code, now)
	if err != nil {
		return fmt.Errorf("the TOTP enrollment for %s is malformed: %w", username, err)
	}
	last, _ := strconv.ParseInt(secret.Annotations[AnnotationTOTPLastStep], 10, 64)
	if matched < 0 || matched <= last {
		updated := limit.WithWrong(failures, now, dryRun)
		if err := v.recordFailures(ctx, secret, updated); err != nil {
			return err
		}
		totpFailuresTotal.WithLabelValues("wrong").Inc()
		if until, locked := limit.LockedUntil(updated, now); locked {
			return fmt.Errorf("%w; that was too many wrong codes: TOTP is locked for you until %s", ErrTOTP, retryTime(until))
		}
		return ErrTOTP
	}
	if dryRun {
		// Confirm with an unchanged write, conditional on the
		// resourceVersion this decision was made on. Without it, a burst
		// of concurrent dry-runs would all be checked against the same
		// count and a right guess among them answered before the others'
		// failures were stored: every answer kubepim gives (right, wrong)
		// follows a write at the version it was decided on, so concurrent
		// guesses are serialized and no more than MaxFailures are answered
		// per window. Unchanged, the write does not change the Secret.
		return v.Client.Update(ctx, secret)
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[AnnotationTOTPLastStep] = strconv.FormatInt(matched, 10)
	return v.Client.Update(ctx, secret)
}

// recordFailures stores the failures in the enrollment Secret, with the
// resourceVersion it was read at (a conflict goes back to Verify), and
// labels the Secret so that the leader's audit reconciler, which caches
// only labelled enrollments, sees it.
func (v *TOTPVerifier) recordFailures(ctx context.Context, secret *corev1.Secret, fs policy.TOTPFailures) error {
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Annotations[AnnotationTOTPFailures] = fs.String()
	secret.Labels[LabelTOTPEnrollment] = "true"
	return v.Client.Update(ctx, secret)
}

// matchTOTP returns the time step code is right for at now, or -1. One
// step of skew either way, as RFC 6238 recommends for clock drift.
func matchTOTP(key, code string, now time.Time) (int64, error) {
	step := now.Unix() / int64(totpPeriod/time.Second)
	matched := int64(-1)
	for _, s := range []int64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(key, time.Unix(s*int64(totpPeriod/time.Second), 0), totpOpts)
		if err != nil {
			return -1, err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	return matched, nil
}
