// Package orchestrator is the Go client of the Orchestrator sidecar: a thin wrapper over the
// generated stubs (package orchestratorv1 under gen/) with connection defaults, typed errors and an
// opt-in retry helper.
//
//	client, err := orchestrator.New()                      // 127.0.0.1:50051 or $ORCHESTRATOR_SIDECAR_ADDRESS
//	resp, err := client.Generate(ctx, orchestrator.Prompt("hello", orchestrator.Tenant("acme", "u1")))
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

const (
	// DefaultAddress is where a sidecar listens unless configured otherwise.
	DefaultAddress = "127.0.0.1:50051"
	// AddressEnv names the environment variable with the sidecar's address (host:port or unix:///path).
	AddressEnv = "ORCHESTRATOR_SIDECAR_ADDRESS"
	// TokenEnv names the environment variable with the shared token sent on every call.
	TokenEnv = "ORCHESTRATOR_SIDECAR_TOKEN"
	// DefaultMaxReplyBytes is the largest reply a call accepts unless WithMaxReplyBytes says
	// otherwise, the same in every client: the largest the sidecar may be set to send
	// (embeddings.max_reply_bytes goes up to 256 MiB; an upstream's answer is relayed up to 64 MiB).
	DefaultMaxReplyBytes = 256 << 20
)

// Client is a connection to the sidecar. Its stubs (Generation, Conversations, Quota, Keys,
// Escalations, Experiments) carry the token too, for the RPCs the wrapper has no method for.
type Client struct {
	conn          *grpc.ClientConn
	retry         *RetryPolicy
	Generation    v1.GenerationServiceClient
	Conversations v1.ConversationServiceClient
	Quota         v1.QuotaServiceClient
	Keys          v1.KeyServiceClient
	Experiments   v1.ExperimentServiceClient
	Escalations   v1.EscalationServiceClient
}

type settings struct {
	address       string
	token         *string
	retry         *RetryPolicy
	maxReplyBytes int
	dialOpts      []grpc.DialOption
}

// Option configures New.
type Option func(*settings)

// WithAddress sets the sidecar's address: host:port, unix:///path or a bare absolute socket path.
func WithAddress(address string) Option { return func(s *settings) { s.address = address } }

// WithToken sets the shared token; WithToken("") sends none even when ORCHESTRATOR_SIDECAR_TOKEN is
// set. Surrounding whitespace (a secret file's newline) is dropped.
func WithToken(token string) Option { return func(s *settings) { s.token = &token } }

// WithRetry makes Generate, Embed, GetQuota, ListModels, Feedback and GetExperimentReport retry UNAVAILABLE and
// RESOURCE_EXHAUSTED per policy. Switch is never retried (see Switch).
func WithRetry(policy RetryPolicy) Option { return func(s *settings) { s.retry = &policy } }

// WithMaxReplyBytes sets the largest reply a call accepts (default DefaultMaxReplyBytes); a larger
// one fails RESOURCE_EXHAUSTED ("received message larger than max"). New refuses n outside 1 to
// math.MaxInt32, the range every client takes.
func WithMaxReplyBytes(n int) Option { return func(s *settings) { s.maxReplyBytes = n } }

// WithDialOptions adds gRPC dial options (interceptors, tracing) after the client's own.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOpts = append(s.dialOpts, opts...) }
}

// New connects lazily (the first call dials): explicit options win, then the environment, then
// the defaults.
func New(opts ...Option) (*Client, error) {
	s := settings{maxReplyBytes: DefaultMaxReplyBytes}
	for _, opt := range opts {
		opt(&s)
	}
	address := firstNonEmpty(s.address, os.Getenv(AddressEnv), DefaultAddress)
	token := os.Getenv(TokenEnv)
	if s.token != nil {
		token = *s.token
	}
	// a secret file's trailing newline is no part of the token; a header cannot carry other controls
	token = strings.TrimSpace(token)
	if strings.IndexFunc(token, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		return nil, errors.New("orchestrator: the sidecar token has characters an HTTP header cannot carry (control or non-ASCII)")
	}
	if s.maxReplyBytes < 1 || s.maxReplyBytes > math.MaxInt32 {
		return nil, fmt.Errorf("orchestrator: WithMaxReplyBytes(%d): the largest reply must be 1 to %d bytes", s.maxReplyBytes, math.MaxInt32)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A localhost peer: ping a silent connection no more often than servers allow by default
		// (5 min), and reconnect quickly after the sidecar restarts.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Minute, Timeout: 10 * time.Second}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(s.maxReplyBytes)),
		grpc.WithChainUnaryInterceptor(keyedInRetry),
	}
	if token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearer(token)))
	}
	resolved, err := target(address)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(resolved, append(dial, s.dialOpts...)...)
	if err != nil {
		return nil, err
	}
	return &Client{
		conn:          conn,
		retry:         s.retry,
		Generation:    v1.NewGenerationServiceClient(conn),
		Conversations: v1.NewConversationServiceClient(conn),
		Quota:         v1.NewQuotaServiceClient(conn),
		Keys:          v1.NewKeyServiceClient(conn),
		Experiments:   v1.NewExperimentServiceClient(conn),
		Escalations:   v1.NewEscalationServiceClient(conn),
	}, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Generate returns one whole answer. With WithRetry, or called inside Retry, a request without a
// request_id gets one (inside Retry the same in every attempt), so the sidecar charges a retried
// request once.
func (c *Client) Generate(ctx context.Context, req *v1.GenerateRequest) (*v1.GenerateResponse, error) {
	if req.GetInput() != nil && req.GetInput().GetRequestId() == "" {
		if id := c.requestID(ctx); id != "" {
			req = withRequestID(req, id)
		}
	}
	return unary(ctx, c.retry, func(ctx context.Context) (*v1.GenerateResponse, error) {
		return c.Generation.Generate(ctx, req)
	})
}

// Embed returns one vector per text of the request, in order (resp.Embeddings[i].Values). With
// WithRetry (or inside Retry), UNAVAILABLE and RESOURCE_EXHAUSTED are retried like Generate, under
// one request_id (one is made when the request has none), so the sidecar charges a retried request once.
func (c *Client) Embed(ctx context.Context, req *v1.EmbedRequest) (*v1.EmbedResponse, error) {
	if req != nil && req.GetRequestId() == "" {
		if id := c.requestID(ctx); id != "" {
			req = embedWithRequestID(req, id)
		}
	}
	return unary(ctx, c.retry, func(ctx context.Context) (*v1.EmbedResponse, error) {
		return c.Generation.Embed(ctx, req)
	})
}

// Texts is an EmbedRequest for texts, charged to a tenant's user, on the default embedding route.
func Texts(tenantID, userID string, texts ...string) *v1.EmbedRequest {
	return &v1.EmbedRequest{TenantId: tenantID, UserId: userID, Texts: texts}
}

// Switch changes a conversation's persona. It is never retried, neither with WithRetry nor inside
// Retry: an UNAVAILABLE Switch may have been applied (the sidecar applies it, then records it), and
// a repeat takes a new version that would undo any Switch of the conversation made in between.
// Read ListSwitchHistory before switching again.
func (c *Client) Switch(ctx context.Context, req *v1.SwitchRequest) (*v1.SwitchResponse, error) {
	resp, err := c.Conversations.Switch(ctx, req)
	err = FromError(err, 0)
	var se *StatusError
	if errors.As(err, &se) {
		se.noRetry = true
	}
	return resp, err
}

// GetQuota returns the tier and every limit that applies to a tenant's user, with usage.
func (c *Client) GetQuota(ctx context.Context, tenantID, userID string) (*v1.GetQuotaResponse, error) {
	req := &v1.GetQuotaRequest{TenantId: tenantID, UserId: userID}
	return unary(ctx, c.retry, func(ctx context.Context) (*v1.GetQuotaResponse, error) {
		return c.Quota.GetQuota(ctx, req)
	})
}

// ListModels returns one page of routes with their deployments (a read: retried WithRetry).
func (c *Client) ListModels(ctx context.Context, req *v1.ListModelsRequest) (*v1.ListModelsResponse, error) {
	return unary(ctx, c.retry, func(ctx context.Context) (*v1.ListModelsResponse, error) {
		return c.Generation.ListModels(ctx, req)
	})
}

// requestID is the id to send with a request that has none: the next one of the Retry this call
// runs inside, else a new one when the client retries its calls itself, else none.
func (c *Client) requestID(ctx context.Context) string {
	if ids, ok := ctx.Value(requestIDsKey{}).(*requestIDs); ok {
		return ids.take()
	}
	if c.retry != nil {
		return newRequestID()
	}
	return ""
}

func unary[T any](ctx context.Context, policy *RetryPolicy, call func(context.Context) (T, error)) (T, error) {
	once := func(ctx context.Context) (T, error) {
		resp, err := call(ctx)
		return resp, FromError(err, 0)
	}
	if _, inRetry := ctx.Value(requestIDsKey{}).(*requestIDs); policy == nil || inRetry {
		return once(ctx) // inside Retry, its policy alone decides: not WithRetry's attempts per attempt
	}
	return Retry(ctx, *policy, once)
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: the sidecar is a localhost (or Unix socket) peer.
func (bearer) RequireTransportSecurity() bool { return false }

// hostPort is host:port or [v6]:port, the same forms the TypeScript and Java clients take.
var hostPort = regexp.MustCompile(`^(?:\[[0-9a-fA-F:.]+\]|[^:\s/\[\]]+):(\d{1,5})$`)

// target is the gRPC target of an address: host:port, unix:///path, unix:/path or a bare absolute
// path. Anything else is refused naming it: gRPC would take a host without a port as port 443, and
// every call would fail UNAVAILABLE as if the sidecar were down.
func target(address string) (string, error) {
	address = strings.TrimSpace(address)
	switch {
	case strings.HasPrefix(address, "/"):
		return "unix://" + address, nil
	case strings.HasPrefix(address, "unix:"):
		if path := strings.TrimPrefix(strings.TrimPrefix(address, "unix:"), "//"); strings.HasPrefix(path, "/") {
			return address, nil
		}
	default:
		if m := hostPort.FindStringSubmatch(address); m != nil {
			if port, _ := strconv.Atoi(m[1]); port >= 1 && port <= 65535 {
				return address, nil
			}
		}
	}
	return "", fmt.Errorf("orchestrator: sidecar address %q: expected host:port, unix:///path or an absolute path", address)
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
