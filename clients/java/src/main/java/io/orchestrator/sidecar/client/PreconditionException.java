package io.orchestrator.sidecar.client;

/** FAILED_PRECONDITION: USER_KEY_REQUIRED, KEYS_DISABLED, LEDGER_DISABLED. */
public class PreconditionException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public PreconditionException(Details details, Throwable cause) {
    super(details, cause);
  }
}
