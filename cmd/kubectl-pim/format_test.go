package main

import (
	"testing"
	"time"
)

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		4 * time.Hour:                "4h",
		30 * time.Minute:             "30m",
		90 * time.Minute:             "1h30m",
		45 * time.Second:             "45s",
		2*time.Hour + 10*time.Second: "2h0m10s",
		10*time.Minute + time.Second: "10m1s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"30d":                  now.Add(-30 * 24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2026-11-01T00:00:00Z": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseSince("yesterday", now); exitCode(err) != exitUsage {
		t.Errorf("parseSince(yesterday) should be a usage error, got %v", err)
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"":                     "-",
		"nonsense":             "-",
		"2026-11-24T11:59:30Z": "just now",
		"2026-11-24T12:00:30Z": "just now", // a clock behind
		"2026-11-24T11:48:00Z": "12m ago",
		"2026-11-24T09:30:10Z": "2h29m ago",
		"2026-11-21T12:00:00Z": "3d ago",
	} {
		if got := ago(now, in); got != want {
			t.Errorf("ago(%q) = %q, want %q", in, got, want)
		}
	}
}
