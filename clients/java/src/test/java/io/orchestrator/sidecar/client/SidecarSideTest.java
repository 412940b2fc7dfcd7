package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.Deadline;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.orchestrator.sidecar.v1.BreakerState;
import io.orchestrator.sidecar.v1.DeploymentStatus;
import io.orchestrator.sidecar.v1.EmbedRequest;
import io.orchestrator.sidecar.v1.EmbedResponse;
import io.orchestrator.sidecar.v1.GenerateRequest;
import io.orchestrator.sidecar.v1.GenerateResponse;
import io.orchestrator.sidecar.v1.GenerationInput;
import io.orchestrator.sidecar.v1.GenerationServiceGrpc;
import io.orchestrator.sidecar.v1.ListModelsRequest;
import io.orchestrator.sidecar.v1.StreamGenerateResponse;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.yaml.snakeyaml.Yaml;

/**
 * What an application sees of the sidecar's side: a stream stopped early ends the upstream attempt
 * and is not counted as a provider failure; the generated stubs inside {@link Retry#call} keep one
 * request id, as the client's own calls do.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SidecarSideTest {
  private static final Path CONTRACT = SidecarProcess.REPO_ROOT.resolve("tests/contract");
  /** 400 words, 2 tokens a chunk every 20 ms on the contract's echo deployment: about 4 s of stream. */
  private static final String LONG = IntStream.range(0, 400).mapToObj(i -> "w" + i).collect(Collectors.joining(" "));

  private SidecarProcess sidecar;
  private SidecarClient client;
  private String token;

  @BeforeAll
  void start() throws Exception {
    try (InputStream in = Files.newInputStream(CONTRACT.resolve("scenarios.yaml"))) {
      Map<String, Object> file = new Yaml().load(in);
      token = String.valueOf(file.get("token"));
    }
    sidecar = SidecarProcess.start(CONTRACT.resolve("sidecar.yaml"), token);
    client = SidecarClient.builder().address(sidecar.address).token(token).build();
  }

  @AfterAll
  void stop() throws Exception {
    if (client != null) client.close();
    if (sidecar != null) sidecar.close();
  }

  private GenerationInput longInput() {
    return Messages.ask(LONG).toBuilder().setTenantId("acme").setUserId("java-upstream").build();
  }

  private DeploymentStatus echoStatus() {
    return client.listModels(ListModelsRequest.getDefaultInstance(), null).getRoutesList().stream()
        .filter(r -> r.getAlias().equals("echo")).findFirst().orElseThrow().getDeployments(0).getStatus();
  }

  /** The upstream attempt ends well before the 4 s the stream takes, and not as a provider failure. */
  private void assertUpstreamEnded() throws InterruptedException {
    long started = System.nanoTime();
    while (echoStatus().getInFlight() != 0) {
      assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(2), "the upstream attempt still runs 2 s after the stop");
      Thread.sleep(20);
    }
    DeploymentStatus status = echoStatus();
    assertEquals("", status.getLastError(), "the caller's stop counted as a provider failure");
    assertEquals(BreakerState.BREAKER_STATE_CLOSED, status.getBreakerState());
  }

  @Test
  void aStreamClosedEarlyEndsTheUpstreamAttempt() throws Exception {
    try (GenerationStream stream = client.stream(longInput(), Deadline.after(30, TimeUnit.SECONDS))) {
      assertTrue(stream.next().hasDelta());
      assertEquals(1, echoStatus().getInFlight());
    }
    assertUpstreamEnded();
  }

  @Test
  void aStreamCancelledEarlyEndsTheUpstreamAttemptAndSaysSo() throws Exception {
    GenerationStream stream = client.stream(longInput(), Deadline.after(30, TimeUnit.SECONDS));
    assertTrue(stream.next().hasDelta());
    stream.cancel();
    assertThrows(CancelledException.class, stream::hasNext);
    assertUpstreamEnded();
  }

  @Test
  void anAsyncStreamCancelledEarlyEndsTheUpstreamAttempt() throws Exception {
    CompletableFuture<Void> first = new CompletableFuture<>();
    CompletableFuture<Throwable> ended = new CompletableFuture<>();
    SidecarClient.Cancellable call = client.streamAsync(longInput(), Deadline.after(30, TimeUnit.SECONDS), new io.grpc.stub.StreamObserver<>() {
      @Override
      public void onNext(StreamGenerateResponse value) {
        first.complete(null);
      }

      @Override
      public void onError(Throwable t) {
        ended.complete(t);
      }

      @Override
      public void onCompleted() {
        ended.complete(null);
      }
    });
    first.get(10, TimeUnit.SECONDS);
    call.cancel();
    assertTrue(ended.get(10, TimeUnit.SECONDS) instanceof CancelledException);
    assertUpstreamEnded();
  }

  /** Lets the first call run on the sidecar (which charges it), then loses its reply; counts the calls. */
  private static ClientInterceptor loseFirstReply(AtomicInteger calls) {
    return new ClientInterceptor() {
      @Override
      public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
          @Override
          public void start(Listener<R> listener, Metadata headers) {
            int call = calls.incrementAndGet();
            super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
              @Override
              public void onClose(Status status, Metadata trailers) {
                if (status.isOk() && call == 1) {
                  super.onClose(Status.UNAVAILABLE.withDescription("the reply was lost on the way"), new Metadata());
                } else {
                  super.onClose(status, trailers);
                }
              }
            }, headers);
          }
        };
      }
    };
  }

  /**
   * The generated stub's Generate and Embed inside {@link Retry#call}, their requests without a
   * request id, were sent so in every attempt: a retry after a lost reply was generated and charged again.
   */
  @Test
  void theGeneratedStubInsideRetryKeepsOneRequestId() {
    Retry retry = Retry.builder().timeout(Duration.ofSeconds(10)).baseDelay(Duration.ofMillis(1)).build();
    AtomicInteger calls = new AtomicInteger();
    Channel lossy = ClientInterceptors.intercept(client.channel(), loseFirstReply(calls));
    GenerateRequest request = GenerateRequest.newBuilder()
        .setInput(Messages.ask("a lost reply, the stub's").toBuilder().setTenantId("java-retry-stub").setUserId("u")).build();
    GenerateResponse answer = retry.call(d -> GenerationServiceGrpc.newBlockingStub(lossy).withDeadline(d).generate(request));
    assertEquals(2, calls.get());
    assertNotEquals("", answer.getSummary().getRequestId());
    assertTrue(answer.getSummary().getReplayed(), "the retried Generate ran again: charged twice");

    calls.set(0);
    EmbedResponse vectors = retry.call(d -> GenerationServiceGrpc.newBlockingStub(lossy).withDeadline(d)
        .embed(Messages.texts("java-retry-stub", "u", "a lost reply")));
    assertEquals(2, calls.get());
    assertTrue(vectors.getReplayed(), "the retried Embed ran again: charged twice");
  }

  /** Threads that keep a JVM alive: none is left once a client that made calls and streams is closed. */
  private static java.util.Set<String> nonDaemonThreads() {
    return Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.isAlive() && !t.isDaemon()).map(Thread::getName).collect(Collectors.toSet());
  }

  @Test
  void aClosedClientLeavesNoThreadKeepingTheJvmAlive() throws Exception {
    java.util.Set<String> before = nonDaemonThreads();
    try (SidecarClient own = SidecarClient.builder().address(sidecar.address).token(token).build()) {
      own.generate(Messages.ask("hi").toBuilder().setTenantId("acme").setUserId("java-threads").build(), Deadline.after(10, TimeUnit.SECONDS));
      try (GenerationStream stream = own.stream(longInput(), Deadline.after(30, TimeUnit.SECONDS))) {
        stream.next();
      }
      CompletableFuture<Void> first = new CompletableFuture<>();
      SidecarClient.Cancellable call = own.streamAsync(longInput(), Deadline.after(30, TimeUnit.SECONDS), new io.grpc.stub.StreamObserver<>() {
        @Override
        public void onNext(StreamGenerateResponse value) {
          first.complete(null);
        }

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {}
      });
      first.get(10, TimeUnit.SECONDS);
      call.cancel();
    }
    java.util.Set<String> left = nonDaemonThreads();
    left.removeAll(before);
    assertEquals(java.util.Set.of(), left, "non-daemon threads left after close()");
  }
}
