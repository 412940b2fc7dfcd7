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

// TestSwitchIsNeverRetried: a Switch the sidecar applied and whose reply was lost (UNAVAILABLE), with
// another Switch of the conversation applied meanwhile, is not repeated by WithRetry nor by Retry: a
// repeat would take a newer version and undo the Switch made in between.
func TestSwitchIsNeverRetried(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
	switches := 0
	var plain *orchestrator.Client
	interleave := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if sw, ok := req.(*v1.SwitchRequest); ok && sw.GetPersonaId() == "helper" {
			switches++
			if err == nil {
				other := &v1.SwitchRequest{TenantId: sw.GetTenantId(), UserId: sw.GetUserId(),
					ConversationId: sw.GetConversationId(), Target: &v1.SwitchRequest_PersonaId{PersonaId: "critic"}}
				if _, err := plain.Conversations.Switch(ctx, other); err != nil {
					return err
				}
				return status.Error(codes.Unavailable, "the reply was lost on the way")
			}
		}
		return err
	}
	policy := orchestrator.RetryPolicy{DefaultDelay: time.Millisecond}
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token),
		orchestrator.WithRetry(policy), orchestrator.WithDialOptions(grpc.WithChainUnaryInterceptor(interleave)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	plain, err = orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, conversation := range []string{"go-switch-with-retry", "go-switch-in-retry"} {
		req := &v1.SwitchRequest{TenantId: "acme", UserId: "u1", ConversationId: conversation,
			Target: &v1.SwitchRequest_PersonaId{PersonaId: "helper"}}
		if i == 0 {
			_, err = client.Switch(ctx, req)
		} else {
			_, err = orchestrator.Retry(ctx, policy, func(ctx context.Context) (*v1.SwitchResponse, error) {
				return client.Switch(ctx, req)
			})
		}
		var unavailable *orchestrator.UnavailableError
		if !errors.As(err, &unavailable) || switches != i+1 {
			t.Fatalf("%s: err=%v after %d Switch calls: want UNAVAILABLE after one", conversation, err, switches)
		}
		check := &v1.SwitchRequest{TenantId: "acme", UserId: "u1", ConversationId: conversation,
			Target: &v1.SwitchRequest_PersonaId{PersonaId: "critic"}}
		resp, err := plain.Switch(ctx, check)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetPreviousPersonaId() != "critic" {
			t.Fatalf("%s: the active persona was %q: the Switch made in between was undone", conversation, resp.GetPreviousPersonaId())
		}
	}
}
