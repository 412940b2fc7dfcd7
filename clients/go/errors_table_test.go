package orchestrator_test

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

// family is the typed-error family of err, as tests/contract/errors.yaml names it.
func family(err error) string {
	switch err.(type) {
	case *orchestrator.InvalidRequestError:
		return "invalid_request"
	case *orchestrator.AuthenticationError:
		return "authentication"
	case *orchestrator.PermissionDeniedError:
		return "permission_denied"
	case *orchestrator.NotFoundError:
		return "not_found"
	case *orchestrator.FailedPreconditionError:
		return "failed_precondition"
	case *orchestrator.QuotaExceededError:
		return "quota_exceeded"
	case *orchestrator.TransportLimitError:
		return "transport_limit"
	case *orchestrator.ConflictError:
		return "conflict"
	case *orchestrator.UnavailableError:
		return "unavailable"
	case *orchestrator.StreamInterruptedError:
		return "stream_interrupted"
	case *orchestrator.DeadlineExceededError:
		return "deadline_exceeded"
	case *orchestrator.CancelledError:
		return "cancelled"
	case *orchestrator.InternalError:
		return "internal"
	}
	return "none"
}

// TestEveryReasonOfTheProtosDecodesToItsFamily replays tests/contract/errors.yaml (generated from the
// protos' comments), as every client does: each reason the API names, with its code, decodes to the
// same family in all four.
func TestEveryReasonOfTheProtosDecodesToItsFamily(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "tests", "contract", "errors.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Reasons []struct{ Reason, Code, Family string } `yaml:"reasons"`
	}
	if err := yaml.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	for _, row := range table.Reasons {
		var code codes.Code
		if err := code.UnmarshalJSON([]byte(`"` + row.Code + `"`)); err != nil {
			t.Fatalf("%s: %v", row.Code, err)
		}
		var details []*anypb.Any
		if row.Reason != "" {
			details = packed(t, &errdetails.ErrorInfo{Reason: row.Reason, Domain: "orchestrator.sidecar"})
		}
		got := orchestrator.FromError(statusErr(code, details), 0)
		if family(got) != row.Family {
			t.Errorf("%s %q: %T (%s), want %s", row.Code, row.Reason, got, family(got), row.Family)
		}
	}
	if len(table.Reasons) < 40 {
		t.Fatalf("only %d rows", len(table.Reasons))
	}
}
