package orchestrator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

// loseFirstReply lets the first call of each method reach the sidecar (which runs and charges it),
// then reports UNAVAILABLE as if its reply was lost, and records the request id every attempt sent.
func loseFirstReply(ids map[string][]string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		switch r := req.(type) {
		case *v1.GenerateRequest:
			ids[method] = append(ids[method], r.GetInput().GetRequestId())
		case *v1.EmbedRequest:
			ids[method] = append(ids[method], r.GetRequestId())
		default:
			return err
		}
		if len(ids[method]) == 1 && err == nil {
			return status.Error(codes.Unavailable, "the reply was lost on the way")
		}
		return err
	}
}

// TestRetryWrappingGenerateKeepsOneRequestID: orchestrator.Retry around the client's own Generate
// and Embed (a client made without WithRetry) retries them under one request_id, as WithRetry does,
// so an attempt whose reply was lost is replayed by the sidecar instead of charged twice.
func TestRetryWrappingGenerateKeepsOneRequestID(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	ids := map[string][]string{}
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token),
		orchestrator.WithDialOptions(grpc.WithChainUnaryInterceptor(loseFirstReply(ids))))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	policy := orchestrator.RetryPolicy{DefaultDelay: time.Millisecond}
	who := orchestrator.Tenant("go-retry-wrapped", "u")

	answer, err := orchestrator.Retry(ctx, policy, func(ctx context.Context) (*v1.GenerateResponse, error) {
		return client.Generate(ctx, orchestrator.Prompt("a lost reply", who))
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := ids[v1.GenerationService_Generate_FullMethodName]
	if len(sent) != 2 || sent[0] == "" || sent[0] != sent[1] {
		t.Fatalf("the two Generate attempts carried request ids %q: want one id, the same twice", sent)
	}
	if !answer.GetSummary().GetReplayed() {
		t.Fatal("the retried Generate ran again: charged twice")
	}

	vectors, err := orchestrator.Retry(ctx, policy, func(ctx context.Context) (*v1.EmbedResponse, error) {
		return client.Embed(ctx, orchestrator.Texts("go-retry-wrapped", "u", "a lost reply"))
	})
	if err != nil {
		t.Fatal(err)
	}
	sent = ids[v1.GenerationService_Embed_FullMethodName]
	if len(sent) != 2 || sent[0] == "" || sent[0] != sent[1] || !vectors.GetReplayed() {
		t.Fatalf("the two Embed attempts carried request ids %q (replayed %v): want one id, the same twice",
			sent, vectors.GetReplayed())
	}

	// two calls in one attempt get two ids, the same two again in the next attempt
	quiet, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	var pairs [][2]string
	_, err = orchestrator.Retry(ctx, policy, func(ctx context.Context) (int, error) {
		var pair [2]string
		for i, text := range []string{"first of two", "second of two"} {
			resp, err := quiet.Generate(ctx, orchestrator.Prompt(text, who))
			if err != nil {
				return 0, err
			}
			pair[i] = resp.GetSummary().GetRequestId()
		}
		pairs = append(pairs, pair)
		if len(pairs) == 1 {
			return 0, status.Error(codes.Unavailable, "try the pair again")
		}
		return 0, nil
	})
	if err != nil || len(pairs) != 2 || pairs[0] != pairs[1] || pairs[0][0] == pairs[0][1] {
		t.Fatalf("attempts sent request ids %q (err %v): want two distinct ids, the same in both attempts", pairs, err)
	}
}

// TestRetryWrappingTheGeneratedStubKeepsOneRequestID: orchestrator.Retry around the exposed stub's
// Generate and Embed (client.Generation), whose requests carry no request_id, sent every attempt
// without one: the sidecar generated and charged a retried call again. They get the Retry's ids now,
// as the client's own Generate and Embed do.
func TestRetryWrappingTheGeneratedStubKeepsOneRequestID(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	ids := map[string][]string{}
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token),
		orchestrator.WithDialOptions(grpc.WithChainUnaryInterceptor(loseFirstReply(ids))))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	policy := orchestrator.RetryPolicy{DefaultDelay: time.Millisecond}
	who := orchestrator.Tenant("go-retry-stub", "u")

	answer, err := orchestrator.Retry(ctx, policy, func(ctx context.Context) (*v1.GenerateResponse, error) {
		return client.Generation.Generate(ctx, orchestrator.Prompt("a lost reply, the stub's", who))
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := ids[v1.GenerationService_Generate_FullMethodName]
	if len(sent) != 2 || sent[0] == "" || sent[0] != sent[1] || !answer.GetSummary().GetReplayed() {
		t.Fatalf("the stub's Generate attempts carried request ids %q (replayed %v): want one id, the same twice",
			sent, answer.GetSummary().GetReplayed())
	}
	vectors, err := orchestrator.Retry(ctx, policy, func(ctx context.Context) (*v1.EmbedResponse, error) {
		return client.Generation.Embed(ctx, orchestrator.Texts("go-retry-stub", "u", "a lost reply"))
	})
	if err != nil {
		t.Fatal(err)
	}
	sent = ids[v1.GenerationService_Embed_FullMethodName]
	if len(sent) != 2 || sent[0] == "" || sent[0] != sent[1] || !vectors.GetReplayed() {
		t.Fatalf("the stub's Embed attempts carried request ids %q (replayed %v)", sent, vectors.GetReplayed())
	}
}

// TestRetryAroundAClientWithRetryMakesTheOuterPolicysAttempts: a client made WithRetry and called
// inside orchestrator.Retry retried each outer attempt again with its own policy, MaxAttempts times
// MaxAttempts attempts (16 by default, and their waits), past both policies. Inside Retry, the
// client's calls are made once per attempt: the outer Retry's policy decides.
func TestRetryAroundAClientWithRetryMakesTheOuterPolicysAttempts(t *testing.T) {
	attempts := 0
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		attempts++
		return status.Error(codes.Unavailable, "the sidecar is restarting")
	}
	client, err := orchestrator.New(orchestrator.WithAddress("127.0.0.1:1"), orchestrator.WithToken(""),
		orchestrator.WithRetry(orchestrator.RetryPolicy{MaxAttempts: 3, DefaultDelay: time.Microsecond}),
		orchestrator.WithDialOptions(grpc.WithChainUnaryInterceptor(count)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = orchestrator.Retry(ctx, orchestrator.RetryPolicy{MaxAttempts: 2, DefaultDelay: time.Microsecond},
		func(ctx context.Context) (*v1.GetQuotaResponse, error) { return client.GetQuota(ctx, "acme", "u") })
	var unavailable *orchestrator.UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("err %v, want an *UnavailableError", err)
	}
	if attempts != 2 {
		t.Fatalf("%d attempts, want the outer Retry's 2", attempts)
	}
	attempts = 0
	if _, err := client.GetQuota(ctx, "acme", "u"); !errors.As(err, &unavailable) || attempts != 3 {
		t.Fatalf("outside Retry: %d attempts (%v), want WithRetry's 3", attempts, err)
	}
}

// TestWithRetryRetriesListModels: WithRetry retried every read but ListModels (Python's retry_policy
// covers list_models), so a service listing routes at start-up failed on the sidecar's first restart.
func TestWithRetryRetriesListModels(t *testing.T) {
	attempts := 0
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		attempts++
		return status.Error(codes.Unavailable, "the sidecar is restarting")
	}
	client, err := orchestrator.New(orchestrator.WithAddress("127.0.0.1:1"), orchestrator.WithToken(""),
		orchestrator.WithRetry(orchestrator.RetryPolicy{MaxAttempts: 3, DefaultDelay: time.Microsecond}),
		orchestrator.WithDialOptions(grpc.WithChainUnaryInterceptor(count)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var unavailable *orchestrator.UnavailableError
	if _, err := client.ListModels(context.Background(), &v1.ListModelsRequest{}); !errors.As(err, &unavailable) || attempts != 3 {
		t.Fatalf("%d attempts (%v), want WithRetry's 3", attempts, err)
	}
}
