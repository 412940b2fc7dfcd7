package io.orchestrator.sidecar.client;

/**
 * RESOURCE_EXHAUSTED from gRPC itself, without the sidecar's ErrorInfo: a message over a size limit (a
 * reply over this client's {@code maxReplyBytes}, a request over the sidecar's
 * {@code settings.max_receive_message_bytes}) or the sidecar's limit of concurrent calls. Not the
 * caller's quota ({@link QuotaExceededException} always has a reason); never retried (no RetryInfo).
 */
public class TransportLimitException extends SidecarException {
  private static final long serialVersionUID = 1L;

  public TransportLimitException(Details details, Throwable cause) {
    super(details, cause);
  }
}
