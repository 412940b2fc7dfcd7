package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.Code;
import com.google.rpc.ErrorInfo;
import io.grpc.protobuf.StatusProto;
import java.io.InputStream;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * tests/contract/errors.yaml (generated from the protos' comments) replayed, as every client does:
 * each reason the API names, with its code, decodes to the same family in all four.
 */
class ErrorsTableTest {
  private static final Map<String, Class<? extends SidecarException>> FAMILIES = Map.ofEntries(
      Map.entry("invalid_request", InvalidRequestException.class),
      Map.entry("authentication", AuthenticationException.class),
      Map.entry("permission_denied", PermissionDeniedException.class),
      Map.entry("not_found", NotFoundException.class),
      Map.entry("failed_precondition", PreconditionException.class),
      Map.entry("quota_exceeded", QuotaExceededException.class),
      Map.entry("transport_limit", TransportLimitException.class),
      Map.entry("conflict", ConflictException.class),
      Map.entry("unavailable", UnavailableException.class),
      Map.entry("stream_interrupted", StreamInterruptedException.class),
      Map.entry("deadline_exceeded", DeadlineExceededException.class),
      Map.entry("cancelled", CancelledException.class),
      Map.entry("internal", InternalException.class));

  @Test
  @SuppressWarnings("unchecked")
  void everyReasonOfTheProtosDecodesToItsFamily() throws Exception {
    List<Map<String, String>> rows;
    try (InputStream in = Files.newInputStream(SidecarProcess.REPO_ROOT.resolve("tests/contract/errors.yaml"))) {
      rows = (List<Map<String, String>>) new Yaml().<Map<String, Object>>load(in).get("reasons");
    }
    assertTrue(rows.size() >= 40);
    for (Map<String, String> row : rows) {
      com.google.rpc.Status.Builder status = com.google.rpc.Status.newBuilder()
          .setCode(Code.valueOf(row.get("code")).getNumber()).setMessage("m");
      if (!row.get("reason").isEmpty()) {
        status.addDetails(Any.pack(ErrorInfo.newBuilder().setReason(row.get("reason")).setDomain("orchestrator.sidecar").build()));
      }
      SidecarException e = SidecarException.from(StatusProto.toStatusRuntimeException(status.build()));
      assertEquals(FAMILIES.get(row.get("family")), e.getClass(), row.toString());
      assertEquals(row.get("reason"), e.reason());
    }
  }
}
