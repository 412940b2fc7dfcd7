package orchestrator_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

func packed(t *testing.T, msgs ...proto.Message) []*anypb.Any {
	t.Helper()
	var out []*anypb.Any
	for _, m := range msgs {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

func statusErr(code codes.Code, details []*anypb.Any) error {
	return status.ErrorProto(&spb.Status{Code: int32(code), Message: "m", Details: details})
}

func TestQuotaErrorDecodesEveryDetail(t *testing.T) {
	err := orchestrator.FromError(statusErr(codes.ResourceExhausted, packed(t,
		&errdetails.ErrorInfo{Reason: "RATE_LIMITED", Metadata: map[string]string{"limit": "rpm"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(3500 * time.Millisecond)},
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "s", Description: "d"}}},
	)), 0)
	var quota *orchestrator.QuotaExceededError
	if !errors.As(err, &quota) {
		t.Fatalf("%T is not a QuotaExceededError", err)
	}
	if quota.Reason != "RATE_LIMITED" || quota.Metadata["limit"] != "rpm" || !quota.HasRetryDelay ||
		quota.RetryDelay != 3500*time.Millisecond || len(quota.QuotaViolations) != 1 {
		t.Fatalf("decoded %+v", quota.StatusError)
	}
	var base *orchestrator.StatusError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &base) || status.Code(err) != codes.ResourceExhausted {
		t.Fatal("the base StatusError and the gRPC code are reachable through wrapping")
	}
}

// gRPC's own RESOURCE_EXHAUSTED (an oversized message, the server's concurrent-call limit) has no
// ErrorInfo reason: a TransportLimitError, never the quota error an application shows as "out of budget".
func TestResourceExhaustedWithoutTheSidecarsReasonIsATransportLimit(t *testing.T) {
	for name, details := range map[string][]*anypb.Any{
		"no details":         nil,
		"an empty ErrorInfo": packed(t, &errdetails.ErrorInfo{}),
	} {
		err := orchestrator.FromError(statusErr(codes.ResourceExhausted, details), 0)
		var limit *orchestrator.TransportLimitError
		var quota *orchestrator.QuotaExceededError
		if !errors.As(err, &limit) || errors.As(err, &quota) {
			t.Fatalf("%s: %T, want only a TransportLimitError", name, err)
		}
	}
}

func TestStreamInterruptedIsUnavailableWithPartialUsage(t *testing.T) {
	info := &errdetails.ErrorInfo{Reason: "STREAM_INTERRUPTED",
		Metadata: map[string]string{"promptTokens": "7", "completionTokens": "2", "usageEstimated": "true"}}
	err := orchestrator.FromError(statusErr(codes.Unavailable, packed(t, info)), 1)
	var interrupted *orchestrator.StreamInterruptedError
	var unavailable *orchestrator.UnavailableError
	if !errors.As(err, &interrupted) || !errors.As(err, &unavailable) {
		t.Fatalf("%T should match both StreamInterruptedError and UnavailableError", err)
	}
	usage, ok := interrupted.PartialUsage()
	if !ok || usage != (orchestrator.PartialUsage{PromptTokens: 7, CompletionTokens: 2, Estimated: true}) {
		t.Fatalf("partial usage %+v %v", usage, ok)
	}
	info.Metadata["promptTokens"] = "-3"
	err = orchestrator.FromError(statusErr(codes.Unavailable, packed(t, info)), 1)
	if errors.As(err, &interrupted); func() bool { _, ok := interrupted.PartialUsage(); return ok }() {
		t.Fatal("a negative count is not a usage")
	}
}

func TestMalformedOrMissingDetailsNeverCrash(t *testing.T) {
	cases := map[string][]*anypb.Any{
		"none":              nil,
		"garbled ErrorInfo": {{TypeUrl: "type.googleapis.com/google.rpc.ErrorInfo", Value: []byte{0xff, 0x01}}},
		"unknown type":      {{TypeUrl: "type.googleapis.com/unknown.Thing", Value: []byte("x")}},
		"empty type url":    {{}},
		"negative delay":    packed(t, &errdetails.RetryInfo{RetryDelay: &durationpb.Duration{Seconds: -5}}),
		"invalid delay":     packed(t, &errdetails.RetryInfo{RetryDelay: &durationpb.Duration{Seconds: 1, Nanos: -1}}),
	}
	for name, details := range cases {
		t.Run(name, func(t *testing.T) {
			err := orchestrator.FromError(statusErr(codes.InvalidArgument, details), 0)
			var invalid *orchestrator.InvalidRequestError
			if !errors.As(err, &invalid) {
				t.Fatalf("%T", err)
			}
			if invalid.Reason != "" || invalid.HasRetryDelay || len(invalid.FieldViolations) != 0 {
				t.Fatalf("decoded something from nothing: %+v", invalid.StatusError)
			}
		})
	}
}

func TestFromErrorKeepsNilAndForeignErrors(t *testing.T) {
	if orchestrator.FromError(nil, 0) != nil {
		t.Fatal("nil must stay nil")
	}
	plain := errors.New("not grpc")
	if orchestrator.FromError(plain, 0) != plain {
		t.Fatal("a non-status error is returned as it is")
	}
	var internal *orchestrator.InternalError
	if !errors.As(orchestrator.FromError(status.Error(codes.DataLoss, "x"), 0), &internal) {
		t.Fatal("an unmapped code is an InternalError")
	}
}

// TestFamiliesByCode: every gRPC code the sidecar sends maps to the family the TypeScript and Java
// clients give it too (a conflicting Feedback score, FEEDBACK_EXISTS, and a superseded Switch are
// conflicts to handle, not internal errors to report).
func TestFamiliesByCode(t *testing.T) {
	cases := []struct {
		code   codes.Code
		reason string
		match  func(error) bool
	}{
		{codes.AlreadyExists, "FEEDBACK_EXISTS", func(err error) bool { var e *orchestrator.ConflictError; return errors.As(err, &e) }},
		{codes.Aborted, "SWITCH_SUPERSEDED", func(err error) bool { var e *orchestrator.ConflictError; return errors.As(err, &e) }},
		{codes.Aborted, "ROTATION_IN_PROGRESS", func(err error) bool { var e *orchestrator.ConflictError; return errors.As(err, &e) }},
		{codes.OutOfRange, "", func(err error) bool { var e *orchestrator.InvalidRequestError; return errors.As(err, &e) }},
		{codes.Unimplemented, "", func(err error) bool { var e *orchestrator.InternalError; return errors.As(err, &e) }},
		{codes.Unavailable, "SOME_FUTURE_REASON", func(err error) bool { var e *orchestrator.UnavailableError; return errors.As(err, &e) }},
	}
	for _, c := range cases {
		err := orchestrator.FromError(statusErr(c.code, packed(t, &errdetails.ErrorInfo{Reason: c.reason})), 0)
		if !c.match(err) {
			t.Errorf("%s %s decoded as %T", c.code, c.reason, err)
		}
	}
}

// TestAStreamBrokenAfterADeltaIsInterrupted: a stream whose connection broke after a delta (the
// sidecar killed: UNAVAILABLE with no details) is a *StreamInterruptedError, as the Stream docs say
// of every error after a delta, not a plain *UnavailableError a caller would retry.
func TestAStreamBrokenAfterADeltaIsInterrupted(t *testing.T) {
	broken := status.Error(codes.Unavailable, "error reading from server: EOF")
	var interrupted *orchestrator.StreamInterruptedError
	if err := orchestrator.FromError(broken, 2); !errors.As(err, &interrupted) {
		t.Fatalf("after 2 deltas: %T", err)
	}
	if _, ok := interrupted.PartialUsage(); ok || interrupted.DeltasReceived != 2 {
		t.Fatalf("no usage was sent: %+v", interrupted.StatusError)
	}
	if err := orchestrator.FromError(broken, 0); errors.As(err, &interrupted) {
		t.Fatal("before any delta a broken connection is a plain UnavailableError (retryable)")
	}
	other := statusErr(codes.Unavailable, packed(t, &errdetails.ErrorInfo{Reason: "SCHEMA_VALIDATION_FAILED"}))
	if err := orchestrator.FromError(other, 2); errors.As(err, &interrupted) {
		t.Fatal("a reason the sidecar gave keeps its own family")
	}
}

// TestPartialUsageOnlyFromPlainDigits: a token count is ASCII digits, nothing else (the same rule in
// every client): signs, fractions, exponents, hex, blanks, other scripts' digits and overflows are
// no usage, never a crash.
func TestPartialUsageOnlyFromPlainDigits(t *testing.T) {
	for _, bad := range []string{"²", "٣", "+7", "-0", "7.5", "1e3", "0x10", "", " 7", "99999999999999999999"} {
		info := &errdetails.ErrorInfo{Reason: "STREAM_INTERRUPTED",
			Metadata: map[string]string{"promptTokens": bad, "completionTokens": "2"}}
		var interrupted *orchestrator.StreamInterruptedError
		if !errors.As(orchestrator.FromError(statusErr(codes.Unavailable, packed(t, info)), 1), &interrupted) {
			t.Fatalf("%q: not a StreamInterruptedError", bad)
		}
		if usage, ok := interrupted.PartialUsage(); ok {
			t.Errorf("promptTokens %q read as %+v", bad, usage)
		}
	}
}
