package io.orchestrator.sidecar.client;

import java.util.Optional;

/**
 * UNAVAILABLE / STREAM_INTERRUPTED, or the connection broken after a delta: a stream failed after its
 * first delta; carries the partial usage (empty when the sidecar could not send it).
 */
public class StreamInterruptedException extends UnavailableException {
  private static final long serialVersionUID = 1L;

  /** What the broken stream had used, counted by the sidecar. */
  public record PartialUsage(long promptTokens, long completionTokens, boolean estimated) {}

  public StreamInterruptedException(Details details, Throwable cause) {
    super(details, cause);
  }

  /** The partial usage from ErrorInfo.metadata, when present and well-formed. */
  public Optional<PartialUsage> partialUsage() {
    String prompt = metadata().get("promptTokens");
    String completion = metadata().get("completionTokens");
    if (prompt == null || completion == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(new PartialUsage(Long.parseLong(prompt), Long.parseLong(completion),
          "true".equals(metadata().get("usageEstimated"))));
    } catch (NumberFormatException malformed) {
      return Optional.empty();
    }
  }
}
