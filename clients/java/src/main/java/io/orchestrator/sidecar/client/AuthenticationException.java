package io.orchestrator.sidecar.client;

/** UNAUTHENTICATED: MISSING_CREDENTIALS / INVALID_CREDENTIALS. */
public class AuthenticationException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public AuthenticationException(Details details, Throwable cause) {
    super(details, cause);
  }
}
