package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Deadline;
import io.grpc.Status;
import io.orchestrator.sidecar.v1.GenerateResponse;
import io.orchestrator.sidecar.v1.GenerationInput;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The largest reply a call accepts is the same in every client ({@link SidecarClient#DEFAULT_MAX_REPLY_BYTES},
 * 256 MiB), {@code maxReplyBytes} to change it: the Java client took grpc-java's 4 MiB, so an answer
 * the Python client received failed here. The sidecar's {@code xlarge} route echoes the prompt, so a
 * prompt of n bytes is a reply of n bytes and a little (tests/contract/sidecar.yaml).
 */
class ReplySizeTest {
  private static final String TOKEN = "contract-token";
  private static final int LIMIT = 1024 * 1024; // a limit set by the caller
  private static SidecarProcess sidecar;

  @BeforeAll
  static void start() throws Exception {
    sidecar = SidecarProcess.start(SidecarProcess.REPO_ROOT.resolve("tests/contract/sidecar.yaml"), TOKEN);
  }

  @AfterAll
  static void stop() throws Exception {
    if (sidecar != null) {
      sidecar.close();
    }
  }

  private static GenerationInput ask(int size) {
    String text = "word ".repeat(size / 5 + 1).substring(0, size);
    return Messages.ask(text).toBuilder().setModel("xlarge").setTenantId("acme").setUserId("reply-size").build();
  }

  private static Deadline soon() {
    return Deadline.after(60, TimeUnit.SECONDS);
  }

  @Test
  void theDefaultIsTheLargestReplyTheSidecarMaySend() {
    assertEquals(256 * 1024 * 1024, SidecarClient.DEFAULT_MAX_REPLY_BYTES);
    int size = 5 * 1024 * 1024; // past the 4 MiB gRPC accepts unless told otherwise
    try (SidecarClient client = SidecarClient.builder().address(sidecar.address).token(TOKEN).build()) {
      GenerateResponse reply = client.generate(ask(size), soon());
      assertEquals(size, Messages.textOf(reply.getMessage()).length());
    }
  }

  @Test
  void aReplyJustUnderTheLimitArrivesAndOneOverItFails() {
    try (SidecarClient client = SidecarClient.builder().address(sidecar.address).token(TOKEN).maxReplyBytes(LIMIT).build()) {
      GenerateResponse under = client.generate(ask(LIMIT - 512), soon()); // the text and ~150 bytes of the rest
      assertTrue(under.getSerializedSize() <= LIMIT);
      SidecarException over = assertThrows(SidecarException.class, () -> client.generate(ask(LIMIT + 1), soon()));
      // gRPC's own refusal, not the caller's budget: it was a QuotaExceededException ("out of quota")
      assertEquals(TransportLimitException.class, over.getClass());
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, over.code());
      assertEquals("", over.reason());
      assertTrue(over.getMessage().contains("maximum size " + LIMIT), over.getMessage());
    }
  }

  @Test
  void aRequestOverTheSidecarsOwnLimitIsATransportLimitToo() {
    // past settings.max_receive_message_bytes (8 MiB): the sidecar's gRPC refuses it, with no ErrorInfo
    GenerationInput request = Messages.ask("x".repeat(9 * 1024 * 1024)).toBuilder()
        .setModel("xlarge").setTenantId("acme").setUserId("reply-size").build();
    try (SidecarClient client = SidecarClient.builder().address(sidecar.address).token(TOKEN).build()) {
      SidecarException over = assertThrows(SidecarException.class, () -> client.generate(request, soon()));
      assertEquals(TransportLimitException.class, over.getClass());
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, over.code());
    }
  }

  @Test
  void theSidecarsQuotaRefusalStaysAQuotaException() {
    GenerationInput request = Messages.ask("one too many").toBuilder()
        .setTenantId("scarce-tenant").setUserId("u-reply-size").build();
    try (SidecarClient client = SidecarClient.builder().address(sidecar.address).token(TOKEN).build()) {
      client.generate(request, soon());
      QuotaExceededException spent = assertThrows(QuotaExceededException.class, () -> client.generate(request, soon()));
      assertEquals("RATE_LIMITED", spent.reason());
    }
  }

  @Test
  void aLimitBelowOneByteIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> SidecarClient.builder().maxReplyBytes(0));
  }
}
