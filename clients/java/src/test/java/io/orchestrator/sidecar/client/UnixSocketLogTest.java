package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Deadline;
import io.orchestrator.sidecar.v1.GenerationInput;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * A normal connection over a Unix socket logs nothing at WARNING: grpc-java sets SO_KEEPALIVE on every
 * channel it opens, and netty's epoll domain-socket channel has no such option, so each connection
 * logged "Unknown channel option 'SO_KEEPALIVE'" through java.util.logging.
 */
class UnixSocketLogTest {
  private static final String TOKEN = "contract-token";

  /** Every record of WARNING or above, from any logger, while it is attached to the root logger. */
  private static final class Warnings extends Handler implements AutoCloseable {
    final List<LogRecord> records = new CopyOnWriteArrayList<>();
    private final Logger root = Logger.getLogger("");

    Warnings() {
      setLevel(Level.WARNING);
      root.addHandler(this);
    }

    @Override
    public void publish(LogRecord record) {
      if (isLoggable(record)) {
        records.add(record);
      }
    }

    @Override
    public void flush() {}

    @Override
    public void close() {
      root.removeHandler(this);
    }

    String describe() {
      return records.stream().map(r -> r.getLoggerName() + ": " + r.getMessage()).collect(Collectors.joining("\n"));
    }
  }

  @Test
  void aUnixSocketConnectionLogsNoWarning() throws Exception {
    try (SidecarProcess sidecar = SidecarProcess.start(SidecarProcess.REPO_ROOT.resolve("tests/contract/sidecar.yaml"), TOKEN);
        Warnings warnings = new Warnings()) {
      GenerationInput ask = Messages.ask("over the socket").toBuilder().setTenantId("acme").setUserId("uds").build();
      for (int connection = 0; connection < 2; connection++) { // a new client: a new channel and connection
        try (SidecarClient client = SidecarClient.builder().address(sidecar.unixAddress).token(TOKEN).build()) {
          String text = Messages.textOf(client.generate(ask, Deadline.after(30, TimeUnit.SECONDS)).getMessage());
          assertEquals("over the socket", text);
        }
      }
      assertTrue(warnings.records.isEmpty(), "warnings logged:\n" + warnings.describe());
    }
  }
}
