package orchestrator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

// longPrompt is 400 words: 2 tokens a chunk every 20 ms on the contract's echo deployment, about 4 s.
var longPrompt = strings.TrimSpace(strings.Repeat("word ", 400))

// echoStatus is the contract's echo deployment as the sidecar reports it (ListModels).
func echoStatus(t *testing.T, client *orchestrator.Client) *v1.DeploymentStatus {
	t.Helper()
	resp, err := client.ListModels(context.Background(), &v1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range resp.GetRoutes() {
		if route.GetAlias() == "echo" {
			return route.GetDeployments()[0].GetStatus()
		}
	}
	t.Fatal("no echo route")
	return nil
}

// TestAStreamStoppedEarlyEndsUpstream checks from the sidecar's side that every way a Go caller
// stops a stream ends the upstream attempt (the deployment has no attempt in flight soon after,
// long before the 4 s the stream would take) and that the sidecar counts it as the caller's, not as
// a provider failure (no last_error on the deployment, its breaker closed).
func TestAStreamStoppedEarlyEndsUpstream(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	who := orchestrator.Tenant("acme", "go-upstream")
	ways := map[string]func(context.CancelFunc, *orchestrator.Stream){
		"Cancel":                         func(_ context.CancelFunc, s *orchestrator.Stream) { s.Cancel() },
		"the caller's context cancelled": func(cancel context.CancelFunc, _ *orchestrator.Stream) { cancel() },
		"a break out of Events": func(_ context.CancelFunc, s *orchestrator.Stream) {
			for range s.Events() {
				break
			}
		},
	}
	for name, stop := range ways {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stream, err := client.Stream(ctx, orchestrator.StreamPrompt(longPrompt, who))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); err != nil {
				t.Fatal(err)
			}
			if got := echoStatus(t, client).GetInFlight(); got != 1 {
				t.Fatalf("in flight while streaming: %d, want 1", got)
			}
			started := time.Now()
			stop(cancel, stream)
			for echoStatus(t, client).GetInFlight() != 0 {
				if time.Since(started) > 2*time.Second {
					t.Fatal("the upstream attempt still runs 2 s after the stream was stopped")
				}
				time.Sleep(20 * time.Millisecond)
			}
			status := echoStatus(t, client)
			if status.GetLastError() != "" || status.GetBreakerState() != v1.BreakerState_BREAKER_STATE_CLOSED {
				t.Fatalf("the caller's stop counted as a provider failure: %v", status)
			}
			_, err = stream.Recv()
			var cancelled *orchestrator.CancelledError
			if !errors.As(err, &cancelled) {
				t.Fatalf("a Recv after the stop: %v, want a *CancelledError", err)
			}
		})
	}
}
