package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mdp/qrterminal/v3"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

// mfaCommand manages users' TOTP enrollments: Secrets in kubepim's
// namespace that only platform admins (and the manager) may read or
// write, so every subcommand runs with the admin's own RBAC on Secrets.
func (p *pim) mfaCommand() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "mfa",
		Short: "Manage users' TOTP enrollments (platform admins)",
	}
	cmd.PersistentFlags().StringVar(&namespace, "kubepim-namespace", "kubepim-system", "Namespace kubepim runs in (it keeps the enrollments there).")
	cmd.AddCommand(p.mfaEnrollCommand(&namespace), p.mfaStatusCommand(&namespace), p.mfaRemoveCommand(&namespace))
	return cmd
}

// totpIssuer names kubepim in the user's authenticator app.
const totpIssuer = "kubepim"

func (p *pim) mfaEnrollCommand(namespace *string) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "enroll USER",
		Short: "Enroll a user for TOTP: make a fresh key and show it once, as a QR code and an otpauth:// URI",
		Long: `Enroll a user for TOTP step-up MFA: a fresh random key is stored in the
user's enrollment Secret in kubepim's namespace and shown once, as a QR code
and an otpauth:// URI, for the user to add to an authenticator app. It is
never shown again. An existing enrollment is kept unless --force, which
replaces its key (the user must then set up the authenticator again).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			ctx := cmd.Context()
			me, err := p.whoami(ctx)
			if err != nil {
				return err
			}
			// The code parameters are the webhook's: RFC 6238 with SHA-1,
			// six digits, 30 s steps (what authenticator apps assume).
			key, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: user,
				Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			if err != nil {
				return err
			}
			now := p.clock.Now().UTC().Truncate(time.Second)
			secret := &corev1.Secret{}
			err = p.c.Get(ctx, client.ObjectKey{Namespace: *namespace, Name: mfa.TOTPSecretName(user)}, secret)
			switch {
			case apierrors.IsNotFound(err):
				secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: *namespace, Name: mfa.TOTPSecretName(user)}, Type: corev1.SecretTypeOpaque}
				setEnrollment(secret, user, key.Secret(), me.Username, now)
				err = p.c.Create(ctx, secret)
			case err != nil:
			case !force:
				return refused("%s is already enrolled for TOTP (since %s); --force replaces the key, and the user must set up the authenticator again",
					user, enrolledSince(secret).Format(time.RFC3339))
			default:
				// Replaced in place, with the resourceVersion just read (a
				// concurrent change fails rather than being overwritten):
				// the recorded failures stay, so re-enrolling neither lifts
				// a lockout nor loses refusals the audit trail has yet to
				// record, and the replay floor stays.
				setEnrollment(secret, user, key.Secret(), me.Username, now)
				err = p.c.Update(ctx, secret)
			}
			if err != nil {
				return admissionRefusal(err)
			}
			p.say("enrolled %s for TOTP (Secret %s/%s).", user, secret.Namespace, secret.Name)
			p.say("Give this to %s alone, to scan with an authenticator app (it is not shown again):", user)
			p.say("")
			p.say("%s", key.URL())
			p.say("")
			qrterminal.GenerateHalfBlock(key.URL(), qrterminal.M, p.Out)
			p.say("")
			p.say("%s then activates with: kubectl pim activate ROLE ... --mfa-code CODE", user)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "Replace an existing enrollment's key.")
	return cmd
}

// setEnrollment makes secret user's enrollment with key, as the webhook
// reads it (mfa.TOTPVerifier).
func setEnrollment(secret *corev1.Secret, user, key, by string, at time.Time) {
	if secret.Annotations == nil {
		secret.Annotations = map[string]string{}
	}
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Annotations[mfa.AnnotationTOTPUser] = user
	secret.Annotations[mfa.AnnotationTOTPEnrolledAt] = at.Format(time.RFC3339)
	secret.Annotations[mfa.AnnotationTOTPEnrolledBy] = by
	// Labelled from the start (the webhook would at the first failure):
	// the leader's cache sees it, and admins can list every enrollment.
	secret.Labels[mfa.LabelTOTPEnrollment] = "true"
	secret.Data = map[string][]byte{mfa.SecretKeyTOTP: []byte(key)}
}

// enrolledSince is when the enrollment's key was made: the annotation
// "mfa enroll" writes, or, for a Secret made by hand, its creation.
func enrolledSince(secret *corev1.Secret) time.Time {
	if t, err := time.Parse(time.RFC3339, secret.Annotations[mfa.AnnotationTOTPEnrolledAt]); err == nil {
		return t.UTC()
	}
	return secret.CreationTimestamp.UTC()
}

// mfaStatus is what "mfa status" reports; never the key.
type mfaStatus struct {
	User       string     `json:"user"`
	Enrolled   bool       `json:"enrolled"`
	Since      *time.Time `json:"since,omitempty"`
	EnrolledBy string     `json:"enrolledBy,omitempty"`
	// WrongCodes counts the wrong codes within the failure window, of
	// MaxFailures allowed.
	WrongCodes  int        `json:"wrongCodes"`
	MaxFailures int        `json:"maxFailures"`
	Window      string     `json:"window"`
	LastFailure *time.Time `json:"lastFailure,omitempty"`
	LockedUntil *time.Time `json:"lockedUntil,omitempty"`
	// Problem says what makes the enrollment unusable, if anything.
	Problem string `json:"problem,omitempty"`
}

// totpStatus judges an enrollment Secret (nil: none) at now, under limit,
// as the webhook would.
func totpStatus(user string, secret *corev1.Secret, limit policy.TOTPLimit, now time.Time) mfaStatus {
	limit = limit.OrDefault()
	st := mfaStatus{User: user, MaxFailures: limit.MaxFailures, Window: limit.Window.String()}
	if secret == nil {
		return st
	}
	st.Enrolled = true
	since := enrolledSince(secret)
	st.Since = &since
	st.EnrolledBy = secret.Annotations[mfa.AnnotationTOTPEnrolledBy]
	if secret.Annotations[mfa.AnnotationTOTPUser] != user {
		st.Problem = fmt.Sprintf("annotation %s is not %q: every code is refused; enroll again with --force", mfa.AnnotationTOTPUser, user)
	}
	if len(secret.Data[mfa.SecretKeyTOTP]) == 0 {
		st.Problem = fmt.Sprintf("no key under %s: every code is refused; enroll again with --force", mfa.SecretKeyTOTP)
	}
	failures, err := policy.ParseTOTPFailures(secret.Annotations[mfa.AnnotationTOTPFailures])
	if err != nil {
		st.Problem = fmt.Sprintf("annotation %s is malformed (%v): every code is refused until it is removed", mfa.AnnotationTOTPFailures, err)
		return st
	}
	for _, f := range failures {
		if f.LockedUntil != nil {
			continue
		}
		if now.Before(f.At.Add(limit.Window)) {
			st.WrongCodes++
		}
		if st.LastFailure == nil || f.At.After(*st.LastFailure) {
			at := f.At.UTC()
			st.LastFailure = &at
		}
	}
	if until, locked := limit.LockedUntil(failures, now); locked {
		until = until.UTC()
		st.LockedUntil = &until
	}
	return st
}

func (p *pim) mfaStatusCommand(namespace *string) *cobra.Command {
	var limit policy.TOTPLimit
	cmd := &cobra.Command{
		Use:   "status USER",
		Short: "Whether a user is enrolled for TOTP, since when, and recent wrong codes or a lockout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			secret, err := p.enrollment(cmd.Context(), *namespace, user)
			if err != nil {
				return err
			}
			st := totpStatus(user, secret, limit, p.clock.Now())
			switch p.output {
			case "json", "yaml":
				return p.print(st)
			case "", "table":
			default:
				return usage("unknown output format %q: use table, json or yaml", p.output)
			}
			p.say("%s", st.describe())
			return nil
		},
	}
	cmd.Flags().IntVar(&limit.MaxFailures, "totp-max-failures", policy.DefaultTOTPMaxFailures, "The manager's --totp-max-failures.")
	cmd.Flags().DurationVar(&limit.Window, "totp-failure-window", policy.DefaultTOTPFailureWindow, "The manager's --totp-failure-window.")
	return cmd
}

// describe says the status in a few lines for a person.
func (st mfaStatus) describe() string {
	if !st.Enrolled {
		return st.User + " is not enrolled for TOTP."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is enrolled for TOTP since %s", st.User, st.Since.Format(time.RFC3339))
	if st.EnrolledBy != "" {
		fmt.Fprintf(&b, " (by %s)", st.EnrolledBy)
	}
	fmt.Fprintf(&b, ".\nWrong codes in the last %s: %d of %d allowed", st.Window, st.WrongCodes, st.MaxFailures)
	if st.LastFailure != nil {
		fmt.Fprintf(&b, "; last wrong code at %s", st.LastFailure.Format(time.RFC3339))
	}
	b.WriteString(".")
	if st.LockedUntil != nil {
		fmt.Fprintf(&b, "\nLocked out until %s: every code is refused until then.", st.LockedUntil.Format(time.RFC3339))
	}
	if st.Problem != "" {
		fmt.Fprintf(&b, "\nProblem: %s.", st.Problem)
	}
	return b.String()
}

func (p *pim) mfaRemoveCommand(namespace *string) *cobra.Command {
	return &cobra.Command{
		Use:   "remove USER",
		Short: "Remove a user's TOTP enrollment: their codes are refused from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			secret, err := p.enrollment(cmd.Context(), *namespace, user)
			if err != nil {
				return err
			}
			if secret == nil {
				return refused("%s is not enrolled for TOTP", user)
			}
			// The UID precondition: a re-enrollment made meanwhile stays.
			if err := p.c.Delete(cmd.Context(), secret, client.Preconditions{UID: &secret.UID}); err != nil {
				return admissionRefusal(client.IgnoreNotFound(err))
			}
			p.say("removed the TOTP enrollment of %s", user)
			return nil
		},
	}
}

// enrollment reads user's enrollment Secret; nil when there is none.
func (p *pim) enrollment(ctx context.Context, namespace, user string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	err := p.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: mfa.TOTPSecretName(user)}, secret)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, admissionRefusal(err)
	}
	return secret, nil
}
