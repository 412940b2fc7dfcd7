package orchestrator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

// TestACallOnAClosedClientIsCancelled: as in every client, a call made after Close fails at once
// with a *CancelledError, which the retry helper never retries.
func TestACallOnAClosedClientIsCancelled(t *testing.T) {
	client, err := orchestrator.New(orchestrator.WithAddress("127.0.0.1:1"), orchestrator.WithToken(""),
		orchestrator.WithRetry(orchestrator.RetryPolicy{DefaultDelay: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = client.Generate(ctx, orchestrator.Prompt("after close", orchestrator.Tenant("acme", "u")))
	var cancelled *orchestrator.CancelledError
	if !errors.As(err, &cancelled) {
		t.Fatalf("%T %v, want a *CancelledError", err, err)
	}
	_, err = client.Stream(ctx, orchestrator.StreamPrompt("after close", orchestrator.Tenant("acme", "u")))
	if !errors.As(err, &cancelled) {
		t.Fatalf("stream: %T %v, want a *CancelledError", err, err)
	}
}

// TestANilEmbedRequestIsAnErrorNotAPanic: with retries on (WithRetry, or inside Retry), Embed gave a
// nil request an id and panicked in proto.Clone; it is the call's error as without retries.
func TestANilEmbedRequestIsAnErrorNotAPanic(t *testing.T) {
	client, err := orchestrator.New(orchestrator.WithAddress("127.0.0.1:1"), orchestrator.WithToken(""),
		orchestrator.WithRetry(orchestrator.RetryPolicy{MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := client.Embed(ctx, nil); err == nil {
		t.Fatal("a nil request succeeded")
	}
}
