package io.orchestrator.sidecar.client;

import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import java.util.function.Function;

/**
 * Opt-in retries, the clients' one policy (clients/README.md, "Retries"; the same in Go, TypeScript
 * and Python). A unary call is retried on UNAVAILABLE and RESOURCE_EXHAUSTED, after the server's
 * RetryInfo delay when it sent one, never jittered (else, on UNAVAILABLE only, a backoff doubling
 * from 100 ms, capped at 5 s, jittered to between half of it and all of it), never past the overall
 * deadline; each attempt gets the deadline; a Switch never. A stream is retried only while it has yielded nothing.
 */
public final class Retry {
  /**
   * The request ids of one {@link #call}, in the gRPC {@link Context} its attempts run in:
   * {@link SidecarClient#generate} and {@link SidecarClient#embed} send the next one when the request
   * has none, so every attempt sends the same ids in the same order and the sidecar replays a
   * retried call instead of charging it again.
   */
  static final Context.Key<RequestIds> REQUEST_IDS = Context.key("orchestrator.retry.request_ids");

  /** One id per call an attempt makes, in order; every attempt starts again from the first. */
  static final class RequestIds {
    private final List<String> ids = new ArrayList<>();
    private int next;

    synchronized void restart() {
      next = 0;
    }

    synchronized String next() {
      if (next == ids.size()) {
        ids.add(UUID.randomUUID().toString().replace("-", ""));
      }
      return ids.get(next++);
    }

    /** The next id of the retry the current thread runs an attempt of, or null outside one. */
    static String current() {
      RequestIds ids = REQUEST_IDS.get();
      return ids == null ? null : ids.next();
    }
  }

  /** Waits between attempts (injected so tests never sleep). */
  public interface Sleeper {
    void sleep(Duration delay) throws InterruptedException;
  }

  private final int maxAttempts;
  private final Duration timeout;
  private final Duration baseDelay;
  private final Duration maxDelay;
  private final Duration maxRetryInfoDelay;
  private final Deadline.Ticker ticker;
  private final Sleeper sleeper;
  private final DoubleSupplier random;

  private Retry(Builder b) {
    this.maxAttempts = b.maxAttempts;
    this.timeout = b.timeout;
    this.baseDelay = b.baseDelay;
    this.maxDelay = b.maxDelay;
    this.maxRetryInfoDelay = b.maxRetryInfoDelay;
    this.ticker = b.ticker;
    this.sleeper = b.sleeper;
    this.random = b.random;
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * True for failures a retry may fix: UNAVAILABLE (but not a broken stream), and RESOURCE_EXHAUSTED
   * with a RetryInfo (the sidecar sends one when waiting helps; gRPC's own RESOURCE_EXHAUSTED, a
   * message over the size limit, has none and fails the same way again). Never a Switch's failure:
   * an UNAVAILABLE Switch may have been applied, and a repeat would undo a Switch made in between.
   */
  public static boolean isRetryable(SidecarException e) {
    if (e instanceof StreamInterruptedException || e.isNeverRetried()) {
      return false;
    }
    return e.code() == Status.Code.UNAVAILABLE
        || e.code() == Status.Code.RESOURCE_EXHAUSTED && e.retryDelay().isPresent();
  }

  /** Runs {@code call} with the overall deadline (null when none) until it succeeds or must not be retried. */
  public <T> T call(Function<Deadline, T> call) {
    Deadline deadline = overallDeadline();
    RequestIds ids = new RequestIds();
    Context keyed = Context.current().withValue(REQUEST_IDS, ids);
    for (int attempt = 1; ; attempt++) {
      ids.restart();
      Context previous = keyed.attach();
      try {
        return call.apply(deadline);
      } catch (RuntimeException thrown) {
        waitBeforeRetry(callFailure(thrown), attempt, deadline);
      } finally {
        keyed.detach(previous);
      }
    }
  }

  /**
   * A retried stream: an iterator to read, and to close when the caller stops early ({@code close()}
   * closes the stream open now, so a {@link GenerationStream}'s call is cancelled and the sidecar
   * stops generating); use it in try-with-resources. Closed, it has no next element.
   */
  public interface StreamIterator<T> extends Iterator<T>, AutoCloseable {
    @Override
    void close();
  }

  /**
   * An iterator over the stream {@code open} returns; a failure before its first element reopens it
   * (like a unary retry, the failed one closed first), a failure after it is thrown as is.
   */
  public <T> StreamIterator<T> stream(Function<Deadline, Iterator<T>> open) {
    Deadline deadline = overallDeadline();
    return new StreamIterator<>() {
      private Iterator<T> current;
      private boolean yielded;
      private boolean closed;
      private int attempt;

      @Override
      public boolean hasNext() {
        for (;;) {
          if (closed) {
            return false;
          }
          try {
            if (current == null) {
              attempt++;
              current = open.apply(deadline);
            }
            return current.hasNext();
          } catch (RuntimeException thrown) {
            SidecarException e = callFailure(thrown);
            if (yielded) {
              throw e;
            }
            closeCurrent();
            waitBeforeRetry(e, attempt, deadline);
          }
        }
      }

      @Override
      public T next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        yielded = true;
        return current.next();
      }

      @Override
      public void close() {
        closed = true;
        closeCurrent();
      }

      private void closeCurrent() {
        Iterator<T> was = current;
        current = null;
        if (was instanceof AutoCloseable closeable) {
          try {
            closeable.close(); // a GenerationStream's cancels its call
          } catch (RuntimeException e) {
            throw e;
          } catch (Exception e) {
            throw new IllegalStateException("closing the stream failed", e);
          }
        }
      }
    };
  }

  /**
   * A failed call's typed exception: a SidecarException, or a gRPC status of the generated stubs.
   * Anything else is the caller's own (a bug in the retried function): thrown as it is, never typed
   * as the sidecar's nor retried.
   */
  private static SidecarException callFailure(RuntimeException thrown) {
    if (thrown instanceof SidecarException || thrown instanceof StatusRuntimeException) {
      return SidecarException.from(thrown);
    }
    throw thrown;
  }

  private Deadline overallDeadline() {
    return timeout == null ? null : Deadline.after(timeout.toNanos(), TimeUnit.NANOSECONDS, ticker);
  }

  /**
   * The wait before the attempt after {@code attempt} (1 = the first) failed with {@code e}, or empty
   * to give up: not retryable, no attempt left, a RetryInfo delay over maxRetryInfoDelay, or a wait
   * ending at or past the deadline ({@code remaining} left; null: no deadline).
   */
  public Optional<Duration> delay(SidecarException e, int attempt, Duration remaining) {
    if (!isRetryable(e) || attempt >= maxAttempts) {
      return Optional.empty();
    }
    Optional<Duration> retryInfo = e.retryDelay();
    if (retryInfo.isPresent() && retryInfo.get().compareTo(maxRetryInfoDelay) > 0) {
      return Optional.empty(); // e.g. a daily quota: waiting hours inside one call helps no caller
    }
    Duration delay = retryInfo.orElseGet(() -> backoff(attempt));
    if (remaining != null && delay.compareTo(remaining) >= 0) {
      return Optional.empty(); // the next attempt could not start before the deadline
    }
    return Optional.of(delay);
  }

  private void waitBeforeRetry(SidecarException e, int attempt, Deadline deadline) {
    Duration remaining = deadline == null ? null : Duration.ofNanos(deadline.timeRemaining(TimeUnit.NANOSECONDS));
    Duration delay = delay(e, attempt, remaining).orElseThrow(() -> e);
    try {
      sleeper.sleep(delay);
    } catch (InterruptedException interrupted) {
      // the caller's cancellation (as grpc-java reports an interrupted blocking call), not e's failure
      Thread.currentThread().interrupt();
      throw SidecarException.from(Status.CANCELLED.withDescription("interrupted while waiting to retry")
          .withCause(interrupted).asRuntimeException());
    }
  }

  /**
   * floor(b * (0.5 + 0.5 r)) in whole microseconds, b = min(maxDelay, baseDelay * 2^(attempt-1)):
   * the same double-precision operations as the other clients, equal to the microsecond.
   */
  private Duration backoff(int attempt) {
    long limit = maxDelay.toNanos() / 1000;
    long ceiling = baseDelay.toNanos() / 1000;
    for (int i = 1; i < attempt && ceiling < limit; i++) {
      ceiling *= 2;
    }
    ceiling = Math.min(ceiling, limit);
    double drawn = random.getAsDouble();
    double r = drawn >= 0 ? Math.min(drawn, 1.0) : 0.0; // NaN too
    return Duration.ofNanos((long) Math.floor(ceiling * (0.5 + 0.5 * r)) * 1000);
  }

  public static final class Builder {
    private int maxAttempts = 4;
    private Duration timeout;
    private Duration baseDelay = Duration.ofMillis(100);
    private Duration maxDelay = Duration.ofSeconds(5);
    private Duration maxRetryInfoDelay = Duration.ofSeconds(30);
    private Deadline.Ticker ticker = Deadline.getSystemTicker();
    private Sleeper sleeper = d -> TimeUnit.NANOSECONDS.sleep(d.toNanos());
    private DoubleSupplier random = () -> ThreadLocalRandom.current().nextDouble();

    private Builder() {}

    /** Attempts in all, the first included (default 4). */
    public Builder maxAttempts(int n) {
      if (n < 1) {
        throw new IllegalArgumentException("maxAttempts must be at least 1");
      }
      this.maxAttempts = n;
      return this;
    }

    /** The overall deadline of every attempt and wait together. */
    public Builder timeout(Duration timeout) {
      this.timeout = Objects.requireNonNull(timeout);
      return this;
    }

    /** First backoff when the server gave no RetryInfo (default 100 ms, doubling up to maxDelay). */
    public Builder baseDelay(Duration d) {
      this.baseDelay = Objects.requireNonNull(d);
      return this;
    }

    /** Cap of the backoff (default 5 s). */
    public Builder maxDelay(Duration d) {
      this.maxDelay = Objects.requireNonNull(d);
      return this;
    }

    /** A longer RetryInfo delay is not waited for: the exception is thrown (default 30 s). */
    public Builder maxRetryInfoDelay(Duration d) {
      this.maxRetryInfoDelay = Objects.requireNonNull(d);
      return this;
    }

    public Builder ticker(Deadline.Ticker ticker) {
      this.ticker = Objects.requireNonNull(ticker);
      return this;
    }

    public Builder sleeper(Sleeper sleeper) {
      this.sleeper = Objects.requireNonNull(sleeper);
      return this;
    }

    /** A number in [0, 1) for the jitter (clamped to [0, 1]; default ThreadLocalRandom): inject it for deterministic tests. */
    public Builder random(DoubleSupplier random) {
      this.random = Objects.requireNonNull(random);
      return this;
    }

    public Retry build() {
      return new Retry(this);
    }
  }
}
