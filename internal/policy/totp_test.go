package policy

import (
	"testing"
	"time"
)

func TestTOTPLimitLockedUntil(t *testing.T) {
	limit := TOTPLimit{MaxFailures: 5, Window: 5 * time.Minute}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) TOTPFailure { return TOTPFailure{At: now.Add(-d)} }
	until := func(d time.Duration) *time.Time { u := now.Add(d); return &u }
	tests := []struct {
		name      string
		failures  TOTPFailures
		wantLock  bool
		wantUntil time.Time
	}{
		{name: "no failures", failures: nil},
		{name: "four within the window", failures: TOTPFailures{ago(4 * time.Minute), ago(3 * time.Minute), ago(2 * time.Minute), ago(time.Minute)}},
		{name: "exactly five within the window locks until the oldest leaves it",
			failures: TOTPFailures{ago(4 * time.Minute), ago(3 * time.Minute), ago(2 * time.Minute), ago(time.Minute), ago(0)},
			wantLock: true, wantUntil: now.Add(time.Minute)},
		{name: "order does not matter",
			failures: TOTPFailures{ago(0), ago(2 * time.Minute), ago(4 * time.Minute), ago(time.Minute), ago(3 * time.Minute)},
			wantLock: true, wantUntil: now.Add(time.Minute)},
		{name: "one exactly a window old no longer counts",
			failures: TOTPFailures{ago(5 * time.Minute), ago(3 * time.Minute), ago(2 * time.Minute), ago(time.Minute), ago(0)}},
		{name: "one a nanosecond less than a window old still counts",
			failures: TOTPFailures{ago(5*time.Minute - 1), ago(3 * time.Minute), ago(2 * time.Minute), ago(time.Minute), ago(0)},
			wantLock: true, wantUntil: now.Add(1)},
		{name: "old failures outside the window do not count",
			failures: TOTPFailures{ago(time.Hour), ago(10 * time.Minute), ago(6 * time.Minute), ago(time.Minute), ago(0)}},
		{name: "more than the limit: locked until enough have left the window",
			failures: TOTPFailures{ago(4 * time.Minute), ago(3 * time.Minute), ago(2 * time.Minute), ago(time.Minute), ago(30 * time.Second), ago(0)},
			wantLock: true, wantUntil: now.Add(2 * time.Minute)},
		{name: "attempts refused while locked are no guesses and do not count",
			failures: TOTPFailures{ago(3 * time.Minute), ago(2 * time.Minute), ago(time.Minute), ago(0),
				{At: now, LockedUntil: until(time.Minute)}, {At: now, LockedUntil: until(2 * time.Minute)}}},
		{name: "a failure dated in the future counts (fail closed)",
			failures: TOTPFailures{ago(time.Minute), ago(0), ago(-time.Minute), ago(-2 * time.Minute), ago(-time.Hour)},
			wantLock: true, wantUntil: now.Add(4 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, locked := limit.LockedUntil(tt.failures, now)
			if locked != tt.wantLock || !got.Equal(tt.wantUntil) {
				t.Fatalf("LockedUntil = %v, %v; want %v, %v", got, locked, tt.wantUntil, tt.wantLock)
			}
		})
	}
}

func TestTOTPLimitRetryAfterTheStatedTimeSucceeds(t *testing.T) {
	limit := TOTPLimit{MaxFailures: 3, Window: time.Minute}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var fs TOTPFailures
	for i := range 3 {
		fs = limit.WithWrong(fs, start.Add(time.Duration(i)*time.Second), i%2 == 0)
	}
	until, locked := limit.LockedUntil(fs, start.Add(3*time.Second))
	if !locked || !until.Equal(start.Add(time.Minute)) {
		t.Fatalf("after 3 wrong codes: %v, %v", until, locked)
	}
	if _, locked := limit.LockedUntil(fs, until.Add(-1)); !locked {
		t.Fatal("unlocked before the stated time")
	}
	if _, locked := limit.LockedUntil(fs, until); locked {
		t.Fatal("still locked at the stated time")
	}
	// One more wrong code after the lockout locks again only while three
	// are in the window.
	fs = limit.WithWrong(fs, until, false)
	if got, locked := limit.LockedUntil(fs, until); !locked || !got.Equal(start.Add(time.Second+time.Minute)) {
		t.Fatalf("a fourth wrong code at %v: %v, %v", until, got, locked)
	}
}

func TestTOTPFailuresStayBounded(t *testing.T) {
	limit := TOTPLimit{MaxFailures: 5, Window: 5 * time.Minute}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var fs TOTPFailures
	for i := range 100 {
		fs = limit.WithWrong(fs, start.Add(time.Duration(i)*time.Second), false)
	}
	if len(fs) != 5 || !fs[0].At.Equal(start.Add(95*time.Second)) || !fs[4].At.Equal(start.Add(99*time.Second)) {
		t.Fatalf("kept %v", fs)
	}
	until, _ := limit.LockedUntil(fs, start.Add(100*time.Second))
	var changed bool
	for i := range 100 {
		var c bool
		fs, c = limit.WithLocked(fs, start.Add(time.Duration(100+i)*time.Second), until, i%2 == 0)
		changed = changed || c
		if i > 0 && c {
			t.Fatalf("attempt %d in the same lockout was recorded again", i)
		}
	}
	if !changed || len(fs) != 6 {
		t.Fatalf("want 5 wrong codes and one lockout entry, got %v", fs)
	}
	// A later lockout replaces the entry of the earlier one.
	later := until.Add(time.Hour)
	fs, changed = limit.WithLocked(fs, later, later.Add(time.Minute), false)
	if !changed || len(fs) != 6 || !fs[5].LockedUntil.Equal(later.Add(time.Minute)) {
		t.Fatalf("second lockout: %v, %v", changed, fs)
	}
}

func TestTOTPFailuresAnnotationRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	until := at.Add(5 * time.Minute)
	fs := TOTPFailures{{At: at, DryRun: true}, {At: at.Add(time.Second), LockedUntil: &until}}
	got, err := ParseTOTPFailures(fs.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].At.Equal(at) || got[0].At.Nanosecond() != 123456789 || !got[0].DryRun ||
		got[1].LockedUntil == nil || !got[1].LockedUntil.Equal(until) {
		t.Fatalf("round trip: %v", got)
	}
	for _, bad := range []string{"5", "{}", `[{"dryRun":true}]`, `[{"at":"yesterday"}]`} {
		if _, err := ParseTOTPFailures(bad); err == nil {
			t.Errorf("ParseTOTPFailures(%q) accepted", bad)
		}
	}
	if fs, err := ParseTOTPFailures(""); err != nil || fs != nil {
		t.Errorf("empty annotation: %v, %v", fs, err)
	}
}
