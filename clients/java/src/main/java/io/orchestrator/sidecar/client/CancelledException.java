package io.orchestrator.sidecar.client;

/** CANCELLED: the caller cancelled the call. */
public class CancelledException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public CancelledException(Details details, Throwable cause) {
    super(details, cause);
  }
}
