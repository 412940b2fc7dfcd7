package io.orchestrator.sidecar.client;

/** NOT_FOUND: MODEL_NOT_FOUND and other unknown resources. */
public class NotFoundException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public NotFoundException(Details details, Throwable cause) {
    super(details, cause);
  }
}
