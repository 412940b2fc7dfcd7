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

// TestEmbed: Texts builds the request, Embed returns a vector per text, with retries configured,
// and a bad batch is a typed *InvalidRequestError naming the field.
func TestEmbed(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token),
		orchestrator.WithRetry(orchestrator.RetryPolicy{}))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Embed(ctx, orchestrator.Texts("go", "u", "a cat", "a dog"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEmbeddings()) != 2 || !resp.GetNormalized() {
		t.Fatalf("expected 2 normalized vectors, got %v", resp)
	}
	for _, e := range resp.GetEmbeddings() {
		if len(e.GetValues()) != int(resp.GetDimensions()) {
			t.Fatalf("a vector of %d values, dimensions %d", len(e.GetValues()), resp.GetDimensions())
		}
	}
	_, err = client.Embed(ctx, orchestrator.Texts("go", "u"))
	var invalid *orchestrator.InvalidRequestError
	if !errors.As(err, &invalid) {
		t.Fatalf("expected an InvalidRequestError, got %v", err)
	}
	if fields := invalid.FieldViolations; len(fields) != 1 || fields[0].Field != "texts" {
		t.Fatalf("expected a violation of texts, got %v", fields)
	}
}

// TestEmbedRetryIsChargedOnce: with WithRetry, an Embed whose reply was lost (the sidecar ran and
// charged it, the client saw UNAVAILABLE) is retried under the same request_id, so the sidecar
// replays its first answer instead of embedding, and charging, again.
func TestEmbedRetryIsChargedOnce(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	var ids []string
	loseFirstReply := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if embed, ok := req.(*v1.EmbedRequest); ok {
			ids = append(ids, embed.GetRequestId())
			if len(ids) == 1 && err == nil {
				return status.Error(codes.Unavailable, "the reply was lost on the way")
			}
		}
		return err
	}
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token),
		orchestrator.WithRetry(orchestrator.RetryPolicy{DefaultDelay: time.Millisecond}),
		orchestrator.WithDialOptions(grpc.WithChainUnaryInterceptor(loseFirstReply)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Embed(ctx, orchestrator.Texts("go-embed-retry", "u", "a lost reply"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0] == "" || ids[0] != ids[1] {
		t.Fatalf("the two attempts carried request ids %q: want one id, the same twice", ids)
	}
	if !resp.GetReplayed() || resp.GetRequestId() != ids[0] {
		t.Fatalf("the retry was embedded again (replayed=%v, request id %q): charged twice", resp.GetReplayed(), resp.GetRequestId())
	}
}
