package webhooks

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
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TOTP enrollments are Secrets in kubepim's namespace, one per user, that
// users have no RBAC to read. The secret key is under SecretKeyTOTP; the
// last time step accepted is kept in an annotation so a code is never
// accepted twice.
const (
	SecretKeyTOTP          = "totp-secret"
	LabelTOTPEnrollment    = "kubepim.io/totp-enrollment"
	AnnotationTOTPUser     = "kubepim.io/totp-user"
	AnnotationTOTPLastStep = "kubepim.io/totp-last-step"
	totpPeriod             = 30 * time.Second
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

// TOTPVerifier checks RFC 6238 codes against users' enrollments.
type TOTPVerifier struct {
	Client    client.Client
	Namespace string
	Clock     clock.PassiveClock
}

// Verify checks code for username. Unless dryRun, it records the time step
// it accepted, with an optimistic-concurrency update, so the same code (or
// an earlier one) is refused from then on, even by a concurrent request.
func (v *TOTPVerifier) Verify(ctx context.Context, username, code string, dryRun bool) error {
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
	key := string(secret.Data[SecretKeyTOTP])
	last, _ := strconv.ParseInt(secret.Annotations[AnnotationTOTPLastStep], 10, 64)
	now := v.Clock.Now()
	step := now.Unix() / int64(totpPeriod/time.Second)
	matched := int64(-1)
	// One step of skew either way, as RFC 6238 recommends for clock drift.
	for _, s := range []int64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(key, time.Unix(s*int64(totpPeriod/time.Second), 0), totpOpts)
		if err != nil {
			return fmt.Errorf("the TOTP enrollment for %s is malformed: %w", username, err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	if matched < 0 || matched <= last {
		return ErrTOTP
	}
	if dryRun {
		return nil
	}
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	secret.Annotations[AnnotationTOTPLastStep] = strconv.FormatInt(matched, 10)
	if err := v.Client.Update(ctx, secret); err != nil {
		if apierrors.IsConflict(err) {
			return ErrTOTP
		}
		return err
	}
	return nil
}
