package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Deadline;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import io.orchestrator.sidecar.v1.ListModelsRequest;
import io.orchestrator.sidecar.v1.SwitchRequest;
import java.io.InputStream;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.yaml.snakeyaml.Yaml;

/** The retry helper on a fake clock: RetryInfo honoured, the deadline bounds it, no stream retry after a delta. */
class RetryTest {
  /** A fake ticker the fake sleeper advances: nothing sleeps for real. */
  static final class FakeClock extends Deadline.Ticker {
    long nanos = 1_000_000_000L;
    final List<Duration> sleeps = new ArrayList<>();

    @Override
    public long nanoTime() {
      return nanos;
    }

    void advance(Duration d) {
      nanos += d.toNanos();
    }

    Retry.Builder retry() {
      return Retry.builder().ticker(this).sleeper(d -> {
        sleeps.add(d);
        advance(d);
      });
    }
  }

  private static StatusRuntimeException failure(Code code, String reason, Duration retryDelay) {
    var status = com.google.rpc.Status.newBuilder().setCode(code.getNumber())
        .addDetails(Any.pack(ErrorInfo.newBuilder().setReason(reason).build()));
    if (retryDelay != null) {
      status.addDetails(Any.pack(RetryInfo.newBuilder().setRetryDelay(com.google.protobuf.Duration.newBuilder()
          .setSeconds(retryDelay.getSeconds()).setNanos(retryDelay.getNano())).build()));
    }
    return StatusProto.toStatusRuntimeException(status.build());
  }

  @Test
  void waitsRetryInfoThenSucceeds() {
    FakeClock clock = new FakeClock();
    AtomicInteger calls = new AtomicInteger();
    String result = clock.retry().timeout(Duration.ofSeconds(10)).build().call(deadline -> {
      if (calls.getAndIncrement() == 0) {
        throw failure(Code.RESOURCE_EXHAUSTED, "RATE_LIMITED", Duration.ofMillis(1500));
      }
      return "ok";
    });
    assertEquals("ok", result);
    assertEquals(List.of(Duration.ofMillis(1500)), clock.sleeps);
  }

  /**
   * The caller's thread interrupted while the retry waits (Java's cancellation of a blocking call) ends
   * it with a CancelledException, as grpc-java reports an interrupted blocking call and as the Go and
   * TypeScript clients report a cancellation during the wait, not with the last attempt's
   * UNAVAILABLE, which would blame the sidecar; the interrupt stays set.
   */
  @Test
  void anInterruptDuringTheWaitIsTheCallersCancellation() {
    AtomicInteger calls = new AtomicInteger();
    Retry retry = Retry.builder().sleeper(d -> {
      throw new InterruptedException();
    }).build();
    try {
      SidecarException e = assertThrows(SidecarException.class, () -> retry.call(deadline -> {
        calls.incrementAndGet();
        throw failure(Code.UNAVAILABLE, "PROVIDERS_UNAVAILABLE", null);
      }));
      assertTrue(e instanceof CancelledException, e.toString());
      assertTrue(Thread.currentThread().isInterrupted());
      assertEquals(1, calls.get());
    } finally {
      Thread.interrupted();
    }
  }

  /**
   * The caller's own exception (a bug in the retried function) is thrown as it is: neither retried
   * nor typed as the sidecar's (it was an InternalException "UNKNOWN" wrapping it), as Go and Python do.
   */
  @Test
  void theCallersOwnExceptionIsThrownAsItIs() {
    FakeClock clock = new FakeClock();
    AtomicInteger calls = new AtomicInteger();
    IllegalStateException bug = new IllegalStateException("a bug in the caller");
    Retry retry = clock.retry().build();
    assertSame(bug, assertThrows(IllegalStateException.class, () -> retry.call(deadline -> {
      calls.incrementAndGet();
      throw bug;
    })));
    try (Retry.StreamIterator<String> events = retry.stream(deadline -> {
      calls.incrementAndGet();
      throw bug;
    })) {
      assertSame(bug, assertThrows(IllegalStateException.class, events::hasNext));
    }
    assertEquals(2, calls.get());
    assertEquals(List.of(), clock.sleeps);
  }

  @Test
  void givesUpWhenTheDelayWouldPassTheDeadline() {
    FakeClock clock = new FakeClock();
    AtomicInteger calls = new AtomicInteger();
    Retry retry = clock.retry().timeout(Duration.ofSeconds(2)).build();
    assertThrows(QuotaExceededException.class, () -> retry.call(deadline -> {
      calls.incrementAndGet();
      throw failure(Code.RESOURCE_EXHAUSTED, "RATE_LIMITED", Duration.ofSeconds(3));
    }));
    assertEquals(1, calls.get());
    assertEquals(List.of(), clock.sleeps);
  }

  @Test
  void everyAttemptGetsTheOverallDeadline() {
    FakeClock clock = new FakeClock();
    List<Long> remaining = new ArrayList<>();
    Retry retry = clock.retry().timeout(Duration.ofSeconds(1)).maxAttempts(10).build();
    assertThrows(UnavailableException.class, () -> retry.call(deadline -> {
      remaining.add(deadline.timeRemaining(TimeUnit.MILLISECONDS));
      clock.advance(Duration.ofMillis(100));
      throw failure(Code.UNAVAILABLE, "PROVIDERS_UNAVAILABLE", Duration.ofMillis(200));
    }));
    assertEquals(List.of(1000L, 700L, 400L, 100L), remaining);
  }

  @Test
  void aRetryInfoDelayOverMaxRetryInfoDelayIsNotWaitedFor() {
    for (Duration retryInfo : List.of(Duration.ofHours(20), Duration.ofDays(31), Duration.ofSeconds(31))) {
      FakeClock clock = new FakeClock();
      AtomicInteger calls = new AtomicInteger();
      assertThrows(QuotaExceededException.class, () -> clock.retry().build().call(deadline -> {
        calls.incrementAndGet();
        throw failure(Code.RESOURCE_EXHAUSTED, "TOKEN_QUOTA_EXCEEDED", retryInfo);
      }));
      assertEquals(1, calls.get(), "RetryInfo " + retryInfo);
      assertEquals(List.of(), clock.sleeps);
    }
    FakeClock clock = new FakeClock();
    assertThrows(QuotaExceededException.class, () -> clock.retry().maxAttempts(2).build().call(deadline -> {
      throw failure(Code.RESOURCE_EXHAUSTED, "RATE_LIMITED", Duration.ofSeconds(30));
    }));
    assertEquals(List.of(Duration.ofSeconds(30)), clock.sleeps);
  }

  @Test
  void aNegativeRetryInfoDelayIsNoDelay() {
    var status = com.google.rpc.Status.newBuilder().setCode(Code.UNAVAILABLE.getNumber())
        .addDetails(Any.pack(RetryInfo.newBuilder().setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(-5)).build()))
        .build();
    SidecarException e = SidecarException.from(StatusProto.toStatusRuntimeException(status));
    assertEquals(java.util.Optional.empty(), e.retryDelay());
  }

  @Test
  void resourceExhaustedWithoutRetryInfoIsNotRetried() {
    FakeClock clock = new FakeClock();
    AtomicInteger calls = new AtomicInteger();
    assertThrows(TransportLimitException.class, () -> clock.retry().build().call(deadline -> {
      calls.incrementAndGet(); // gRPC's own refusal of an oversized message: no details at all
      throw io.grpc.Status.RESOURCE_EXHAUSTED.withDescription("message larger than max").asRuntimeException();
    }));
    assertEquals(1, calls.get());
    assertEquals(List.of(), clock.sleeps);
  }

  @Test
  void neverRetriesANonRetryableError() {
    FakeClock clock = new FakeClock();
    AtomicInteger calls = new AtomicInteger();
    assertThrows(InvalidRequestException.class, () -> clock.retry().build().call(deadline -> {
      calls.incrementAndGet();
      throw failure(Code.INVALID_ARGUMENT, "INVALID_REQUEST", null);
    }));
    assertEquals(1, calls.get());
  }

  @Test
  void boundedByMaxAttemptsWithCappedBackoff() {
    FakeClock clock = new FakeClock();
    AtomicInteger calls = new AtomicInteger();
    Retry retry = clock.retry().maxAttempts(5).baseDelay(Duration.ofMillis(100)).maxDelay(Duration.ofMillis(300))
        .random(() -> 0.0).build();
    assertThrows(UnavailableException.class, () -> retry.call(deadline -> {
      calls.incrementAndGet();
      throw failure(Code.UNAVAILABLE, "PROVIDERS_UNAVAILABLE", null);
    }));
    assertEquals(5, calls.get());
    assertEquals(List.of(50L, 100L, 150L, 150L), clock.sleeps.stream().map(Duration::toMillis).toList());
  }

  @Test
  void streamFailingBeforeItsFirstElementIsReopened() {
    FakeClock clock = new FakeClock();
    AtomicInteger opens = new AtomicInteger();
    Iterator<String> it = clock.retry().build().stream(deadline -> {
      if (opens.getAndIncrement() == 0) {
        throw failure(Code.UNAVAILABLE, "PROVIDERS_UNAVAILABLE", Duration.ofMillis(10));
      }
      return List.of("a", "b").iterator();
    });
    List<String> got = new ArrayList<>();
    it.forEachRemaining(got::add);
    assertEquals(List.of("a", "b"), got);
    assertEquals(2, opens.get());
  }

  @Test
  void streamIsNeverRetriedAfterItsFirstElement() {
    FakeClock clock = new FakeClock();
    AtomicInteger opens = new AtomicInteger();
    Iterator<String> it = clock.retry().build().stream(deadline -> {
      opens.incrementAndGet();
      return new Iterator<>() {
        boolean sent;

        @Override
        public boolean hasNext() {
          if (sent) {
            throw failure(Code.UNAVAILABLE, "PROVIDERS_UNAVAILABLE", Duration.ofMillis(10));
          }
          return true;
        }

        @Override
        public String next() {
          sent = true;
          return "a";
        }
      };
    });
    assertEquals("a", it.next());
    assertThrows(UnavailableException.class, it::hasNext);
    assertEquals(1, opens.get());
  }

  /** A stream the test can see closed, as a GenerationStream's close() cancels its call. */
  static final class ClosableStream implements Iterator<String>, AutoCloseable {
    final Iterator<String> items;
    boolean closed;

    ClosableStream(String... items) {
      this.items = List.of(items).iterator();
    }

    @Override
    public boolean hasNext() {
      return !closed && items.hasNext();
    }

    @Override
    public String next() {
      return items.next();
    }

    @Override
    public void close() {
      closed = true;
    }
  }

  @Test
  void aRetriedStreamLeftEarlyClosesTheStreamItOpened() {
    // a caller that stops reading must be able to end the call: otherwise the sidecar goes on
    // generating (and charging) for nobody until the deadline
    List<ClosableStream> opened = new ArrayList<>();
    FakeClock clock = new FakeClock();
    try (Retry.StreamIterator<String> it = clock.retry().build().stream(deadline -> {
      if (opened.isEmpty()) {
        opened.add(new ClosableStream());
        throw failure(Code.UNAVAILABLE, "PROVIDERS_UNAVAILABLE", Duration.ofMillis(10));
      }
      ClosableStream stream = new ClosableStream("a", "b", "c");
      opened.add(stream);
      return stream;
    })) {
      assertEquals("a", it.next());
    }
    assertEquals(2, opened.size());
    assertTrue(opened.get(1).closed, "the stream being read is closed with the retry's iterator");
  }

  @Test
  void aClosedRetriedStreamIsOverAndNeverReopened() {
    AtomicInteger opens = new AtomicInteger();
    Retry.StreamIterator<String> it = new FakeClock().retry().build().stream(deadline -> {
      opens.incrementAndGet();
      return new ClosableStream("a", "b");
    });
    assertEquals("a", it.next());
    it.close();
    assertEquals(false, it.hasNext());
    assertEquals(1, opens.get());
  }

  @Test
  void streamInterruptedIsNeverRetried() {
    AtomicInteger opens = new AtomicInteger();
    Iterator<String> it = new FakeClock().retry().build().stream(deadline -> {
      opens.incrementAndGet();
      throw failure(Code.UNAVAILABLE, "STREAM_INTERRUPTED", null);
    });
    assertThrows(StreamInterruptedException.class, it::hasNext);
    assertEquals(1, opens.get());
  }

  private static Duration ms(Object value) {
    return Duration.ofNanos(Math.round(((Number) value).doubleValue() * 1000) * 1000);
  }

  /** The shared decision table (tests/contract/retry.yaml), through {@link Retry#delay}. */
  @SuppressWarnings("unchecked")
  @TestFactory
  Stream<DynamicTest> decisionTable() throws Exception {
    Map<String, Object> table;
    try (InputStream in = Files.newInputStream(SidecarProcess.REPO_ROOT.resolve("tests/contract/retry.yaml"))) {
      table = new Yaml().load(in);
    }
    List<Map<String, Object>> cases = (List<Map<String, Object>>) table.get("cases");
    assertTrue(cases.size() >= 20, "the table has its cases");
    return cases.stream().map(c -> DynamicTest.dynamicTest(String.valueOf(c.get("name")), () -> {
      Object retryInfo = c.get("retry_info_ms");
      StatusRuntimeException sent = failure(Code.valueOf(String.valueOf(c.get("code"))),
          String.valueOf(c.getOrDefault("reason", "")), retryInfo == null ? null : ms(retryInfo));
      if (c.get("retry_info") instanceof Map<?, ?> raw) { // the Duration as sent, well-formed or not
        var status = StatusProto.fromThrowable(sent).toBuilder().addDetails(Any.pack(RetryInfo.newBuilder()
            .setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(((Number) raw.get("seconds")).longValue())
                .setNanos(((Number) raw.get("nanos")).intValue())).build()));
        sent = StatusProto.toStatusRuntimeException(status.build());
      }
      SidecarException e = SidecarException.from(sent);
      double random = ((Number) c.get("random")).doubleValue();
      Retry retry = Retry.builder().maxAttempts(((Number) c.getOrDefault("max_attempts", 4)).intValue())
          .random(() -> random).build();
      Object left = c.get("deadline_left_ms");
      Optional<Duration> wait = retry.delay(e, ((Number) c.get("attempt")).intValue(), left == null ? null : ms(left));
      Object expected = c.get("wait_ms");
      assertEquals(expected == null ? Optional.empty() : Optional.of(ms(expected)), wait);
    }));
  }

  @Test
  void theDefaultRandomKeepsEachWaitWithinHalfAndAllOfTheBackoff() {
    for (int run = 0; run < 50; run++) {
      FakeClock clock = new FakeClock();
      assertThrows(UnavailableException.class, () -> clock.retry().build().call(deadline -> {
        throw failure(Code.UNAVAILABLE, "PROVIDERS_UNAVAILABLE", null);
      }));
      assertEquals(3, clock.sleeps.size(), "4 attempts by default");
      for (int i = 0; i < 3; i++) {
        long ceiling = 100L << i;
        long waited = clock.sleeps.get(i).toNanos();
        assertTrue(waited >= ceiling * 500_000 && waited <= ceiling * 1_000_000, clock.sleeps.toString());
      }
    }
  }

  /**
   * A Switch's failure is never retried, even inside {@link Retry#call}: an UNAVAILABLE Switch may
   * have been applied, and a repeat would undo any Switch of the conversation made in between. A
   * sidecar that is not listening makes every call UNAVAILABLE; ListModels is retried, Switch is not.
   */
  @Test
  void aSwitchIsNeverRetried() throws Exception {
    int port;
    try (ServerSocket free = new ServerSocket(0)) {
      port = free.getLocalPort();
    }
    SwitchRequest request = SwitchRequest.newBuilder().setTenantId("acme").setUserId("u1")
        .setConversationId("java-switch").setPersonaId("critic").build();
    try (SidecarClient client = SidecarClient.builder().address("127.0.0.1:" + port).withoutToken().build()) {
      FakeClock clock = new FakeClock();
      Retry retry = clock.retry().timeout(Duration.ofSeconds(10)).build();
      AtomicInteger switches = new AtomicInteger();
      assertThrows(UnavailableException.class, () -> retry.call(d -> {
        switches.incrementAndGet();
        return client.switchPersona(request, d);
      }));
      assertEquals(1, switches.get());
      AtomicInteger lists = new AtomicInteger();
      assertThrows(UnavailableException.class, () -> retry.call(d -> {
        lists.incrementAndGet();
        return client.listModels(ListModelsRequest.getDefaultInstance(), d);
      }));
      assertEquals(4, lists.get(), "the same failure of another call is retried");
    }
  }
}
