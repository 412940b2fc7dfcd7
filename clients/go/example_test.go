package orchestrator_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

// TestExampleProgram runs examples/go against a real sidecar and checks what it prints.
func TestExampleProgram(t *testing.T) {
	contract := loadContract(t)
	address, _ := startSidecar(t, contract.Token)
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

// TestStreamEvents connects over the Unix socket, ranges over Stream.Events, and stops a second
// stream by breaking the loop.
func TestStreamEvents(t *testing.T) {
	contract := loadContract(t)
	address, socket := startSidecar(t, contract.Token)
	client, err := orchestrator.New(orchestrator.WithAddress(address), orchestrator.WithToken(contract.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	who := orchestrator.Tenant("acme", "events")
	for _, unix := range []string{"unix://" + socket, socket} {
		over, err := orchestrator.New(orchestrator.WithAddress(unix), orchestrator.WithToken(contract.Token))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := over.Generate(ctx, orchestrator.Prompt("over a socket", who))
		over.Close()
		if err != nil || orchestrator.Text(resp) != "over a socket" {
			t.Fatalf("%s: %v %v", unix, resp, err)
		}
	}
	stream, err := client.Stream(ctx, orchestrator.StreamPrompt("one two three four five", who))
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for event, err := range stream.Events() {
		if err != nil {
			t.Fatal(err)
		}
		text.WriteString(event.GetDelta().GetText())
	}
	if text.String() != "one two three four five" || stream.Result() == nil {
		t.Fatalf("text %q result %v", text.String(), stream.Result())
	}
	stream, err = client.Stream(ctx, orchestrator.StreamPrompt("a b c d e f g h i j k l m n o p", who))
	if err != nil {
		t.Fatal(err)
	}
	for range stream.Events() {
		break // leaving the loop cancels the call
	}
	var cancelled *orchestrator.CancelledError
	if _, err := stream.Recv(); !errors.As(err, &cancelled) || stream.Deltas() != 1 {
		t.Fatalf("after break: %v, %d deltas", err, stream.Deltas())
	}
}
