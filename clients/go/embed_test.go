package orchestrator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
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
