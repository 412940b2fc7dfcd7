package io.orchestrator.sidecar.client;

/** PERMISSION_DENIED: MODEL_NOT_ALLOWED, TENANT_NOT_ALLOWED, PERSONA_NOT_ALLOWED, key mismatches. */
public class PermissionDeniedException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public PermissionDeniedException(Details details, Throwable cause) {
    super(details, cause);
  }
}
