package orchestrator_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"gopkg.in/yaml.v3"
)

var repoRoot = filepath.Join("..", "..")

type contractFile struct {
	Version   int              `yaml:"version"`
	Token     string           `yaml:"token"`
	Scenarios []map[string]any `yaml:"scenarios"`
}

func loadContract(t *testing.T) contractFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "tests", "contract", "scenarios.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c contractFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// startSidecar runs the real sidecar on a free port (and a Unix socket) with the contract
// configuration and returns both addresses once the health check answers SERVING; it is stopped
// when the test ends.
func startSidecar(t *testing.T, token string) (address, socket string) {
	t.Helper()
	exe, _ := filepath.Abs(filepath.Join(repoRoot, ".venv", "bin", "sidecar"))
	config, _ := filepath.Abs(filepath.Join(repoRoot, "tests", "contract", "sidecar.yaml"))
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("%s is missing: run `make setup` at the repository root", exe)
	}
	address = freeAddress(t)
	cmd := exec.Command(exe, "serve", "--config", config)
	cmd.Dir = t.TempDir()
	socket = filepath.Join(cmd.Dir, "sidecar.sock")
	cmd.Env = append(os.Environ(), "SIDECAR__SETTINGS__LISTEN__ADDRESS="+address, "CONTRACT_SIDECAR_TOKEN="+token,
		"SIDECAR__SETTINGS__LISTEN__UNIX_SOCKET="+socket)
	log, err := os.Create(filepath.Join(cmd.Dir, "sidecar.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	waitServing(t, address, exited, log.Name())
	return address, socket
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitServing(t *testing.T, address string, exited <-chan struct{}, logPath string) {
	t.Helper()
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := grpc_health_v1.NewHealthClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			t.Fatalf("the sidecar exited:\n%s", out)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_SERVING {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(logPath)
	t.Fatalf("the sidecar did not answer SERVING within 60 s:\n%s", out)
}
