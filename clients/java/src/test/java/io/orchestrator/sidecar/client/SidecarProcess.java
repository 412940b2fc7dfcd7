package io.orchestrator.sidecar.client;

import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.yaml.snakeyaml.Yaml;

/** A real sidecar ({@code <repo>/.venv/bin/sidecar serve}) on free ports, for the tests. */
final class SidecarProcess implements AutoCloseable {
  static final Path REPO_ROOT = Path.of(System.getProperty("sidecar.repoRoot", "../..")).toAbsolutePath().normalize();

  private final Process process;
  private final Path dir;
  private final Path log;
  final String address;
  final String unixAddress;

  private SidecarProcess(Process process, Path dir, Path log, String address, String unixAddress) {
    this.process = process;
    this.dir = dir;
    this.log = log;
    this.address = address;
    this.unixAddress = unixAddress;
  }

  static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  /** Starts the sidecar and waits until it answers; the config's {@code auth.token: {env: NAME}} gets {@code token}. */
  static SidecarProcess start(Path config, String token) throws Exception {
    int port = freePort();
    Path dir = Files.createTempDirectory("sidecar-java-");
    Path socket = dir.resolve("sidecar.sock");
    Path log = dir.resolve("sidecar.log");
    ProcessBuilder pb = new ProcessBuilder(REPO_ROOT.resolve(".venv/bin/sidecar").toString(), "serve", "--config", config.toString())
        .directory(dir.toFile())
        .redirectErrorStream(true)
        .redirectOutput(log.toFile());
    Map<String, String> env = pb.environment();
    tokenVariable(config).ifPresent(name -> env.put(name, token));
    env.put("SIDECAR__SETTINGS__LISTEN__ADDRESS", "127.0.0.1:" + port);
    env.put("SIDECAR__SETTINGS__LISTEN__UNIX_SOCKET", socket.toString());
    SidecarProcess sidecar = new SidecarProcess(pb.start(), dir, log, "127.0.0.1:" + port, "unix://" + socket);
    try {
      sidecar.awaitServing();
    } catch (Exception e) {
      String output = sidecar.output();
      sidecar.close();
      throw new IllegalStateException("sidecar did not start: " + e + "\n" + output, e);
    }
    return sidecar;
  }

  @SuppressWarnings("unchecked")
  private static java.util.Optional<String> tokenVariable(Path config) throws IOException {
    try (InputStream in = Files.newInputStream(config)) {
      Object root = new Yaml().load(in);
      Object value = root;
      for (String key : new String[] {"settings", "auth", "token", "env"}) {
        value = value instanceof Map<?, ?> m ? ((Map<String, Object>) m).get(key) : null;
      }
      return value instanceof String s ? java.util.Optional.of(s) : java.util.Optional.empty();
    }
  }

  /** Polls grpc.health.v1.Health/Check (empty service) until it answers SERVING, for at most 60 s. */
  private void awaitServing() throws InterruptedException {
    long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    ManagedChannel channel = Grpc.newChannelBuilder(address, InsecureChannelCredentials.create()).build();
    try {
      HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(channel);
      for (;;) {
        if (!process.isAlive()) {
          throw new IllegalStateException("the sidecar process exited");
        }
        try {
          HealthCheckResponse r = health.withDeadlineAfter(1, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance());
          if (r.getStatus() == HealthCheckResponse.ServingStatus.SERVING) {
            return;
          }
        } catch (StatusRuntimeException starting) {
          // not listening yet
        }
        if (System.nanoTime() > giveUp) {
          throw new IllegalStateException("Health/Check did not answer SERVING within 60 s");
        }
        Thread.sleep(100);
      }
    } finally {
      channel.shutdownNow();
    }
  }

  String output() {
    try {
      return Files.readString(log);
    } catch (IOException e) {
      return "(no output: " + e + ")";
    }
  }

  @Override
  public void close() throws IOException {
    process.destroy();
    try {
      if (!process.waitFor(15, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor();
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    try (var paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }
}
