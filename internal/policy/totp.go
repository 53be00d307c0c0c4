package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Defaults of the TOTP failure limit: five wrong codes per user in five
// minutes. Three of the 10^6 six-digit codes are accepted at a time (±1
// step), so five guesses succeed with probability 1.5e-5: about 0.4% over
// a day of guessing nonstop, instead of certainty within minutes.
const (
	DefaultTOTPMaxFailures   = 5
	DefaultTOTPFailureWindow = 5 * time.Minute
)

// TOTPLimit bounds how many wrong TOTP codes a user may give: at most
// MaxFailures within any Window. Once reached, every attempt of that user
// is refused, a right code included, until the oldest counted failure
// leaves the window.
type TOTPLimit struct {
	MaxFailures int
	Window      time.Duration
}

// OrDefault fills in the defaults for zero fields.
func (l TOTPLimit) OrDefault() TOTPLimit {
	if l.MaxFailures <= 0 {
		l.MaxFailures = DefaultTOTPMaxFailures
	}
	if l.Window <= 0 {
		l.Window = DefaultTOTPFailureWindow
	}
	return l
}

// TOTPFailure is one refused TOTP attempt, as kept in the user's
// enrollment Secret: a wrong code (LockedUntil nil), or an attempt refused
// without looking at the code because the user was locked out until
// LockedUntil.
type TOTPFailure struct {
	At          time.Time  `json:"at"`
	DryRun      bool       `json:"dryRun,omitempty"`
	LockedUntil *time.Time `json:"lockedUntil,omitempty"`
}

// TOTPFailures are a user's recent refused attempts, oldest first.
type TOTPFailures []TOTPFailure

// LockedUntil says whether an attempt at now is refused, and from when on
// the user may try again. Only wrong codes count: an attempt refused while
// locked out checked no code, so it is no guess, and counting it would let
// retries push the stated retry time further and further out.
//
// A failure counts while now < At+Window; one dated in the future (a
// replica's clock ahead, or a forged entry) counts too — failing closed.
func (l TOTPLimit) LockedUntil(fs TOTPFailures, now time.Time) (time.Time, bool) {
	var recent []time.Time
	for _, f := range fs {
		if f.LockedUntil == nil && now.Before(f.At.Add(l.Window)) {
			recent = append(recent, f.At)
		}
	}
	if len(recent) < l.MaxFailures {
		return time.Time{}, false
	}
	slices.SortFunc(recent, time.Time.Compare)
	// The lockout ends when fewer than MaxFailures remain in the window:
	// when the MaxFailures-th newest leaves it.
	return recent[len(recent)-l.MaxFailures].Add(l.Window), true
}

// WithWrong adds a wrong code at `at` and keeps the MaxFailures newest
// wrong codes (all a decision needs) and the newest lockout entry: the
// Secret's annotation stays bounded however long someone keeps guessing.
func (l TOTPLimit) WithWrong(fs TOTPFailures, at time.Time, dryRun bool) TOTPFailures {
	return l.bounded(append(slices.Clone(fs), TOTPFailure{At: at, DryRun: dryRun}))
}

// WithLocked adds an attempt refused while locked out until `until`,
// unless one for that same lockout is recorded already: one entry (one
// write, one audit event) per lockout, so a locked-out user who keeps
// trying cannot flood etcd or the audit trail; the metric counts every
// attempt. It reports whether anything changed.
func (l TOTPLimit) WithLocked(fs TOTPFailures, at, until time.Time, dryRun bool) (TOTPFailures, bool) {
	for _, f := range fs {
		if f.LockedUntil != nil && f.LockedUntil.Equal(until) {
			return fs, false
		}
	}
	return l.bounded(append(slices.Clone(fs), TOTPFailure{At: at, DryRun: dryRun, LockedUntil: &until})), true
}

func (l TOTPLimit) bounded(fs TOTPFailures) TOTPFailures {
	slices.SortStableFunc(fs, func(a, b TOTPFailure) int { return a.At.Compare(b.At) })
	var out TOTPFailures
	wrong, locked := 0, 0
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].LockedUntil == nil {
			if wrong++; wrong > l.MaxFailures {
				continue
			}
		} else if locked++; locked > 1 {
			continue
		}
		out = append(out, fs[i])
	}
	slices.Reverse(out)
	return out
}

// ParseTOTPFailures reads the failures annotation ("" is none).
func ParseTOTPFailures(s string) (TOTPFailures, error) {
	if s == "" {
		return nil, nil
	}
	var fs TOTPFailures
	if err := json.Unmarshal([]byte(s), &fs); err != nil {
		return nil, fmt.Errorf("not a JSON list of failures: %w", err)
	}
	for _, f := range fs {
		if f.At.IsZero() {
			return nil, fmt.Errorf("a failure has no time")
		}
	}
	return fs, nil
}

// String is the annotation value: JSON, times in RFC 3339 with
// nanoseconds (a failure's time is its identity in the audit trail).
func (fs TOTPFailures) String() string {
	out := make(TOTPFailures, len(fs))
	for i, f := range fs {
		out[i] = TOTPFailure{At: f.At.UTC(), DryRun: f.DryRun}
		if f.LockedUntil != nil {
			u := f.LockedUntil.UTC()
			out[i].LockedUntil = &u
		}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		panic(err) // times and booleans always encode
	}
	return string(raw)
}
