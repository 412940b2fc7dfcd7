package io.orchestrator.sidecar.client;

/** INVALID_ARGUMENT: the request itself is wrong (INVALID_REQUEST, CONTEXT_TOO_LONG, PERSONA_NOT_FOUND, ...); see {@link #fieldViolations()}. */
public class InvalidRequestException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public InvalidRequestException(Details details, Throwable cause) {
    super(details, cause);
  }
}
