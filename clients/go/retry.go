package orchestrator

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
)

// RetryPolicy retries unary calls on UNAVAILABLE and RESOURCE_EXHAUSTED, waiting the RetryInfo
// delay (or a doubling DefaultDelay when UNAVAILABLE carries none), never past the context's
// deadline and never after a stream's first delta (streams are not retried at all).
type RetryPolicy struct {
	MaxAttempts  int           // including the first; 0 means 3
	DefaultDelay time.Duration // 0 means 200ms
	MaxDelay     time.Duration // a longer RetryInfo delay is not waited for; 0 means 30s
}

// Delay is how long to wait before attempt number attempt+1, or false when err must be returned.
func (p RetryPolicy) Delay(err error, attempt int, remaining time.Duration, hasDeadline bool) (time.Duration, bool) {
	var se *StatusError
	if !errors.As(err, &se) || attempt >= orDefault(p.MaxAttempts, 3) {
		return 0, false
	}
	if se.Code != codes.Unavailable && se.Code != codes.ResourceExhausted || se.Reason == "STREAM_INTERRUPTED" {
		return 0, false
	}
	delay := se.RetryDelay
	if !se.HasRetryDelay {
		if se.Code == codes.ResourceExhausted {
			return 0, false // a quota without a known reset does not pass by waiting a little
		}
		delay = orDefault(p.DefaultDelay, 200*time.Millisecond) << (attempt - 1)
	}
	if delay > orDefault(p.MaxDelay, 30*time.Second) || hasDeadline && delay >= remaining {
		return 0, false
	}
	return delay, true
}

// Retry runs call until it succeeds or the policy gives up; ctx's deadline bounds the whole.
func Retry[T any](ctx context.Context, policy RetryPolicy, call func(context.Context) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		resp, err := call(ctx)
		if err == nil {
			return resp, nil
		}
		deadline, hasDeadline := ctx.Deadline()
		delay, again := policy.Delay(err, attempt, time.Until(deadline), hasDeadline)
		if !again {
			return resp, err
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return resp, err
		case <-timer.C:
		}
	}
}

func orDefault[T int | time.Duration](value, fallback T) T {
	if value <= 0 {
		return fallback
	}
	return value
}
