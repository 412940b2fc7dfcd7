package io.orchestrator.sidecar.client;

/** RESOURCE_EXHAUSTED with the sidecar's reason: the caller's own quota (RATE_LIMITED, *_QUOTA_EXCEEDED, ...), with {@link #quotaViolations()} and {@link #retryDelay()}. */
public class QuotaExceededException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public QuotaExceededException(Details details, Throwable cause) {
    super(details, cause);
  }
}
