package io.orchestrator.sidecar.client;

/** ABORTED: SWITCH_SUPERSEDED, a conflicting concurrent change. */
public class ConflictException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public ConflictException(Details details, Throwable cause) {
    super(details, cause);
  }
}
