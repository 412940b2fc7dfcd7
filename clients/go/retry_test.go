package orchestrator_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"gopkg.in/yaml.v3"

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

// retryCase is one row of tests/contract/retry.yaml, the decision table every client replays.
type retryCase struct {
	Name        string   `yaml:"name"`
	Attempt     int      `yaml:"attempt"`
	MaxAttempts int      `yaml:"max_attempts"`
	Code        string   `yaml:"code"`
	Reason      string   `yaml:"reason"`
	RetryInfoMs *float64 `yaml:"retry_info_ms"`
	RetryInfo   *struct {
		Seconds int64 `yaml:"seconds"`
		Nanos   int32 `yaml:"nanos"`
	} `yaml:"retry_info"`
	DeadlineLeft *float64 `yaml:"deadline_left_ms"`
	Random       float64  `yaml:"random"`
	WaitMs       *float64 `yaml:"wait_ms"`
}

func milliseconds(ms float64) time.Duration {
	return time.Duration(math.Round(ms*1000)) * time.Microsecond
}

// TestDelayDecisions replays the shared decision table through RetryPolicy.Delay with its defaults
// and the case's random draw injected.
func TestDelayDecisions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "tests", "contract", "retry.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Cases []retryCase `yaml:"cases"`
	}
	if err := yaml.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Cases) < 20 {
		t.Fatalf("the decision table has %d cases", len(table.Cases))
	}
	for _, c := range table.Cases {
		code, ok := codeByName[c.Code]
		if !ok {
			t.Fatalf("%s: unknown code %s", c.Name, c.Code)
		}
		details := packed(t, &errdetails.ErrorInfo{Reason: c.Reason})
		if c.RetryInfoMs != nil {
			details = append(details, packed(t, &errdetails.RetryInfo{RetryDelay: durationpb.New(milliseconds(*c.RetryInfoMs))})...)
		}
		if c.RetryInfo != nil { // the Duration as sent, well-formed or not
			delay := &durationpb.Duration{Seconds: c.RetryInfo.Seconds, Nanos: c.RetryInfo.Nanos}
			details = append(details, packed(t, &errdetails.RetryInfo{RetryDelay: delay})...)
		}
		err := orchestrator.FromError(statusErr(code, details), 0)
		random := c.Random
		p := orchestrator.RetryPolicy{MaxAttempts: c.MaxAttempts, Random: func() float64 { return random }}
		var left time.Duration
		if c.DeadlineLeft != nil {
			left = milliseconds(*c.DeadlineLeft)
		}
		got, again := p.Delay(err, c.Attempt, left, c.DeadlineLeft != nil)
		switch {
		case c.WaitMs == nil && again:
			t.Errorf("%s: waits %v, want to give up", c.Name, got)
		case c.WaitMs != nil && (!again || got != milliseconds(*c.WaitMs)):
			t.Errorf("%s: got %v (retry %v), want a wait of %v", c.Name, got, again, milliseconds(*c.WaitMs))
		}
	}
}

var codeByName = map[string]codes.Code{
	"UNAVAILABLE": codes.Unavailable, "RESOURCE_EXHAUSTED": codes.ResourceExhausted,
	"INVALID_ARGUMENT": codes.InvalidArgument, "DEADLINE_EXCEEDED": codes.DeadlineExceeded,
	"INTERNAL": codes.Internal,
}

// TestForeignErrorsAreNotRetried: an error that is not a gRPC status (a dial option's own) is returned.
func TestForeignErrorsAreNotRetried(t *testing.T) {
	if _, again := (orchestrator.RetryPolicy{}).Delay(errors.New("x"), 1, 0, false); again {
		t.Fatal("a foreign error was retried")
	}
}

// TestDefaultRandomStaysInItsBounds: without an injected source the wait is within [b/2, b].
func TestDefaultRandomStaysInItsBounds(t *testing.T) {
	err := typed(t, codes.Unavailable, "", 0)
	for attempt := 1; attempt <= 3; attempt++ {
		ceiling := 100 * time.Millisecond << (attempt - 1)
		for range 200 {
			got, again := (orchestrator.RetryPolicy{}).Delay(err, attempt, 0, false)
			if !again || got < ceiling/2 || got > ceiling {
				t.Fatalf("attempt %d: %v (retry %v), want within [%v, %v]", attempt, got, again, ceiling/2, ceiling)
			}
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

// TestRetryTakesTheStubsOwnErrors: Retry wraps any unary call, the exposed stubs' too, whose
// errors are plain gRPC statuses (not yet passed through FromError): they are retried all the same.
func TestRetryTakesTheStubsOwnErrors(t *testing.T) {
	calls := 0
	policy := orchestrator.RetryPolicy{DefaultDelay: time.Microsecond, Random: func() float64 { return 0 }}
	got, err := orchestrator.Retry(context.Background(), policy, func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return 0, statusErr(codes.Unavailable, nil)
		}
		return 7, nil
	})
	if err != nil || got != 7 || calls != 3 {
		t.Fatalf("calls=%d got=%d err=%v: two UNAVAILABLE statuses of a stub, then its answer", calls, got, err)
	}
	delay, again := policy.Delay(statusErr(codes.ResourceExhausted, packed(t,
		&errdetails.RetryInfo{RetryDelay: durationpb.New(20 * time.Millisecond)})), 1, 0, false)
	if !again || delay != 20*time.Millisecond {
		t.Fatalf("a stub's RESOURCE_EXHAUSTED with RetryInfo: %v (retry %v), want 20ms", delay, again)
	}
}

// TestCancellingDuringTheWaitIsTheCallersCancellation: the caller cancelling while Retry waits
// before the next attempt ends it with a *CancelledError at once (as the TypeScript and Java
// clients do), not with the last attempt's UNAVAILABLE, which would blame the sidecar for the
// caller's own cancellation.
func TestCancellingDuringTheWaitIsTheCallersCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	policy := orchestrator.RetryPolicy{DefaultDelay: time.Hour, MaxBackoff: time.Hour}
	calls := 0
	started := time.Now()
	_, err := orchestrator.Retry(ctx, policy, func(context.Context) (int, error) {
		calls++
		cancel() // the caller gives up while this attempt fails: Retry is about to wait an hour
		return 0, typed(t, codes.Unavailable, "PROVIDERS_UNAVAILABLE", 0)
	})
	var cancelled *orchestrator.CancelledError
	if !errors.As(err, &cancelled) || calls != 1 || time.Since(started) > 10*time.Second {
		t.Fatalf("calls=%d err=%T %v: want one attempt, then the caller's CancelledError at once", calls, err, err)
	}
}
