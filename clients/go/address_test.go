package orchestrator_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	orchestrator "github.com/orchestrator-sidecar/orchestrator/clients/go"
)

// TestAnAddressOfNoDocumentedFormIsRefused: New refuses, naming it, an address that is neither
// host:port, unix:///path nor an absolute path, as the TypeScript and Java clients do, instead of a
// client of port 443 (gRPC's default for a host without one) whose calls all fail UNAVAILABLE, and
// retryable, as if the sidecar were down.
func TestAnAddressOfNoDocumentedFormIsRefused(t *testing.T) {
	for _, bad := range []string{"localhost", "127.0.0.1", "host:0", "host:99999", "host:abc",
		"unix://relative/s.sock", "unix:relative.sock", "  "} {
		client, err := orchestrator.New(orchestrator.WithAddress(bad))
		if err == nil {
			client.Close()
			t.Errorf("%q: accepted", bad)
		} else if !strings.Contains(err.Error(), "sidecar address") {
			t.Errorf("%q: %v does not name the address", bad, err)
		}
	}
	for _, good := range []string{"127.0.0.1:50051", "sidecar:7", "[::1]:7", "unix:///run/s.sock", "unix:/run/s.sock", "/run/s.sock"} {
		client, err := orchestrator.New(orchestrator.WithAddress(good))
		if err != nil {
			t.Errorf("%q: %v", good, err)
			continue
		}
		client.Close()
	}
}

// TestTheSharedAddressTable replays tests/contract/addresses.yaml, as every client does: the same
// addresses taken (a Unix socket, TCP) and refused naming the address.
func TestTheSharedAddressTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "tests", "contract", "addresses.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Unix    map[string]string `yaml:"unix"`
		TCP     []string          `yaml:"tcp"`
		Refused []string          `yaml:"refused"`
	}
	if err := yaml.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	for address := range table.Unix {
		table.TCP = append(table.TCP, address)
	}
	for _, good := range table.TCP {
		client, err := orchestrator.New(orchestrator.WithAddress(good))
		if err != nil {
			t.Errorf("%q: %v", good, err)
			continue
		}
		client.Close()
	}
	for _, bad := range table.Refused {
		client, err := orchestrator.New(orchestrator.WithAddress(bad))
		if err == nil {
			client.Close()
			t.Errorf("%q: accepted", bad)
		} else if !strings.Contains(err.Error(), "sidecar address") {
			t.Errorf("%q: %v does not name the address", bad, err)
		}
	}
}
