package notify

import "time"

// Backoff bounds.
const (
	FirstRetry = time.Second
	MaxRetry   = 5 * time.Minute
)

// Backoff is how long to wait after the given number of failed attempts:
// 1s, 2s, 4s, … doubling up to 5 minutes, so a channel that is down for an
// hour is tried about twenty times, not thousands.
func Backoff(attempts int32) time.Duration {
	if attempts < 1 {
		return FirstRetry
	}
	d := FirstRetry
	for i := int32(1); i < attempts; i++ {
		d *= 2
		if d >= MaxRetry {
			return MaxRetry
		}
	}
	return d
}
