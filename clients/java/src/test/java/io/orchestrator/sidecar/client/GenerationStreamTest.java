package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.orchestrator.sidecar.v1.StreamGenerateResponse;
import io.orchestrator.sidecar.v1.ContentDelta;
import java.util.Iterator;
import org.junit.jupiter.api.Test;

/** A stream whose connection breaks: before its first delta retryable, after it interrupted. */
class GenerationStreamTest {
  /** The blocking stub's iterator of a call whose connection breaks after {@code deltas} deltas. */
  private static Iterator<StreamGenerateResponse> breaksAfter(int deltas) {
    return new Iterator<>() {
      int sent;

      @Override
      public boolean hasNext() {
        if (sent == deltas) { // what grpc-java reports when the sidecar is killed
          throw Status.UNAVAILABLE.withDescription("Network closed for unknown reason").asRuntimeException();
        }
        return true;
      }

      @Override
      public StreamGenerateResponse next() {
        sent++;
        return StreamGenerateResponse.newBuilder().setDelta(ContentDelta.newBuilder().setText("w ")).build();
      }
    };
  }

  @Test
  void aConnectionBrokenAfterADeltaIsAnInterruptedStream() {
    GenerationStream stream = GenerationStream.open(() -> breaksAfter(2));
    stream.next();
    stream.next();
    StreamInterruptedException e = assertThrows(StreamInterruptedException.class, stream::hasNext);
    assertTrue(e.partialUsage().isEmpty());
    assertFalse(Retry.isRetryable(e));
    assertEquals(2, stream.deltas());
  }

  @Test
  void aConnectionBrokenBeforeAnyDeltaStaysRetryable() {
    GenerationStream stream = GenerationStream.open(() -> breaksAfter(0));
    UnavailableException e = assertThrows(UnavailableException.class, stream::hasNext);
    assertFalse(e instanceof StreamInterruptedException);
    assertTrue(Retry.isRetryable(e));
  }

  @Test
  void aStreamEndingWithoutItsResultIsAFailure() {
    java.util.List<StreamGenerateResponse> deltaOnly = java.util.List.of(
        StreamGenerateResponse.newBuilder().setDelta(ContentDelta.newBuilder().setText("w")).build());
    GenerationStream stream = GenerationStream.open(deltaOnly::iterator);
    stream.next();
    assertThrows(StreamInterruptedException.class, stream::hasNext);
    GenerationStream empty = GenerationStream.open(() -> java.util.Collections.emptyIterator());
    UnavailableException e = assertThrows(UnavailableException.class, empty::hasNext);
    assertFalse(e instanceof StreamInterruptedException);
    StreamGenerateResponse result = StreamGenerateResponse.newBuilder()
        .setResult(io.orchestrator.sidecar.v1.GenerateResponse.getDefaultInstance()).build();
    GenerationStream whole = GenerationStream.open(() -> java.util.List.of(result).iterator());
    whole.next();
    assertFalse(whole.hasNext());
  }
}
