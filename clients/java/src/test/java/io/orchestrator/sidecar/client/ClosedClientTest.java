package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Deadline;
import io.orchestrator.sidecar.v1.GenerationInput;
import io.orchestrator.sidecar.v1.GetQuotaRequest;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * A call on a closed client fails with a CancelledException, never retried: it was UNAVAILABLE
 * ("Channel shutdown invoked"), which the retry helper retried three more times as if the sidecar
 * were down; the Go client fails such a call CANCELLED, and now TypeScript and Python do too.
 */
class ClosedClientTest {
  @Test
  void aCallOnAClosedClientIsCancelledAndNotRetried() {
    SidecarClient client = SidecarClient.builder().address("127.0.0.1:1").withoutToken().build();
    client.close();
    GenerationInput ask = Messages.ask("after close").toBuilder().setTenantId("acme").setUserId("u").build();
    Deadline soon = Deadline.after(2, TimeUnit.SECONDS);
    List<Supplier<Object>> calls = List.of(
        () -> client.generate(ask, soon),
        () -> client.stream(ask, soon).hasNext(),
        () -> client.getQuota(GetQuotaRequest.newBuilder().setTenantId("acme").setUserId("u").build(), soon),
        () -> Retry.builder().timeout(Duration.ofSeconds(2)).sleeper(d -> {
          throw new AssertionError("a closed client's call was retried");
        }).build().call(d -> client.generate(ask, d)));
    for (Supplier<Object> call : calls) {
      SidecarException e = assertThrows(SidecarException.class, call::get);
      assertInstanceOf(CancelledException.class, e, e.toString());
      assertFalse(Retry.isRetryable(e));
    }
  }
}
