package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
import org.junit.jupiter.api.Test;

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
    assertThrows(QuotaExceededException.class, () -> clock.retry().build().call(deadline -> {
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
}
