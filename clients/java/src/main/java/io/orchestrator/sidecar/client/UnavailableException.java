package io.orchestrator.sidecar.client;

/** UNAVAILABLE: PROVIDERS_UNAVAILABLE and unreachable stores; retryable, often with {@link #retryDelay()}. */
public class UnavailableException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public UnavailableException(Details details, Throwable cause) {
    super(details, cause);
  }
}
