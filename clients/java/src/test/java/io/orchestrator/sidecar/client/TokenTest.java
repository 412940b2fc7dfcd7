package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Deadline;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The token as an application gets it: from a file or a Kubernetes secret, often with a newline.
 * grpc-java dropped the header it could not send (a warning in the log) and every call failed
 * UNAUTHENTICATED / MISSING_CREDENTIALS; Go failed INTERNAL, Python with grpc's own exception,
 * TypeScript sent it trimmed: all four now send it trimmed.
 */
class TokenTest {
  @Test
  void aTokenWithATrailingNewlineIsSentWithoutIt() throws Exception {
    String token = "contract-token";
    try (SidecarProcess sidecar = SidecarProcess.start(SidecarProcess.REPO_ROOT.resolve("tests/contract/sidecar.yaml"), token);
        SidecarClient client = SidecarClient.builder().address(sidecar.address).token("  " + token + "\n").build()) {
      var ask = Messages.ask("hi").toBuilder().setTenantId("acme").setUserId("token").build();
      assertEquals("hi", Messages.textOf(client.generate(ask, Deadline.after(10, TimeUnit.SECONDS)).getMessage()));
    }
  }

  @Test
  void theEnvironmentsTokenIsTrimmedToo() {
    assertEquals("t", SidecarClient.builder().environment(Map.of("ORCHESTRATOR_SIDECAR_TOKEN", "t\n")).resolvedToken());
    assertNull(SidecarClient.builder().environment(Map.of("ORCHESTRATOR_SIDECAR_TOKEN", " \n")).resolvedToken());
    assertNull(SidecarClient.builder().token(" \n").resolvedToken());
  }

  @Test
  void aTokenNoHeaderCanCarryIsRefusedWithoutShowingIt() {
    for (String bad : List.of("a\nb", "tok\u0000", "t\u00e9")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> SidecarClient.builder().address("127.0.0.1:1").token(bad).build(), bad);
      assertFalse(e.getMessage().contains(bad));
    }
  }
}
