package io.orchestrator.sidecar.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RequestInfo;
import com.google.rpc.ResourceInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A failed sidecar call: the gRPC status and its google.rpc details (from {@code grpc-status-details-bin}),
 * decoded once. Subclasses name the {@code ErrorInfo.reason} family; catch the one you handle. A missing
 * or malformed details payload gives the family of the gRPC code with empty details.
 */
public class SidecarException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** One bad request field, from google.rpc.BadRequest. */
  public record FieldViolation(String field, String description) {}

  /** One exhausted limit, from google.rpc.QuotaFailure. */
  public record QuotaViolation(String subject, String description) {}

  /** The resource an error is about, from google.rpc.ResourceInfo. */
  public record Resource(String type, String name, String description) {}

  /** The decoded parts of a failed call. */
  public record Details(
      Status.Code code,
      String message,
      String reason,
      String domain,
      Map<String, String> metadata,
      Optional<Duration> retryDelay,
      List<FieldViolation> fieldViolations,
      List<QuotaViolation> quotaViolations,
      Optional<Resource> resource,
      Optional<String> requestId) {}

  private final transient Details details;
  private transient volatile boolean neverRetried;

  public SidecarException(Details details, Throwable cause) {
    super(details.code() + (details.reason().isEmpty() ? "" : "/" + details.reason()) + ": " + details.message(), cause);
    this.details = details;
  }

  /** Marks the failure of a call no retry may repeat (a Switch): {@link Retry#isRetryable} is false for it. */
  SidecarException neverRetried() {
    this.neverRetried = true;
    return this;
  }

  boolean isNeverRetried() {
    return neverRetried;
  }

  /** The gRPC status code. */
  public Status.Code code() {
    return details.code();
  }

  /** The stable ErrorInfo.reason, e.g. {@code MODEL_NOT_FOUND}; empty when the status had no ErrorInfo. */
  public String reason() {
    return details.reason();
  }

  public String domain() {
    return details.domain();
  }

  /** ErrorInfo.metadata (keys are API, e.g. {@code model}, {@code retryAfterSeconds}). */
  public Map<String, String> metadata() {
    return details.metadata();
  }

  /** RetryInfo.retry_delay, when the sidecar sent one. */
  public Optional<Duration> retryDelay() {
    return details.retryDelay();
  }

  public List<FieldViolation> fieldViolations() {
    return details.fieldViolations();
  }

  public List<QuotaViolation> quotaViolations() {
    return details.quotaViolations();
  }

  public Optional<Resource> resource() {
    return details.resource();
  }

  /** RequestInfo.request_id of an INTERNAL error: quote it when reporting the bug. */
  public Optional<String> requestId() {
    return details.requestId();
  }

  public Details details() {
    return details;
  }

  /** Turns anything a call threw into a SidecarException (the same object when it already is one); never throws. */
  public static SidecarException from(Throwable thrown) {
    return from(thrown, 0);
  }

  /**
   * As {@link #from(Throwable)}, for a stream that had yielded {@code deltasBefore} deltas: an
   * UNAVAILABLE after one, without a reason (the connection broken, the sidecar killed), is a
   * {@link StreamInterruptedException} like the one the sidecar reports, since the caller has seen
   * part of the answer.
   */
  static SidecarException from(Throwable thrown, int deltasBefore) {
    if (thrown instanceof SidecarException known) {
      return known;
    }
    Details details = decode(thrown);
    if (deltasBefore > 0 && details.code() == Status.Code.UNAVAILABLE && details.reason().isEmpty()) {
      return new StreamInterruptedException(details, thrown);
    }
    return switch (details.reason()) {
      case "STREAM_INTERRUPTED" -> new StreamInterruptedException(details, thrown);
      default -> byCode(details, thrown);
    };
  }

  private static SidecarException byCode(Details details, Throwable cause) {
    return switch (details.code()) {
      case INVALID_ARGUMENT, OUT_OF_RANGE -> new InvalidRequestException(details, cause);
      case NOT_FOUND -> new NotFoundException(details, cause);
      case UNAUTHENTICATED -> new AuthenticationException(details, cause);
      case PERMISSION_DENIED -> new PermissionDeniedException(details, cause);
      // gRPC's own refusal has no reason: the sidecar's quota errors always say which limit
      case RESOURCE_EXHAUSTED -> details.reason().isEmpty()
          ? new TransportLimitException(details, cause)
          : new QuotaExceededException(details, cause);
      case FAILED_PRECONDITION -> new PreconditionException(details, cause);
      case ABORTED, ALREADY_EXISTS -> new ConflictException(details, cause);
      case UNAVAILABLE -> new UnavailableException(details, cause);
      case DEADLINE_EXCEEDED -> new DeadlineExceededException(details, cause);
      case CANCELLED -> new CancelledException(details, cause);
      default -> new InternalException(details, cause);
    };
  }

  /** Decodes the status and its details; a detail that does not parse is reported as absent. */
  static Details decode(Throwable thrown) {
    Status status = Status.fromThrowable(thrown);
    List<Any> anys = statusDetails(thrown);
    Optional<ErrorInfo> info = first(anys, ErrorInfo.class);
    List<FieldViolation> fields = new ArrayList<>();
    all(anys, BadRequest.class).forEach(b -> b.getFieldViolationsList()
        .forEach(v -> fields.add(new FieldViolation(v.getField(), v.getDescription()))));
    List<QuotaViolation> quotas = new ArrayList<>();
    all(anys, QuotaFailure.class).forEach(q -> q.getViolationsList()
        .forEach(v -> quotas.add(new QuotaViolation(v.getSubject(), v.getDescription()))));
    return new Details(
        status.getCode(),
        status.getDescription() == null ? "" : status.getDescription(),
        info.map(ErrorInfo::getReason).orElse(""),
        info.map(ErrorInfo::getDomain).orElse(""),
        Map.copyOf(info.map(ErrorInfo::getMetadataMap).orElse(Map.of())),
        first(anys, RetryInfo.class).filter(RetryInfo::hasRetryDelay)
            .filter(r -> r.getRetryDelay().getSeconds() >= 0 && r.getRetryDelay().getNanos() >= 0)
            .map(r -> delay(r.getRetryDelay())),
        List.copyOf(fields),
        List.copyOf(quotas),
        first(anys, ResourceInfo.class)
            .map(r -> new Resource(r.getResourceType(), r.getResourceName(), r.getDescription())),
        first(anys, RequestInfo.class).map(RequestInfo::getRequestId));
  }

  /** A RetryInfo delay; one past Duration (nanos over a second on the largest seconds) saturates: too long to wait. */
  private static Duration delay(com.google.protobuf.Duration sent) {
    try {
      return Duration.ofSeconds(sent.getSeconds(), sent.getNanos());
    } catch (ArithmeticException overflow) {
      return Duration.ofSeconds(Long.MAX_VALUE);
    }
  }

  private static List<Any> statusDetails(Throwable thrown) {
    try {
      com.google.rpc.Status status = StatusProto.fromThrowable(thrown);
      return status == null ? List.of() : status.getDetailsList();
    } catch (RuntimeException malformed) { // grpc-status-details-bin that is not a google.rpc.Status
      return List.of();
    }
  }

  private static <T extends Message> Optional<T> first(List<Any> anys, Class<T> type) {
    List<T> found = all(anys, type);
    return found.isEmpty() ? Optional.empty() : Optional.of(found.get(0));
  }

  private static <T extends Message> List<T> all(List<Any> anys, Class<T> type) {
    List<T> found = new ArrayList<>();
    for (Any any : anys) {
      if (any.is(type)) {
        try {
          found.add(any.unpack(type));
        } catch (InvalidProtocolBufferException malformed) {
          // reported as absent
        }
      }
    }
    return found;
  }
}
