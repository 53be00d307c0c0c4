package webhooks

import (
	"testing"
	"time"

	"github.com/kubepim/kubepim/controllers/policy"
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
