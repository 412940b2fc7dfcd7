package orchestrator

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StatusError is every failed call, decoded once from its google.rpc.Status: the code, the stable
// ErrorInfo reason and metadata, RetryInfo as a duration, BadRequest and QuotaFailure violations.
// A missing or malformed details payload leaves those fields empty. Match a family with errors.As
// (*QuotaExceededError, *InvalidRequestError, ...), or the base with errors.As(err, &*StatusError).
type StatusError struct {
	Code            codes.Code
	Message         string
	Reason          string // ErrorInfo.reason, e.g. MODEL_NOT_FOUND; empty when the status had none
	Domain          string
	Metadata        map[string]string
	RetryDelay      time.Duration // from RetryInfo; HasRetryDelay tells whether one was sent
	HasRetryDelay   bool
	FieldViolations []FieldViolation
	QuotaViolations []QuotaViolation
	DeltasReceived  int // stream deltas received before the error
	status          *status.Status
	noRetry         bool // a call no retry may repeat (Switch): RetryPolicy.Delay gives up
}

// FieldViolation is one bad request field (BadRequest).
type FieldViolation struct{ Field, Description string }

// QuotaViolation is one exhausted limit (QuotaFailure).
type QuotaViolation struct{ Subject, Description string }

// PartialUsage is what an interrupted stream used before it broke (estimated by the sidecar).
type PartialUsage struct {
	PromptTokens, CompletionTokens int64
	Estimated                      bool
}

func (e *StatusError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s %s: %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// GRPCStatus lets status.FromError and status.Code see the original status.
func (e *StatusError) GRPCStatus() *status.Status { return e.status }

// The error families, one per kind of failure (matched with errors.As).
type (
	InvalidRequestError     struct{ *StatusError } // INVALID_ARGUMENT: fix the request (FieldViolations)
	AuthenticationError     struct{ *StatusError } // UNAUTHENTICATED: MISSING_CREDENTIALS, INVALID_CREDENTIALS
	PermissionDeniedError   struct{ *StatusError } // PERMISSION_DENIED: METHOD_NOT_ALLOWED, TENANT_NOT_ALLOWED, ...
	NotFoundError           struct{ *StatusError } // NOT_FOUND: MODEL_NOT_FOUND, ...
	FailedPreconditionError struct{ *StatusError } // FAILED_PRECONDITION: USER_KEY_REQUIRED, ...
	QuotaExceededError      struct{ *StatusError } // RESOURCE_EXHAUSTED with the sidecar's reason: RATE_LIMITED, *_QUOTA_EXCEEDED, ...
	TransportLimitError     struct{ *StatusError } // RESOURCE_EXHAUSTED from gRPC itself, no reason: a message over a size limit, the sidecar's concurrent-call limit
	ConflictError           struct{ *StatusError } // ABORTED, ALREADY_EXISTS: SWITCH_SUPERSEDED, FEEDBACK_EXISTS, ...
	UnavailableError        struct{ *StatusError } // UNAVAILABLE: PROVIDERS_UNAVAILABLE, stores down, sidecar unreachable
	StreamInterruptedError  struct{ *StatusError } // UNAVAILABLE after a delta (STREAM_INTERRUPTED, or a broken connection); also an *UnavailableError
	DeadlineExceededError   struct{ *StatusError } // DEADLINE_EXCEEDED
	CancelledError          struct{ *StatusError } // CANCELLED: the caller (or Stream.Cancel) cancelled
	InternalError           struct{ *StatusError } // INTERNAL and anything else
)

func (e *InvalidRequestError) Unwrap() error     { return e.StatusError }
func (e *AuthenticationError) Unwrap() error     { return e.StatusError }
func (e *PermissionDeniedError) Unwrap() error   { return e.StatusError }
func (e *NotFoundError) Unwrap() error           { return e.StatusError }
func (e *FailedPreconditionError) Unwrap() error { return e.StatusError }
func (e *QuotaExceededError) Unwrap() error      { return e.StatusError }
func (e *TransportLimitError) Unwrap() error     { return e.StatusError }
func (e *ConflictError) Unwrap() error           { return e.StatusError }
func (e *UnavailableError) Unwrap() error        { return e.StatusError }
func (e *DeadlineExceededError) Unwrap() error   { return e.StatusError }
func (e *CancelledError) Unwrap() error          { return e.StatusError }
func (e *InternalError) Unwrap() error           { return e.StatusError }

// Unwrap makes a StreamInterruptedError match *UnavailableError too.
func (e *StreamInterruptedError) Unwrap() error { return &UnavailableError{e.StatusError} }

// PartialUsage is the usage counted before the stream broke; ok is false when the sidecar sent none.
func (e *StreamInterruptedError) PartialUsage() (usage PartialUsage, ok bool) {
	prompt, ok1 := tokenCount(e.Metadata["promptTokens"])
	completion, ok2 := tokenCount(e.Metadata["completionTokens"])
	if !ok1 || !ok2 {
		return PartialUsage{}, false
	}
	return PartialUsage{prompt, completion, e.Metadata["usageEstimated"] == "true"}, true
}

// tokenCount reads a count the way every client does: ASCII digits only (no sign, blank, fraction,
// exponent or other script's digits), within an int64.
func tokenCount(s string) (int64, bool) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// FromError turns an error from a generated stub into its typed family; nil stays nil, and an
// error that is not a gRPC status is returned as it is.
func FromError(err error, deltas int) error {
	if err == nil {
		return nil
	}
	var typed *StatusError
	if errors.As(err, &typed) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return classify(decode(st, deltas))
}

func decode(st *status.Status, deltas int) *StatusError {
	e := &StatusError{Code: st.Code(), Message: st.Message(), Metadata: map[string]string{}, DeltasReceived: deltas, status: st}
	for _, detail := range st.Details() { // an undecodable detail is an error value here: skipped
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			if e.Reason == "" {
				e.Reason, e.Domain = d.GetReason(), d.GetDomain()
				for k, v := range d.GetMetadata() {
					e.Metadata[k] = v
				}
			}
		case *errdetails.RetryInfo:
			// a negative delay is none; one past time.Duration (or past Duration's own range, from a
			// hostile server) saturates, so it counts as too long to wait, never as no RetryInfo
			if delay := d.GetRetryDelay(); delay != nil && delay.GetSeconds() >= 0 && delay.GetNanos() >= 0 {
				e.RetryDelay, e.HasRetryDelay = delay.AsDuration(), true
			}
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.FieldViolations = append(e.FieldViolations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.QuotaFailure:
			for _, v := range d.GetViolations() {
				e.QuotaViolations = append(e.QuotaViolations, QuotaViolation{v.GetSubject(), v.GetDescription()})
			}
		}
	}
	return e
}

func classify(e *StatusError) error {
	// a stream that broke after a delta without the sidecar saying why (the connection reset, the
	// sidecar killed) is as interrupted as one it reports: the caller has seen part of the answer
	if e.Reason == "STREAM_INTERRUPTED" || e.Code == codes.Unavailable && e.Reason == "" && e.DeltasReceived > 0 {
		return &StreamInterruptedError{e}
	}
	switch e.Code {
	case codes.InvalidArgument, codes.OutOfRange:
		return &InvalidRequestError{e}
	case codes.Unauthenticated:
		return &AuthenticationError{e}
	case codes.PermissionDenied:
		return &PermissionDeniedError{e}
	case codes.NotFound:
		return &NotFoundError{e}
	case codes.FailedPrecondition:
		return &FailedPreconditionError{e}
	case codes.ResourceExhausted:
		if e.Reason == "" { // gRPC's own refusal: the sidecar's quota errors always say which limit
			return &TransportLimitError{e}
		}
		return &QuotaExceededError{e}
	case codes.Aborted, codes.AlreadyExists:
		return &ConflictError{e}
	case codes.Unavailable:
		return &UnavailableError{e}
	case codes.DeadlineExceeded:
		return &DeadlineExceededError{e}
	case codes.Canceled:
		return &CancelledError{e}
	default:
		return &InternalError{e}
	}
}
