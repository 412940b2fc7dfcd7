package io.orchestrator.sidecar.client;

/** DEADLINE_EXCEEDED: the caller's deadline passed. */
public class DeadlineExceededException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public DeadlineExceededException(Details details, Throwable cause) {
    super(details, cause);
  }
}
