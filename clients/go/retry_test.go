package orchestrator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

func typed(t *testing.T, code codes.Code, reason string, delay time.Duration) error {
	t.Helper()
	details := packed(t, &errdetails.ErrorInfo{Reason: reason})
	if delay > 0 {
		details = append(details, packed(t, &errdetails.RetryInfo{RetryDelay: durationpb.New(delay)})...)
	}
	return orchestrator.FromError(statusErr(code, details), 0)
}

func TestDelayDecisions(t *testing.T) {
	p := orchestrator.RetryPolicy{}
	cases := []struct {
		name     string
		err      error
		attempt  int
		left     time.Duration
		deadline bool
		want     time.Duration
		again    bool
	}{
		{"retry info honoured", typed(t, codes.Unavailable, "PROVIDERS_UNAVAILABLE", time.Second), 1, 5 * time.Second, true, time.Second, true},
		{"quota with retry info", typed(t, codes.ResourceExhausted, "RATE_LIMITED", 2*time.Second), 1, 0, false, 2 * time.Second, true},
		{"quota without retry info", typed(t, codes.ResourceExhausted, "TOKEN_QUOTA_EXCEEDED", 0), 1, 0, false, 0, false},
		{"backoff doubles", typed(t, codes.Unavailable, "", 0), 2, 0, false, 400 * time.Millisecond, true},
		{"past the deadline", typed(t, codes.Unavailable, "", 3*time.Second), 1, 2 * time.Second, true, 0, false},
		{"attempts exhausted", typed(t, codes.Unavailable, "", time.Millisecond), 3, 0, false, 0, false},
		{"not retryable", typed(t, codes.InvalidArgument, "INVALID_REQUEST", time.Millisecond), 1, 0, false, 0, false},
		{"stream interrupted", typed(t, codes.Unavailable, "STREAM_INTERRUPTED", time.Millisecond), 1, 0, false, 0, false},
		{"too long a wait", typed(t, codes.Unavailable, "", time.Hour), 1, 0, false, 0, false},
		{"foreign error", errors.New("x"), 1, 0, false, 0, false},
	}
	for _, c := range cases {
		got, again := p.Delay(c.err, c.attempt, c.left, c.deadline)
		if got != c.want || again != c.again {
			t.Errorf("%s: got %v %v, want %v %v", c.name, got, again, c.want, c.again)
		}
	}
}

func TestRetryStopsAtTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	calls := 0
	_, err := orchestrator.Retry(ctx, orchestrator.RetryPolicy{MaxAttempts: 10}, func(context.Context) (int, error) {
		calls++
		return 0, typed(t, codes.Unavailable, "", 120*time.Millisecond)
	})
	var unavailable *orchestrator.UnavailableError
	if !errors.As(err, &unavailable) || calls != 2 {
		t.Fatalf("calls=%d err=%v: one retry fits in 200 ms, a second would not", calls, err)
	}
}
