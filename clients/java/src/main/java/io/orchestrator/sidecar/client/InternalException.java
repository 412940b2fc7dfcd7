package io.orchestrator.sidecar.client;

/** INTERNAL, UNKNOWN, DATA_LOSS and anything else: a bug or a misconfiguration; quote {@link #requestId()}. */
public class InternalException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public InternalException(Details details, Throwable cause) {
    super(details, cause);
  }
}
