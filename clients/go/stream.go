package orchestrator

import (
	"context"
	"errors"
	"io"
	"iter"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

// Stream is one StreamGenerate call: Recv until io.EOF (or range over Events). After a successful
// end, Result is the final GenerateResponse and Text the joined deltas. Errors are typed; one that
// follows a delta is a *StreamInterruptedError with PartialUsage. The call is released once it has
// ended (its result read, a failure, Cancel), so a caller may stop reading at the result.
type Stream struct {
	call      v1.GenerationService_StreamGenerateClient
	cancel    context.CancelFunc
	cancelled atomic.Bool
	deltas    int
	text      strings.Builder
	result    *v1.GenerateResponse
	ending    chan struct{}              // closed once the read after the result is in (pending or done)
	pending   *v1.StreamGenerateResponse // read after the result (a peer's error): returned next
	done      error                      // the call's end, io.EOF or typed, returned by every later Recv
}

// Stream starts generating; ctx's deadline and cancellation apply to the whole stream.
func (c *Client) Stream(ctx context.Context, req *v1.StreamGenerateRequest) (*Stream, error) {
	ctx, cancel := context.WithCancel(ctx)
	call, err := c.Generation.StreamGenerate(ctx, req)
	if err != nil {
		cancel()
		return nil, FromError(err, 0)
	}
	return &Stream{call: call, cancel: cancel}, nil
}

// Recv returns the next event, io.EOF after the result, or a typed error.
func (s *Stream) Recv() (*v1.StreamGenerateResponse, error) {
	if s.ending != nil {
		<-s.ending
		s.ending = nil
	}
	if event := s.pending; event != nil {
		s.pending = nil
		return s.record(event), nil
	}
	if s.done != nil {
		return nil, s.done
	}
	event, err := s.call.Recv()
	if err != nil {
		s.done = s.end(err)
		return nil, s.done
	}
	return s.record(event), nil
}

func (s *Stream) record(event *v1.StreamGenerateResponse) *v1.StreamGenerateResponse {
	switch e := event.GetEvent().(type) {
	case *v1.StreamGenerateResponse_Delta:
		s.deltas++
		s.text.WriteString(e.Delta.GetText())
	case *v1.StreamGenerateResponse_Result:
		s.result = e.Result
		s.readTheEnd()
	}
	return event
}

// readTheEnd reads, in the background, the call's end, which the sidecar sends right after the
// result: grpc-go holds a stream's resources until a read returns its end, and a caller may well stop
// reading at the result. The caller gets the result at once; a next Recv waits for the end.
func (s *Stream) readTheEnd() {
	if s.done != nil || s.ending != nil {
		return
	}
	ending := make(chan struct{})
	s.ending = ending
	go func() {
		defer close(ending)
		extra, err := s.call.Recv()
		if err != nil {
			s.done = s.end(err)
			return
		}
		s.pending = extra
	}()
}

// end is what Recv reports for the call's end (io.EOF after a result, else a typed error); it
// releases the call.
func (s *Stream) end(err error) error {
	s.cancel()
	switch {
	case errors.Is(err, io.EOF) && s.result != nil:
		return io.EOF
	case errors.Is(err, io.EOF):
		return classify(decode(status.New(codes.Unavailable, "the stream ended without a result"), s.deltas))
	case s.cancelled.Load():
		return &CancelledError{decode(status.New(codes.Canceled, "cancelled by the client"), s.deltas)}
	default:
		return FromError(err, s.deltas)
	}
}

// Events ranges over the stream; a failure is the last pair's error (io.EOF is not reported).
func (s *Stream) Events() iter.Seq2[*v1.StreamGenerateResponse, error] {
	return func(yield func(*v1.StreamGenerateResponse, error) bool) {
		for {
			event, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(event, err) || err != nil {
				if err == nil && s.result == nil { // left before the answer was complete
					s.Cancel()
				}
				return
			}
		}
	}
}

// Cancel stops the call; the next Recv returns a *CancelledError (its end as before if it had ended).
func (s *Stream) Cancel() {
	s.cancelled.Store(true)
	s.cancel()
}

// Result is the final response, nil until the stream has ended successfully.
func (s *Stream) Result() *v1.GenerateResponse { return s.result }

// Text is the deltas received so far, joined.
func (s *Stream) Text() string { return s.text.String() }

// Deltas is how many deltas were received.
func (s *Stream) Deltas() int { return s.deltas }
