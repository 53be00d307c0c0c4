package mfa

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kubepim/kubepim/internal/policy"
)

func TestLockedMessageStatesASecondTheUserMayRetryAt(t *testing.T) {
	limit := policy.TOTPLimit{MaxFailures: 5, Window: 5 * time.Minute}
	for _, tt := range []struct {
		until time.Time
		want  string
	}{
		{time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC), "2026-03-01T12:05:00Z"},
		// The lockout ends within the second: stating that second would
		// send the user back too early.
		{time.Date(2026, 3, 1, 12, 5, 0, 1, time.UTC), "2026-03-01T12:05:01Z"},
		{time.Date(2026, 3, 1, 13, 5, 0, 999999999, time.FixedZone("CET", 3600)), "2026-03-01T12:05:01Z"},
	} {
		got := (&TOTPLockedError{Limit: limit, Until: tt.until}).Error()
		want := "too many wrong one-time codes (5 within 5m0s): TOTP is locked for you until " + tt.want +
			"; try again then (every attempt is refused until then, a right code too)"
		if got != want {
			t.Errorf("until %v:\n got %q\nwant %q", tt.until, got, want)
		}
	}
}

// TestAnAnswerFollowsAWriteAtTheVersionItWasDecidedOn: another replica
// stores the fifth wrong code between this attempt's read and its answer.
// Whatever the code, the attempt must then be refused as locked out: were
// it answered on the stale count, a burst of concurrent guesses (dry-runs
// above all, which store nothing on success) would all be checked at once.
//
// It runs on a real kube-apiserver and etcd (envtest): what it tests is the
// API server's optimistic concurrency on the enrollment Secret.
func TestAnAnswerFollowsAWriteAtTheVersionItWasDecidedOn(t *testing.T) {
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd (KUBEBUILDER_ASSETS; make test sets it): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	base, err := client.NewWithWatch(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const user, ns = "alice", "default"
	limit := policy.TOTPLimit{MaxFailures: 5, Window: 5 * time.Minute}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "kubepim", AccountName: user})
	if err != nil {
		t.Fatal(err)
	}
	right, err := totp.GenerateCode(key.Secret(), now)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	for _, tt := range []struct {
		name   string
		code   string
		dryRun bool
	}{
		{"right code, dry-run", right, true},
		{"right code", right, false},
		{"wrong code, dry-run", wrong, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var four policy.TOTPFailures
			for i := range 4 {
				four = limit.WithWrong(four, now.Add(-time.Duration(i+1)*time.Second), false)
			}
			secret := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: TOTPSecretName(user),
					Annotations: map[string]string{AnnotationTOTPUser: user, AnnotationTOTPFailures: four.String()}},
				Data: map[string][]byte{SecretKeyTOTP: []byte(key.Secret())},
			}
			_ = base.Delete(context.Background(), secret.DeepCopy())
			if err := base.Create(context.Background(), secret); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			c := interceptor.NewClient(base, interceptor.Funcs{
				Get: func(ctx context.Context, cl client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if err := cl.Get(ctx, k, obj, opts...); err != nil {
						return err
					}
					var err error
					once.Do(func() {
						other := &corev1.Secret{}
						if err = cl.Get(ctx, k, other); err == nil {
							other.Annotations[AnnotationTOTPFailures] = limit.WithWrong(four, now, true).String()
							err = cl.Update(ctx, other)
						}
					})
					return err
				},
			})
			v := &TOTPVerifier{Client: c, Namespace: ns, Clock: clocktesting.NewFakePassiveClock(now), Limit: limit}
			err := v.Verify(context.Background(), user, tt.code, tt.dryRun)
			var locked *TOTPLockedError
			if !errors.As(err, &locked) || !locked.Until.Equal(now.Add(-4*time.Second).Add(5*time.Minute)) {
				t.Fatalf("Verify = %v, want locked out until %v", err, now.Add(-4*time.Second).Add(5*time.Minute))
			}
		})
	}
}
