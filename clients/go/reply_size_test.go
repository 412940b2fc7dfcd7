package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

// The largest reply a call accepts is the same in every client (DefaultMaxReplyBytes, 256 MiB):
// the Go client took gRPC's own 4 MiB, so an answer the Python client received failed here. The
// sidecar's `xlarge` route echoes the prompt: a prompt of n bytes is a reply of n bytes and a little.

const replyLimit = 1 << 20 // a limit set by the caller

func largePrompt(size int) *v1.GenerateRequest {
	text := strings.Repeat("word ", size/5+1)[:size]
	return orchestrator.Prompt(text, orchestrator.Model("xlarge"), orchestrator.Tenant("acme", "reply-size"))
}

func TestReplySize(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("the default is the largest reply the sidecar may send", func(t *testing.T) {
		if orchestrator.DefaultMaxReplyBytes != 256<<20 {
			t.Fatalf("DefaultMaxReplyBytes = %d", orchestrator.DefaultMaxReplyBytes)
		}
		client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		const size = 5 << 20 // past the 4 MiB gRPC accepts unless told otherwise
		resp, err := client.Generate(ctx, largePrompt(size))
		if err != nil {
			t.Fatalf("a %d-byte reply: %v", size, err)
		}
		if got := len(orchestrator.Text(resp)); got != size {
			t.Fatalf("the answer has %d bytes, not %d", got, size)
		}
	})

	t.Run("just under the limit arrives, over it fails", func(t *testing.T) {
		client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token),
			orchestrator.WithMaxReplyBytes(replyLimit))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		under, err := client.Generate(ctx, largePrompt(replyLimit-512)) // the text and ~150 bytes of the rest
		if err != nil {
			t.Fatalf("just under the limit: %v", err)
		}
		if proto.Size(under) > replyLimit {
			t.Fatalf("the reply under the limit has %d bytes", proto.Size(under))
		}
		_, err = client.Generate(ctx, largePrompt(replyLimit+1))
		var limit *orchestrator.TransportLimitError
		if !errors.As(err, &limit) || limit.Code != codes.ResourceExhausted || limit.Reason != "" {
			t.Fatalf("over the limit: want a TransportLimitError, RESOURCE_EXHAUSTED, got %T %v", err, err)
		}
		var quota *orchestrator.QuotaExceededError
		if errors.As(err, &quota) { // gRPC's own refusal, not the caller's budget
			t.Fatalf("over the limit: a QuotaExceededError: %v", err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("vs. %d", replyLimit)) {
			t.Fatalf("the error does not name the limit: %v", err)
		}
	})

	t.Run("a request over the sidecar's own limit is a transport limit too", func(t *testing.T) {
		client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		// past settings.max_receive_message_bytes (8 MiB): the sidecar's gRPC refuses it, no ErrorInfo
		req := orchestrator.Prompt(strings.Repeat("x", 9<<20), orchestrator.Model("xlarge"), orchestrator.Tenant("acme", "reply-size"))
		_, err = client.Generate(ctx, req)
		var limit *orchestrator.TransportLimitError
		if !errors.As(err, &limit) || limit.Code != codes.ResourceExhausted {
			t.Fatalf("want a TransportLimitError, got %T %v", err, err)
		}
	})

	t.Run("the sidecar's quota refusal stays a quota error", func(t *testing.T) {
		client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		req := orchestrator.Prompt("one too many", orchestrator.Tenant("scarce-tenant", "u-reply-size"))
		if _, err := client.Generate(ctx, req); err != nil {
			t.Fatalf("the first call of the minute: %v", err)
		}
		_, err = client.Generate(ctx, req)
		var quota *orchestrator.QuotaExceededError
		if !errors.As(err, &quota) || quota.Reason != "RATE_LIMITED" {
			t.Fatalf("want a QuotaExceededError RATE_LIMITED, got %T %v", err, err)
		}
	})

	t.Run("a limit outside 1 byte to 2 GiB - 1 is refused", func(t *testing.T) {
		for _, bad := range []int{0, -1, 1 << 31} {
			if _, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithMaxReplyBytes(bad)); err == nil {
				t.Fatalf("WithMaxReplyBytes(%d) was accepted", bad)
			}
		}
	})
}
