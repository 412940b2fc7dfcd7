package orchestrator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

// TestATokenWithATrailingNewlineIsSentWithoutIt: a token read from a file or a Kubernetes secret
// often ends with a newline; grpc-go refused the header and every call failed INTERNAL (the Python
// client died with grpc's own exception, Java sent no token, TypeScript the trimmed one): all four
// now send it trimmed.
func TestATokenWithATrailingNewlineIsSentWithoutIt(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken("  "+contract.Token+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Generate(ctx, orchestrator.Prompt("hi", orchestrator.Tenant("acme", "token")))
	if err != nil || orchestrator.Text(resp) != "hi" {
		t.Fatalf("%v %v", resp, err)
	}
}

// TestATokenNoHeaderCanCarryIsRefused: New refuses it, without showing it.
func TestATokenNoHeaderCanCarryIsRefused(t *testing.T) {
	for _, bad := range []string{"a\nb", "tok\x00", "t\u00e9"} {
		client, err := orchestrator.New(orchestrator.WithAddress("127.0.0.1:1"), orchestrator.WithToken(bad))
		if err == nil {
			client.Close()
			t.Errorf("%q: accepted", bad)
		} else if !strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
