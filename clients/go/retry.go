package orchestrator

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

// RetryPolicy is the clients' one retry policy (clients/README.md, "Retries"; the same in Go,
// TypeScript, Java and Python). A unary call is retried on UNAVAILABLE, after the RetryInfo delay
// when the sidecar sent one (never jittered), else after a backoff of DefaultDelay doubling per
// attempt, capped at MaxBackoff, and jittered to between half of it and all of it; on
// RESOURCE_EXHAUSTED only with a RetryInfo. STREAM_INTERRUPTED and every other code are returned
// at once, as is a RetryInfo delay over MaxDelay, and no wait ends at or past the context's deadline.
type RetryPolicy struct {
	MaxAttempts  int           // attempts in all, the first included; 0 means 4
	DefaultDelay time.Duration // first backoff without RetryInfo, doubling per attempt; 0 means 100ms
	MaxBackoff   time.Duration // cap of that backoff; 0 means 5s
	MaxDelay     time.Duration // a longer RetryInfo delay is not waited for; 0 means 30s
	// Random returns the jitter draw, a number in [0, 1) (clamped to [0, 1]); nil means
	// math/rand/v2's Float64. Inject it to make the waits deterministic in tests.
	Random func() float64
}

// Delay is how long to wait before attempt number attempt+1 after attempt failed with err, or false
// when err must be returned. remaining is the time left before the deadline when hasDeadline. err
// may be typed or a plain gRPC status (an exposed stub's own error): it is decoded the same way.
func (p RetryPolicy) Delay(err error, attempt int, remaining time.Duration, hasDeadline bool) (time.Duration, bool) {
	var se *StatusError
	if !errors.As(FromError(err, 0), &se) || attempt >= orDefault(p.MaxAttempts, 4) || se.noRetry {
		return 0, false
	}
	if se.Code != codes.Unavailable && se.Code != codes.ResourceExhausted || se.Reason == "STREAM_INTERRUPTED" {
		return 0, false
	}
	delay := se.RetryDelay
	if se.HasRetryDelay {
		if delay > orDefault(p.MaxDelay, 30*time.Second) {
			return 0, false // e.g. a daily quota: waiting hours inside one call helps no caller
		}
	} else {
		if se.Code == codes.ResourceExhausted {
			return 0, false // a quota without a known reset does not pass by waiting a little
		}
		delay = p.backoff(attempt)
	}
	if hasDeadline && delay >= remaining {
		return 0, false // the next attempt could not start before the deadline
	}
	return delay, true
}

// backoff is floor(b * (0.5 + 0.5*r)) in whole microseconds, b = min(MaxBackoff, DefaultDelay *
// 2^(attempt-1)): the same double-precision operations as the other clients, to the microsecond.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	limit := orDefault(p.MaxBackoff, 5*time.Second).Microseconds()
	ceiling := orDefault(p.DefaultDelay, 100*time.Millisecond).Microseconds()
	for i := 1; i < attempt && ceiling < limit; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, limit)
	random := rand.Float64
	if p.Random != nil {
		random = p.Random
	}
	r := random()
	if !(r >= 0) { // NaN too
		r = 0
	}
	r = min(r, 1)
	return time.Duration(math.Floor(float64(ceiling)*(0.5+0.5*r))) * time.Microsecond
}

// Retry runs call until it succeeds or the policy gives up; ctx's deadline bounds the whole. call
// may return typed errors or an exposed stub's plain gRPC statuses; the last error is returned as is,
// except when ctx is cancelled while Retry waits before an attempt: then a *CancelledError.
// The client's Generate and Embed called with the ctx call gets, and the exposed stub's
// (client.Generation), send, for a request without a request_id, one id of this Retry per call, in
// call order, the same ids in every attempt: the sidecar replays an attempt that ran but whose reply
// was lost instead of charging it again.
func Retry[T any](ctx context.Context, policy RetryPolicy, call func(context.Context) (T, error)) (T, error) {
	ids := &requestIDs{}
	ctx = context.WithValue(ctx, requestIDsKey{}, ids)
	for attempt := 1; ; attempt++ {
		ids.restart()
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
			// the caller's cancellation (or deadline), not the last attempt's failure
			timer.Stop()
			return resp, FromError(status.FromContextError(ctx.Err()).Err(), 0)
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

type requestIDsKey struct{}

// requestIDs are the request ids of one Retry: one per call an attempt makes, in call order; every
// attempt starts again from the first.
type requestIDs struct {
	mu   sync.Mutex
	ids  []string
	next int
}

func (r *requestIDs) restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = 0
}

func (r *requestIDs) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == len(r.ids) {
		r.ids = append(r.ids, newRequestID())
	}
	r.next++
	return r.ids[r.next-1]
}

// keyedInRetry gives a Generate or Embed sent without a request_id inside Retry (through the exposed
// stub, client.Generation) the Retry's next id, as the client's own Generate and Embed take it.
func keyedInRetry(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if ids, ok := ctx.Value(requestIDsKey{}).(*requestIDs); ok {
		switch r := req.(type) {
		case *v1.GenerateRequest:
			if r.GetInput() != nil && r.GetInput().GetRequestId() == "" {
				req = withRequestID(r, ids.take())
			}
		case *v1.EmbedRequest:
			if r != nil && r.GetRequestId() == "" {
				req = embedWithRequestID(r, ids.take())
			}
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
