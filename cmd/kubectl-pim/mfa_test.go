package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubepim/kubepim/internal/mfa"
	"github.com/kubepim/kubepim/internal/policy"
)

func TestTOTPStatus(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	wrong := func(ds ...time.Duration) string {
		var fs policy.TOTPFailures
		for _, d := range ds {
			fs = append(fs, policy.TOTPFailure{At: at(d)})
		}
		return fs.String()
	}
	enrolled := func(annotations map[string]string) *corev1.Secret {
		a := map[string]string{mfa.AnnotationTOTPUser: "alice"}
		for k, v := range annotations {
			a[k] = v
		}
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: a, CreationTimestamp: metav1.NewTime(at(-48 * time.Hour))},
			Data: map[string][]byte{mfa.SecretKeyTOTP: []byte("JBSWY3DPEHPK3PXP")}}
	}
	for _, tc := range []struct {
		name   string
		secret *corev1.Secret
		want   []string // lines of describe(), each a substring
		locked bool
	}{
		{"not enrolled", nil, []string{"alice is not enrolled for TOTP."}, false},
		{"enrolled by hand: since its creation", enrolled(nil),
			[]string{"alice is enrolled for TOTP since 2026-11-28T12:00:00Z.", "Wrong codes in the last 5m0s: 0 of 5 allowed."}, false},
		{"enrolled by mfa enroll", enrolled(map[string]string{mfa.AnnotationTOTPEnrolledAt: "2026-11-29T08:00:00Z", mfa.AnnotationTOTPEnrolledBy: "root"}),
			[]string{"since 2026-11-29T08:00:00Z (by root)."}, false},
		{"wrong codes: only those within the window count", enrolled(map[string]string{mfa.AnnotationTOTPFailures: wrong(-10*time.Minute, -2*time.Minute, -time.Minute)}),
			[]string{"2 of 5 allowed; last wrong code at 2026-11-30T11:59:00Z."}, false},
		{"locked out until the oldest of five leaves the window", enrolled(map[string]string{mfa.AnnotationTOTPFailures: wrong(-4*time.Minute, -3*time.Minute, -2*time.Minute, -time.Minute, -time.Second)}),
			[]string{"5 of 5 allowed", "Locked out until 2026-11-30T12:01:00Z"}, true},
		{"a malformed failures annotation refuses every code", enrolled(map[string]string{mfa.AnnotationTOTPFailures: "nonsense"}),
			[]string{"Problem: annotation kubepim.io/totp-failures is malformed"}, false},
		{"an enrollment naming another user", enrolled(map[string]string{mfa.AnnotationTOTPUser: "mallory"}),
			[]string{`Problem: annotation kubepim.io/totp-user is not "alice"`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := totpStatus("alice", tc.secret, policy.TOTPLimit{}, now)
			got := st.describe()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("describe() = %q, want it to contain %q", got, w)
				}
			}
			if (st.LockedUntil != nil) != tc.locked {
				t.Errorf("LockedUntil = %v, want locked=%v", st.LockedUntil, tc.locked)
			}
			if strings.Contains(got, "JBSWY3DPEHPK3PXP") {
				t.Error("the status shows the key")
			}
		})
	}
}
