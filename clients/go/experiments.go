package orchestrator

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

// Priority sets how urgently the call is served when the sidecar or a deployment is at capacity
// (v1.Priority_PRIORITY_LOW to v1.Priority_PRIORITY_CRITICAL); the caller's tier may cap it.
func Priority(level v1.Priority) InputOption {
	return func(in *v1.GenerationInput) { in.Priority = level }
}

// Variant asks for an experiment variant instead of the caller's sticky one (for testing).
func Variant(name string) InputOption {
	return func(in *v1.GenerationInput) { in.ExperimentVariant = name }
}

// Feedback scores a finished call of the tenant, by its request id, once. The same score and label
// again succeed with AlreadyRecorded set; a different score is a *ConflictError with reason FEEDBACK_EXISTS.
func (c *Client) Feedback(ctx context.Context, tenantID, requestID string, score float64, label string) (*v1.FeedbackResponse, error) {
	req := &v1.FeedbackRequest{TenantId: tenantID, RequestId: requestID, Score: score, Label: label}
	return unary(ctx, c.retry, func(ctx context.Context) (*v1.FeedbackResponse, error) {
		return c.Experiments.Feedback(ctx, req)
	})
}

// GetExperimentReport reports an experiment over the tenant's calls in [start, end): per variant
// statistics, the tests against the control and a verdict. Statistics without a finite value are
// nil (optional fields).
func (c *Client) GetExperimentReport(ctx context.Context, tenantID, experiment string, start, end time.Time) (*v1.GetExperimentReportResponse, error) {
	req := &v1.GetExperimentReportRequest{
		TenantId:   tenantID,
		Experiment: experiment,
		StartTime:  timestamppb.New(start),
		EndTime:    timestamppb.New(end),
	}
	return unary(ctx, c.retry, func(ctx context.Context) (*v1.GetExperimentReportResponse, error) {
		return c.Experiments.GetExperimentReport(ctx, req)
	})
}
