package orchestrator_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleProgram runs examples/go against a real sidecar and checks what it prints.
func TestExampleProgram(t *testing.T) {
	contract := loadContract(t)
	address := startSidecar(t, contract.Token)
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = filepath.Join(repoRoot, "examples", "go")
	cmd.Env = append(os.Environ(), "ORCHESTRATOR_SIDECAR_ADDRESS="+address, "ORCHESTRATOR_SIDECAR_TOKEN="+contract.Token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "Say hello ") || lines[1] != "Say hello" ||
		!strings.HasPrefix(lines[2], "typed error: MODEL_NOT_FOUND") {
		t.Fatalf("unexpected output:\n%s", out)
	}
}
