package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Typed exceptions from google.rpc.Status details: every detail kind, and payloads that are missing or malformed. */
class SidecarExceptionTest {
  private static StatusRuntimeException status(Code code, Any... details) {
    return StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
        .setCode(code.getNumber()).setMessage("refused").addAllDetails(List.of(details)).build());
  }

  @Test
  void quotaExceededCarriesReasonMetadataRetryDelayAndQuotaFailure() {
    SidecarException e = SidecarException.from(status(Code.RESOURCE_EXHAUSTED,
        Any.pack(ErrorInfo.newBuilder().setReason("REQUEST_QUOTA_EXCEEDED").setDomain("orchestrator.sidecar").putMetadata("limit", "rpm").build()),
        Any.pack(RetryInfo.newBuilder().setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(2).setNanos(500_000_000)).build()),
        Any.pack(QuotaFailure.newBuilder().addViolations(QuotaFailure.Violation.newBuilder().setSubject("user:u1").setDescription("3 rpm")).build())));
    QuotaExceededException q = assertInstanceOf(QuotaExceededException.class, e);
    assertEquals("REQUEST_QUOTA_EXCEEDED", q.reason());
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, q.code());
    assertEquals(Map.of("limit", "rpm"), q.metadata());
    assertEquals(Optional.of(Duration.ofMillis(2500)), q.retryDelay());
    assertEquals(List.of(new SidecarException.QuotaViolation("user:u1", "3 rpm")), q.quotaViolations());
  }

  @Test
  void resourceExhaustedWithoutTheSidecarsReasonIsATransportLimit() {
    // gRPC's own refusal (an oversized message, the server's concurrent-call limit): never the quota error
    for (StatusRuntimeException thrown : List.of(
        status(Code.RESOURCE_EXHAUSTED),
        status(Code.RESOURCE_EXHAUSTED, Any.pack(ErrorInfo.newBuilder().build())),
        io.grpc.Status.RESOURCE_EXHAUSTED.withDescription("message larger than max").asRuntimeException())) {
      SidecarException e = SidecarException.from(thrown);
      assertEquals(TransportLimitException.class, e.getClass());
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.code());
    }
  }

  @Test
  void badRequestFieldViolations() {
    SidecarException e = SidecarException.from(status(Code.INVALID_ARGUMENT,
        Any.pack(ErrorInfo.newBuilder().setReason("INVALID_REQUEST").build()),
        Any.pack(BadRequest.newBuilder().addFieldViolations(
            BadRequest.FieldViolation.newBuilder().setField("input.config.temperature").setDescription("0 to 2")).build())));
    assertInstanceOf(InvalidRequestException.class, e);
    assertEquals("input.config.temperature", e.fieldViolations().get(0).field());
  }

  @Test
  void streamInterruptedCarriesPartialUsage() {
    SidecarException e = SidecarException.from(status(Code.UNAVAILABLE, Any.pack(ErrorInfo.newBuilder()
        .setReason("STREAM_INTERRUPTED").putMetadata("promptTokens", "12").putMetadata("completionTokens", "3")
        .putMetadata("usageEstimated", "true").build())));
    StreamInterruptedException s = assertInstanceOf(StreamInterruptedException.class, e);
    assertInstanceOf(UnavailableException.class, s);
    assertEquals(Optional.of(new StreamInterruptedException.PartialUsage(12, 3, true)), s.partialUsage());
  }

  /** A token count is ASCII digits, nothing else (the same rule in every client). */
  @Test
  void partialUsageOnlyFromPlainDigits() {
    for (String bad : List.of("²", "٣", "+7", "-0", "7.5", "1e3", "0x10", "", " 7", "99999999999999999999")) {
      SidecarException e = SidecarException.from(status(Code.UNAVAILABLE, Any.pack(ErrorInfo.newBuilder()
          .setReason("STREAM_INTERRUPTED").putMetadata("promptTokens", bad).putMetadata("completionTokens", "2").build())));
      assertEquals(Optional.empty(), ((StreamInterruptedException) e).partialUsage(), "promptTokens \"" + bad + "\"");
    }
  }

  @Test
  void unusablePartialUsageIsAbsent() {
    SidecarException e = SidecarException.from(status(Code.UNAVAILABLE,
        Any.pack(ErrorInfo.newBuilder().setReason("STREAM_INTERRUPTED").putMetadata("promptTokens", "x").putMetadata("completionTokens", "1").build())));
    assertEquals(Optional.empty(), ((StreamInterruptedException) e).partialUsage());
  }

  @Test
  void noDetailsGivesTheFamilyOfTheCode() {
    SidecarException e = SidecarException.from(Status.UNAUTHENTICATED.withDescription("who").asRuntimeException());
    assertInstanceOf(AuthenticationException.class, e);
    assertEquals("", e.reason());
    assertTrue(e.fieldViolations().isEmpty());
    assertEquals(Optional.empty(), e.retryDelay());
  }

  @Test
  void malformedStatusDetailsBinNeverCrashes() {
    Metadata trailers = new Metadata();
    trailers.put(Metadata.Key.of("grpc-status-details-bin", Metadata.BINARY_BYTE_MARSHALLER), new byte[] {(byte) 0xff, 0x01, 0x02});
    SidecarException e = SidecarException.from(Status.UNAVAILABLE.withDescription("down").asRuntimeException(trailers));
    assertInstanceOf(UnavailableException.class, e);
    assertEquals("", e.reason());
  }

  @Test
  void malformedDetailIsSkippedOthersStillDecode() {
    Any broken = Any.newBuilder().setTypeUrl("type.googleapis.com/google.rpc.ErrorInfo")
        .setValue(ByteString.copyFrom(new byte[] {0x0a, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x0f})).build();
    Any brokenRetry = Any.newBuilder().setTypeUrl("type.googleapis.com/google.rpc.RetryInfo")
        .setValue(ByteString.copyFrom(new byte[] {(byte) 0xff})).build();
    SidecarException e = SidecarException.from(status(Code.UNAVAILABLE, broken, brokenRetry,
        Any.pack(QuotaFailure.newBuilder().addViolations(QuotaFailure.Violation.newBuilder().setSubject("s")).build())));
    assertInstanceOf(UnavailableException.class, e);
    assertEquals("", e.reason());
    assertEquals(Optional.empty(), e.retryDelay());
    assertEquals(1, e.quotaViolations().size());
  }

  @Test
  void anythingThrownBecomesASidecarException() {
    assertInstanceOf(InternalException.class, SidecarException.from(new IllegalStateException("boom")));
    assertInstanceOf(CancelledException.class, SidecarException.from(Status.CANCELLED.asRuntimeException()));
  }

  /** A hostile RetryInfo past java.time.Duration (the largest seconds and nanos over a second): too long to wait, never a crash. */
  @Test
  void aRetryInfoPastDurationIsTooLongToWaitNotACrash() {
    Any delay = Any.pack(RetryInfo.newBuilder().setRetryDelay(com.google.protobuf.Duration.newBuilder()
        .setSeconds(Long.MAX_VALUE).setNanos(1_500_000_000)).build());
    SidecarException e = SidecarException.from(status(Code.UNAVAILABLE, Any.pack(ErrorInfo.newBuilder().setReason("PROVIDERS_UNAVAILABLE").build()), delay));
    assertInstanceOf(UnavailableException.class, e);
    assertTrue(e.retryDelay().orElseThrow().compareTo(Duration.ofDays(365)) > 0);
    assertEquals(Optional.empty(), Retry.builder().build().delay(e, 1, null));
  }
}
