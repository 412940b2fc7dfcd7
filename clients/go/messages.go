package orchestrator

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"google.golang.org/protobuf/proto"

	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

// User, System and Assistant build one text message.
func User(text string) *v1.Message      { return message(v1.Role_ROLE_USER, text) }
func System(text string) *v1.Message    { return message(v1.Role_ROLE_SYSTEM, text) }
func Assistant(text string) *v1.Message { return message(v1.Role_ROLE_ASSISTANT, text) }

func message(role v1.Role, text string) *v1.Message {
	return &v1.Message{Role: role, Content: []*v1.ContentPart{{Kind: &v1.ContentPart_Text{Text: text}}}}
}

// InputOption sets a field of a GenerationInput.
type InputOption func(*v1.GenerationInput)

// Model picks the route alias.
func Model(alias string) InputOption { return func(in *v1.GenerationInput) { in.Model = alias } }

// Tenant sets who the call is for.
func Tenant(tenantID, userID string) InputOption {
	return func(in *v1.GenerationInput) { in.TenantId, in.UserId = tenantID, userID }
}

// MaxTokens caps the answer.
func MaxTokens(n int32) InputOption {
	return func(in *v1.GenerationInput) {
		if in.Config == nil {
			in.Config = &v1.GenerationConfig{}
		}
		in.Config.MaxTokens = proto.Int32(n)
	}
}

// Input builds a GenerationInput from messages and options.
func Input(messages []*v1.Message, opts ...InputOption) *v1.GenerationInput {
	in := &v1.GenerationInput{Messages: messages}
	for _, opt := range opts {
		opt(in)
	}
	return in
}

// Prompt is a GenerateRequest with one user message.
func Prompt(text string, opts ...InputOption) *v1.GenerateRequest {
	return &v1.GenerateRequest{Input: Input([]*v1.Message{User(text)}, opts...)}
}

// StreamPrompt is a StreamGenerateRequest with one user message.
func StreamPrompt(text string, opts ...InputOption) *v1.StreamGenerateRequest {
	return &v1.StreamGenerateRequest{Input: Input([]*v1.Message{User(text)}, opts...)}
}

// Text is the answer's text: its text parts, in order.
func Text(resp *v1.GenerateResponse) string {
	var b strings.Builder
	for _, part := range resp.GetMessage().GetContent() {
		b.WriteString(part.GetText())
	}
	return b.String()
}

func withRequestID(req *v1.GenerateRequest, id string) *v1.GenerateRequest {
	clone := proto.Clone(req).(*v1.GenerateRequest)
	clone.Input.RequestId = id
	return clone
}

func embedWithRequestID(req *v1.EmbedRequest, id string) *v1.EmbedRequest {
	clone := proto.Clone(req).(*v1.EmbedRequest)
	clone.RequestId = id
	return clone
}

func newRequestID() string {
	id := make([]byte, 16)
	_, _ = rand.Read(id) // crypto/rand.Read never fails (Go 1.24+ panics instead)
	return hex.EncodeToString(id)
}
