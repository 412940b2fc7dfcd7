package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Deadline;
import io.orchestrator.sidecar.v1.AcceptEscalationRequest;
import io.orchestrator.sidecar.v1.AnswerEscalationRequest;
import io.orchestrator.sidecar.v1.DeclineEscalationRequest;
import io.orchestrator.sidecar.v1.EmbedRequest;
import io.orchestrator.sidecar.v1.FeedbackRequest;
import io.orchestrator.sidecar.v1.GenerateRequest;
import io.orchestrator.sidecar.v1.GenerateResponse;
import io.orchestrator.sidecar.v1.GetAnswerReportRequest;
import io.orchestrator.sidecar.v1.GenerationInput;
import io.orchestrator.sidecar.v1.GetExperimentReportRequest;
import io.orchestrator.sidecar.v1.GetQuotaRequest;
import io.orchestrator.sidecar.v1.ListEscalationsRequest;
import io.orchestrator.sidecar.v1.ListModelsRequest;
import io.orchestrator.sidecar.v1.Priority;
import io.orchestrator.sidecar.v1.StreamGenerateRequest;
import io.orchestrator.sidecar.v1.StreamGenerateResponse;
import io.orchestrator.sidecar.v1.SwitchRequest;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;
import org.yaml.snakeyaml.Yaml;

/**
 * The shared client contract suite (tests/contract/scenarios.yaml) replayed in file order through
 * SidecarClient against a real sidecar process. Every scenario id must run; an unknown rpc fails.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ContractSuiteTest {
  private static final Path SCENARIOS = Path.of(System.getenv().getOrDefault("CONTRACT_SCENARIOS",
      SidecarProcess.REPO_ROOT.resolve("tests/contract/scenarios.yaml").toString()));
  private static final Path CONFIG = Path.of(System.getenv().getOrDefault("CONTRACT_SIDECAR_CONFIG",
      SidecarProcess.REPO_ROOT.resolve("tests/contract/sidecar.yaml").toString()));

  private Map<String, Object> file;
  private SidecarProcess sidecar;
  private SidecarClient authed;
  private SidecarClient anonymous;
  private final Set<String> ran = new HashSet<>();

  @BeforeAll
  void start() throws Exception {
    try (InputStream in = Files.newInputStream(SCENARIOS)) {
      file = new Yaml().load(in);
    }
    String token = String.valueOf(file.get("token"));
    sidecar = SidecarProcess.start(CONFIG, token);
    authed = SidecarClient.builder().address(sidecar.address).token(token).build();
    anonymous = SidecarClient.builder().address(sidecar.address).withoutToken().build();
  }

  @AfterAll
  void stop() throws Exception {
    if (authed != null) authed.close();
    if (anonymous != null) anonymous.close();
    if (sidecar != null) sidecar.close();
  }

  @SuppressWarnings("unchecked")
  @TestFactory
  Stream<DynamicTest> scenarios() {
    List<Map<String, Object>> scenarios = (List<Map<String, Object>>) file.get("scenarios");
    List<DynamicTest> tests = new ArrayList<>();
    for (Map<String, Object> scenario : scenarios) {
      String id = String.valueOf(scenario.get("id"));
      tests.add(DynamicTest.dynamicTest(id, () -> {
        ran.add(id);
        Scenarios.Outcome outcome = run(scenario);
        assertEquals(List.of(), Scenarios.mismatches((Map<String, Object>) scenario.get("expect"), outcome), "scenario " + id);
      }));
    }
    tests.add(DynamicTest.dynamicTest("every scenario id ran", () -> {
      List<String> ids = scenarios.stream().map(s -> String.valueOf(s.get("id"))).toList();
      assertEquals(ids.size(), new HashSet<>(ids).size(), "scenario ids are unique");
      assertEquals(List.of(), ids.stream().filter(i -> !ran.contains(i)).toList());
    }));
    tests.add(DynamicTest.dynamicTest("embed through Retry, and a bad batch as a typed error", () -> {
      Retry retry = Retry.builder().timeout(java.time.Duration.ofSeconds(10)).build();
      var reply = retry.call(d -> authed.embed(Messages.texts("java", "u", "a cat", "a dog"), d));
      assertEquals(2, reply.getEmbeddingsCount());
      assertTrue(reply.getNormalized());
      reply.getEmbeddingsList().forEach(e -> assertEquals(reply.getDimensions(), e.getValuesCount()));
      var bad = org.junit.jupiter.api.Assertions.assertThrows(InvalidRequestException.class,
          () -> authed.embed(Messages.texts("java", "u"), Deadline.after(10, TimeUnit.SECONDS)));
      assertEquals(List.of("texts"), bad.fieldViolations().stream().map(SidecarException.FieldViolation::field).toList());
    }));
    tests.add(DynamicTest.dynamicTest("a retried generate and embed keep their request ids: replayed, not charged again", () -> {
      Retry retry = Retry.builder().timeout(java.time.Duration.ofSeconds(10)).baseDelay(java.time.Duration.ofMillis(1)).build();
      GenerationInput input = Messages.ask("a lost reply").toBuilder().setTenantId("java-retry").setUserId("u").build();
      List<String> ids = new ArrayList<>();
      // each attempt runs on the sidecar; the first one's replies are lost on the way (UNAVAILABLE)
      List<Object> replies = retry.call(d -> {
        GenerateResponse answer = authed.generate(input, d);
        var vectors = authed.embed(Messages.texts("java-retry", "u", "a lost reply"), d);
        ids.add(answer.getSummary().getRequestId() + "/" + vectors.getRequestId());
        if (ids.size() == 1) {
          throw new io.grpc.StatusRuntimeException(io.grpc.Status.UNAVAILABLE.withDescription("the reply was lost"));
        }
        return List.of(answer, vectors);
      });
      assertEquals(2, ids.size());
      assertEquals(ids.get(0), ids.get(1), "both attempts sent the same request ids");
      assertTrue(((GenerateResponse) replies.get(0)).getSummary().getReplayed(), "generate replayed");
      assertTrue(((io.orchestrator.sidecar.v1.EmbedResponse) replies.get(1)).getReplayed(), "embed replayed");
      // outside a retry nothing is added: two calls are two requests
      assertFalse(authed.generate(input, Deadline.after(10, TimeUnit.SECONDS)).getSummary().getReplayed());
    }));
    tests.add(DynamicTest.dynamicTest("the same calls work over the Unix socket", () -> {
      try (SidecarClient client = SidecarClient.builder().address(sidecar.unixAddress).token(String.valueOf(file.get("token"))).build()) {
        assertFalse(client.listModels(ListModelsRequest.getDefaultInstance(), null).getRoutesList().isEmpty());
      }
    }));
    tests.add(DynamicTest.dynamicTest("streamAsync delivers the deltas, then the result", () -> {
      var done = new java.util.concurrent.CompletableFuture<List<String>>();
      List<String> kinds = java.util.Collections.synchronizedList(new ArrayList<>());
      authed.streamAsync(Messages.ask("one two three").toBuilder().setTenantId("acme").setUserId("u1").build(), Deadline.after(10, TimeUnit.SECONDS), new io.grpc.stub.StreamObserver<>() {
        @Override
        public void onNext(StreamGenerateResponse value) {
          kinds.add(value.hasDelta() ? "delta" : value.hasResult() ? "final" : "unknown");
        }

        @Override
        public void onError(Throwable t) {
          done.completeExceptionally(t);
        }

        @Override
        public void onCompleted() {
          done.complete(List.copyOf(kinds));
        }
      });
      List<String> got = done.get(15, TimeUnit.SECONDS);
      assertTrue(Scenarios.eventsMatch(List.of("delta+", "final"), got), got.toString());
    }));
    tests.add(DynamicTest.dynamicTest("streamAsync reports a typed error to onError", () -> {
      var failed = new java.util.concurrent.CompletableFuture<Throwable>();
      var input = Messages.ask("hi").toBuilder().setTenantId("acme").setUserId("u1").setModel("no-such-route").build();
      authed.streamAsync(input, null, new io.grpc.stub.StreamObserver<>() {
        @Override
        public void onNext(StreamGenerateResponse value) {}

        @Override
        public void onError(Throwable t) {
          failed.complete(t);
        }

        @Override
        public void onCompleted() {
          failed.complete(null);
        }
      });
      NotFoundException e = org.junit.jupiter.api.Assertions.assertInstanceOf(NotFoundException.class, failed.get(15, TimeUnit.SECONDS));
      assertEquals("MODEL_NOT_FOUND", e.reason());
    }));
    return tests.stream();
  }

  private Scenarios.Outcome run(Map<String, Object> scenario) throws Exception {
    SidecarClient client = Boolean.FALSE.equals(scenario.get("auth")) ? anonymous : authed;
    Deadline deadline = scenario.get("deadline_ms") instanceof Number ms ? Deadline.after(ms.longValue(), TimeUnit.MILLISECONDS) : null;
    Object request = scenario.get("request");
    String rpc = String.valueOf(scenario.get("rpc"));
    if (rpc.equals("StreamGenerate")) {
      return stream(client, scenario, deadline);
    }
    try {
      return switch (rpc) {
        case "Generate" -> {
          GenerationInput input = Json.parse(request, GenerateRequest.newBuilder()).getInput();
          GenerateResponse r = input.getPriority() == Priority.PRIORITY_UNSPECIFIED
              ? client.generate(input, deadline)
              : client.generate(input.toBuilder().clearPriority().build(), input.getPriority(), deadline);
          yield new Scenarios.Outcome(null, Json.print(r), Messages.textOf(r.getMessage()), List.of(), 0, false);
        }
        case "Switch" -> ok(Json.print(client.switchPersona(Json.parse(request, SwitchRequest.newBuilder()).build(), deadline)));
        case "GetQuota" -> ok(Json.print(client.getQuota(Json.parse(request, GetQuotaRequest.newBuilder()).build(), deadline)));
        case "ListModels" -> ok(Json.print(client.listModels(Json.parse(request, ListModelsRequest.newBuilder()).build(), deadline)));
        case "AcceptEscalation" -> {
          AcceptEscalationRequest r = Json.parse(request, AcceptEscalationRequest.newBuilder()).build();
          yield ok(Json.print(client.acceptEscalation(r.getTenantId(), r.getUserId(), r.getEscalationId(), deadline)));
        }
        case "ListEscalations" -> ok(Json.print(client.listEscalations(Json.parse(request, ListEscalationsRequest.newBuilder()).build(), deadline)));
        case "AnswerEscalation" -> ok(Json.print(client.answerEscalation(Json.parse(request, AnswerEscalationRequest.newBuilder()).build(), deadline)));
        case "DeclineEscalation" -> ok(Json.print(client.declineEscalation(Json.parse(request, DeclineEscalationRequest.newBuilder()).build(), deadline)));
        case "GetAnswerReport" -> {
          GetAnswerReportRequest r = Json.parse(request, GetAnswerReportRequest.newBuilder()).build();
          yield ok(Json.print(client.getAnswerReport(r.getTenantId(), r.getAgentId(), deadline)));
        }
        case "Embed" -> ok(Json.print(client.embed(Json.parse(request, EmbedRequest.newBuilder()).build(), deadline)));
        case "Feedback" -> {
          FeedbackRequest f = Json.parse(request, FeedbackRequest.newBuilder()).build();
          yield ok(Json.print(client.feedback(f.getTenantId(), f.getRequestId(), f.getScore(), f.getLabel(), deadline)));
        }
        case "GetExperimentReport" -> {
          GetExperimentReportRequest r = Json.parse(request, GetExperimentReportRequest.newBuilder()).build();
          Instant start = Instant.ofEpochSecond(r.getStartTime().getSeconds(), r.getStartTime().getNanos());
          Instant end = Instant.ofEpochSecond(r.getEndTime().getSeconds(), r.getEndTime().getNanos());
          yield ok(Json.print(client.getExperimentReport(r.getTenantId(), r.getExperiment(), start, end, deadline)));
        }
        default -> throw new AssertionError("scenario " + scenario.get("id") + ": unknown rpc " + rpc);
      };
    } catch (SidecarException e) {
      return new Scenarios.Outcome(e, null, null, List.of(), 0, false);
    }
  }

  private static Scenarios.Outcome ok(com.google.gson.JsonElement response) {
    return new Scenarios.Outcome(null, response, null, List.of(), 0, false);
  }

  private Scenarios.Outcome stream(SidecarClient client, Map<String, Object> scenario, Deadline deadline) throws Exception {
    var input = Json.parse(scenario.get("request"), StreamGenerateRequest.newBuilder()).getInput();
    int cancelAfter = scenario.get("cancel_after_deltas") instanceof Number n ? n.intValue() : -1;
    List<String> events = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    com.google.gson.JsonElement response = null;
    boolean cancelled = false;
    try (GenerationStream stream = client.stream(input, deadline)) {
      while (stream.hasNext()) {
        StreamGenerateResponse message = stream.next();
        if (message.hasDelta()) {
          events.add("delta");
          text.append(message.getDelta().getText());
          if (stream.deltas() == cancelAfter) {
            stream.cancel();
            cancelled = true;
          }
        } else if (message.hasResult()) {
          events.add("final");
          response = Json.print(message.getResult());
        } else {
          events.add("unknown");
        }
      }
      assertTrue(stream.deltas() >= 0);
      return new Scenarios.Outcome(null, response, text.toString(), events, stream.deltas(), cancelled);
    } catch (SidecarException e) {
      int deltas = (int) events.stream().filter("delta"::equals).count();
      return new Scenarios.Outcome(e, null, text.toString(), events, deltas, cancelled);
    }
  }
}
