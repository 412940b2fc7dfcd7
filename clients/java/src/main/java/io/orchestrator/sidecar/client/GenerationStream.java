package io.orchestrator.sidecar.client;

import io.grpc.Context;
import io.grpc.Status;
import io.orchestrator.sidecar.v1.GenerateResponse;
import io.orchestrator.sidecar.v1.StreamGenerateResponse;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.function.Supplier;

/**
 * A StreamGenerate call as a blocking iterator. {@link #hasNext()} and {@link #next()} throw
 * {@link SidecarException} (also when the stream ends without its result); {@link #close()} cancels
 * the call if it is still open.
 */
public final class GenerationStream implements Iterator<StreamGenerateResponse>, AutoCloseable {
  private final Context.CancellableContext context;
  private final Iterator<StreamGenerateResponse> responses;
  private int deltas;
  private GenerateResponse result;

  private GenerationStream(Context.CancellableContext context, Iterator<StreamGenerateResponse> responses) {
    this.context = context;
    this.responses = responses;
  }

  /** Starts the call in a cancellable context of its own, so that close() cancels just this call. */
  static GenerationStream open(Supplier<Iterator<StreamGenerateResponse>> start) {
    Context.CancellableContext context = Context.current().withCancellation();
    Context previous = context.attach();
    try {
      return new GenerationStream(context, start.get());
    } catch (RuntimeException e) {
      context.cancel(e);
      throw SidecarException.from(e);
    } finally {
      context.detach(previous);
    }
  }

  @Override
  public boolean hasNext() {
    boolean more;
    try {
      more = responses.hasNext();
    } catch (RuntimeException e) {
      context.cancel(null);
      throw SidecarException.from(e, deltas);
    }
    if (!more && result == null) { // a stream always ends with its result: anything else is a failure
      throw endedWithoutResult(deltas);
    }
    return more;
  }

  /** A stream that ended cleanly without its result: UNAVAILABLE, interrupted if it had yielded a delta. */
  static SidecarException endedWithoutResult(int deltas) {
    return SidecarException.from(Status.UNAVAILABLE.withDescription("the stream ended without a result").asRuntimeException(), deltas);
  }

  @Override
  public StreamGenerateResponse next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the stream has ended");
    }
    StreamGenerateResponse message = responses.next();
    if (message.hasDelta()) {
      deltas++;
    } else if (message.hasResult()) {
      result = message.getResult();
    }
    return message;
  }

  /** Content deltas received so far. */
  public int deltas() {
    return deltas;
  }

  /** The final GenerateResponse, once it has arrived; null before. */
  public GenerateResponse result() {
    return result;
  }

  /** Cancels the call (no-op once it has ended); the next hasNext() throws a CancelledException. */
  public void cancel() {
    context.cancel(null);
  }

  /** Cancels the call if it is still open. */
  @Override
  public void close() {
    cancel();
  }
}
