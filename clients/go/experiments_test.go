package orchestrator_test

import (
	"testing"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
	v1 "github.com/orchestrator-sidecar/orchestrator/clients/go/gen/orchestrator/v1"
)

func TestPriorityAndVariantOptions(t *testing.T) {
	req := orchestrator.Prompt("hi", orchestrator.Priority(v1.Priority_PRIORITY_CRITICAL), orchestrator.Variant("b"))
	if got := req.GetInput().GetPriority(); got != v1.Priority_PRIORITY_CRITICAL {
		t.Fatalf("priority %v", got)
	}
	if got := req.GetInput().GetExperimentVariant(); got != "b" {
		t.Fatalf("variant %q", got)
	}
	if got := orchestrator.Prompt("hi").GetInput().GetPriority(); got != v1.Priority_PRIORITY_UNSPECIFIED {
		t.Fatalf("default priority %v", got)
	}
}
