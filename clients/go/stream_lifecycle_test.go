package orchestrator_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

// TestAStreamReadToItsResultReleasesItsCall: a caller that stops calling Recv once it has the
// result (the stream's last event) leaks nothing: grpc-go keeps a stream's goroutine until Recv
// returns an error or its context ends, and Stream's own context never ended, so every such stream
// held a goroutine for the life of the caller's context (200 streams, 200 goroutines).
func TestAStreamReadToItsResultReleasesItsCall(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background() // a caller's long-lived context: it never ends the streams itself
	who := orchestrator.Tenant("acme", "go-lifecycle")
	if _, err := client.Generate(ctx, orchestrator.Prompt("warm up the connection", who)); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := runtime.NumGoroutine()
	const streams = 50
	for i := 0; i < streams; i++ {
		stream, err := client.Stream(ctx, orchestrator.StreamPrompt("a b c d", who))
		if err != nil {
			t.Fatal(err)
		}
		for {
			event, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if event.GetResult() != nil {
				break // the answer is complete: this caller reads no further
			}
		}
		if stream.Result() == nil || stream.Text() != "a b c d" {
			t.Fatalf("result %v, text %q", stream.Result(), stream.Text())
		}
		if i == 0 { // a read after the result still ends the stream as documented
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("a Recv after the result: %v, want io.EOF", err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Fatalf("%d goroutines before %d streams read to their result, %d after", before, streams, after)
	}
}
