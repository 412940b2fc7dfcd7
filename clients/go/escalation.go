package orchestrator

import (
	"context"

	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

// The escalation queue of creator agents (docs/answer-policy.md): users accept offers, creators
// list, answer and decline their agent's escalations. Errors are typed like every other call's.

// AcceptEscalation queues an offer made to the user (GenerationSummary.AnswerDecision.EscalationId).
func (c *Client) AcceptEscalation(ctx context.Context, tenantID, userID, escalationID string) (*v1.AcceptEscalationResponse, error) {
	req := &v1.AcceptEscalationRequest{TenantId: tenantID, UserId: userID, EscalationId: escalationID}
	resp, err := c.Escalations.AcceptEscalation(ctx, req)
	return resp, FromError(err, 0)
}

// ListEscalations returns one page of an agent's escalations (QUEUED unless req.States says).
func (c *Client) ListEscalations(ctx context.Context, req *v1.ListEscalationsRequest) (*v1.ListEscalationsResponse, error) {
	resp, err := c.Escalations.ListEscalations(ctx, req)
	return resp, FromError(err, 0)
}

// AnswerEscalation answers a queued escalation: the answer becomes a canonical answer and joins
// the user's conversation.
func (c *Client) AnswerEscalation(ctx context.Context, req *v1.AnswerEscalationRequest) (*v1.AnswerEscalationResponse, error) {
	resp, err := c.Escalations.AnswerEscalation(ctx, req)
	return resp, FromError(err, 0)
}

// DeclineEscalation declines a queued escalation.
func (c *Client) DeclineEscalation(ctx context.Context, req *v1.DeclineEscalationRequest) (*v1.DeclineEscalationResponse, error) {
	resp, err := c.Escalations.DeclineEscalation(ctx, req)
	return resp, FromError(err, 0)
}

// GetAnswerReport returns an agent's answer-policy figures.
func (c *Client) GetAnswerReport(ctx context.Context, tenantID, agentID string) (*v1.GetAnswerReportResponse, error) {
	req := &v1.GetAnswerReportRequest{TenantId: tenantID, AgentId: agentID}
	resp, err := c.Escalations.GetAnswerReport(ctx, req)
	return resp, FromError(err, 0)
}
