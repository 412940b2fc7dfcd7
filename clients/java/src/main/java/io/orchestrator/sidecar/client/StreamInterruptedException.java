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
    Optional<Long> prompt = tokenCount(metadata().get("promptTokens"));
    Optional<Long> completion = tokenCount(metadata().get("completionTokens"));
    if (prompt.isEmpty() || completion.isEmpty()) {
      return Optional.empty();
    }
    return Optional.of(new PartialUsage(prompt.get(), completion.get(), "true".equals(metadata().get("usageEstimated"))));
  }

  /**
   * A count read the way every client does: ASCII digits only (no sign, blank, fraction or other
   * script's digits, which {@code Long.parseLong} would take), within a long.
   */
  private static Optional<Long> tokenCount(String value) {
    if (value == null || !value.matches("[0-9]+")) {
      return Optional.empty();
    }
    try {
      return Optional.of(Long.parseLong(value));
    } catch (NumberFormatException overflow) {
      return Optional.empty();
    }
  }
}
