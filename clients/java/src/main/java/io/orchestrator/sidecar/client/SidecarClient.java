package io.orchestrator.sidecar.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Deadline;
import io.grpc.ForwardingClientCall;
import io.grpc.ForwardingClientCallListener;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import io.orchestrator.sidecar.v1.AcceptEscalationRequest;
import io.orchestrator.sidecar.v1.AcceptEscalationResponse;
import io.orchestrator.sidecar.v1.AdminServiceGrpc;
import io.orchestrator.sidecar.v1.AnswerEscalationRequest;
import io.orchestrator.sidecar.v1.AnswerEscalationResponse;
import io.orchestrator.sidecar.v1.ConversationServiceGrpc;
import io.orchestrator.sidecar.v1.DeclineEscalationRequest;
import io.orchestrator.sidecar.v1.DeclineEscalationResponse;
import io.orchestrator.sidecar.v1.EscalationServiceGrpc;
import io.orchestrator.sidecar.v1.EmbedRequest;
import io.orchestrator.sidecar.v1.EmbedResponse;
import io.orchestrator.sidecar.v1.ExperimentServiceGrpc;
import io.orchestrator.sidecar.v1.FeedbackRequest;
import io.orchestrator.sidecar.v1.FeedbackResponse;
import io.orchestrator.sidecar.v1.GenerateRequest;
import io.orchestrator.sidecar.v1.GenerateResponse;
import io.orchestrator.sidecar.v1.GenerationInput;
import io.orchestrator.sidecar.v1.GenerationServiceGrpc;
import io.orchestrator.sidecar.v1.GetAnswerReportRequest;
import io.orchestrator.sidecar.v1.GetAnswerReportResponse;
import io.orchestrator.sidecar.v1.GetExperimentReportRequest;
import io.orchestrator.sidecar.v1.GetExperimentReportResponse;
import io.orchestrator.sidecar.v1.GetQuotaRequest;
import io.orchestrator.sidecar.v1.GetQuotaResponse;
import io.orchestrator.sidecar.v1.KeyServiceGrpc;
import io.orchestrator.sidecar.v1.ListEscalationsRequest;
import io.orchestrator.sidecar.v1.ListEscalationsResponse;
import io.orchestrator.sidecar.v1.ListModelsRequest;
import io.orchestrator.sidecar.v1.ListModelsResponse;
import io.orchestrator.sidecar.v1.Priority;
import io.orchestrator.sidecar.v1.QuotaServiceGrpc;
import io.orchestrator.sidecar.v1.StreamGenerateRequest;
import io.orchestrator.sidecar.v1.StreamGenerateResponse;
import io.orchestrator.sidecar.v1.SwitchRequest;
import io.orchestrator.sidecar.v1.SwitchResponse;
import com.google.protobuf.Timestamp;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * One HTTP/2 connection to the sidecar (TCP or Unix socket) with the bearer token on every call:
 * {@code generate}, {@code stream} (a blocking iterator, or an observer), {@code embed},
 * {@code switchPersona}, {@code getQuota}, {@code feedback} and {@code getExperimentReport} throwing
 * typed {@link SidecarException}s, and the generated stubs for the other RPCs.
 */
public final class SidecarClient implements AutoCloseable {
  public static final String DEFAULT_ADDRESS = "127.0.0.1:50051";
  public static final String ADDRESS_ENV = "ORCHESTRATOR_SIDECAR_ADDRESS";
  public static final String TOKEN_ENV = "ORCHESTRATOR_SIDECAR_TOKEN";
  /**
   * HTTP/2 PING every 5 minutes while calls are open, none on an idle connection: a localhost peer
   * needs no liveness probing, and grpc servers refuse pings more frequent than 5 minutes by default.
   */
  public static final Duration DEFAULT_KEEPALIVE = Duration.ofMinutes(5);
  /**
   * The largest reply a call accepts unless {@link Builder#maxReplyBytes} says otherwise, the same in
   * every client: the largest the sidecar may be set to send (embeddings.max_reply_bytes goes up to
   * 256 MiB; an upstream's answer is relayed up to 64 MiB).
   */
  public static final int DEFAULT_MAX_REPLY_BYTES = 256 * 1024 * 1024;

  private final ManagedChannel channel;
  private final Duration defaultTimeout;

  private SidecarClient(ManagedChannel channel, Duration defaultTimeout) {
    this.channel = channel;
    this.defaultTimeout = defaultTimeout;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A client with every default: $ORCHESTRATOR_SIDECAR_ADDRESS (else 127.0.0.1:50051), $ORCHESTRATOR_SIDECAR_TOKEN. */
  public static SidecarClient create() {
    return builder().build();
  }

  /** Unary Generate within the client's default deadline (if any). */
  public GenerateResponse generate(GenerationInput input) {
    return generate(input, null);
  }

  /**
   * Unary Generate; {@code deadline} null uses the client's default. Inside {@link Retry#call}, an
   * input without a request id gets one of the retry's, the same in every attempt.
   */
  public GenerateResponse generate(GenerationInput input, Deadline deadline) {
    String retried = input.getRequestId().isEmpty() ? Retry.RequestIds.current() : null;
    GenerationInput keyed = retried == null ? input : input.toBuilder().setRequestId(retried).build();
    GenerateRequest request = GenerateRequest.newBuilder().setInput(keyed).build();
    return call(() -> generationStub(deadline).generate(request));
  }

  /**
   * Unary Generate at a priority (LOW to CRITICAL; the caller's tier may cap it): how urgently the
   * call is served when the sidecar or a deployment is at capacity.
   */
  public GenerateResponse generate(GenerationInput input, Priority priority, Deadline deadline) {
    return generate(input.toBuilder().setPriority(priority).build(), deadline);
  }

  /** StreamGenerate at a priority; see {@link #generate(GenerationInput, Priority, Deadline)}. */
  public GenerationStream stream(GenerationInput input, Priority priority, Deadline deadline) {
    return stream(input.toBuilder().setPriority(priority).build(), deadline);
  }

  /**
   * StreamGenerate as a blocking iterator: content deltas, then one {@code result} (the same
   * GenerateResponse Generate returns). Close it (try-with-resources) to cancel the call early.
   */
  public GenerationStream stream(GenerationInput input, Deadline deadline) {
    StreamGenerateRequest request = StreamGenerateRequest.newBuilder().setInput(input).build();
    return GenerationStream.open(() -> generationStub(deadline).streamGenerate(request));
  }

  public GenerationStream stream(GenerationInput input) {
    return stream(input, null);
  }

  /** A handle to cancel an asynchronous stream. */
  public interface Cancellable {
    void cancel();
  }

  /**
   * StreamGenerate delivered to {@code observer} on gRPC's threads; {@code onError} receives a
   * {@link SidecarException}.
   */
  public Cancellable streamAsync(GenerationInput input, Deadline deadline, StreamObserver<StreamGenerateResponse> observer) {
    StreamGenerateRequest request = StreamGenerateRequest.newBuilder().setInput(input).build();
    TypedObserver typed = new TypedObserver(observer);
    GenerationServiceGrpc.newStub(channel).withDeadline(effective(deadline)).streamGenerate(request, typed);
    return typed::cancel;
  }

  /**
   * Embed: one vector per text of the request, in order ({@code getEmbeddings(i).getValuesList()});
   * {@code deadline} null uses the client's default. Retry it like generate, with
   * {@code retry.call(d -> client.embed(request, d))}: every attempt carries the same request id (when
   * the request has none of its own), so the sidecar charges a retried request once.
   */
  public EmbedResponse embed(EmbedRequest request, Deadline deadline) {
    String retried = request.getRequestId().isEmpty() ? Retry.RequestIds.current() : null;
    EmbedRequest keyed = retried == null ? request : request.toBuilder().setRequestId(retried).build();
    return call(() -> generationStub(deadline).embed(keyed));
  }

  public EmbedResponse embed(EmbedRequest request) {
    return embed(request, null);
  }

  /**
   * Switch the conversation's persona with a natural-language command. Never retried, even inside
   * {@link Retry#call}: an UNAVAILABLE Switch may have been applied (the sidecar applies it, then
   * records it), and a repeat would take a newer version and undo any Switch made in between. Read
   * the switch history ({@code ListSwitchHistory}) before switching again.
   */
  public SwitchResponse switchPersona(SwitchRequest request, Deadline deadline) {
    try {
      return call(() -> ConversationServiceGrpc.newBlockingStub(channel).withDeadline(effective(deadline)).switch_(request));
    } catch (SidecarException e) {
      throw e.neverRetried();
    }
  }

  public SwitchResponse switchPersona(SwitchRequest request) {
    return switchPersona(request, null);
  }

  /** The caller's limits and what is left of them. */
  public GetQuotaResponse getQuota(GetQuotaRequest request, Deadline deadline) {
    return call(() -> QuotaServiceGrpc.newBlockingStub(channel).withDeadline(effective(deadline)).getQuota(request));
  }

  public GetQuotaResponse getQuota(GetQuotaRequest request) {
    return getQuota(request, null);
  }

  /** The routes this sidecar serves. */
  public ListModelsResponse listModels(ListModelsRequest request, Deadline deadline) {
    return call(() -> generationStub(deadline).listModels(request));
  }

  /**
   * Scores a finished call of the tenant (by request id) once: the same score and label again
   * return {@code alreadyRecorded}; a different score throws a {@link ConflictException}
   * (FEEDBACK_EXISTS). {@code label} may be empty.
   */
  public FeedbackResponse feedback(String tenantId, String requestId, double score, String label, Deadline deadline) {
    FeedbackRequest request = FeedbackRequest.newBuilder()
        .setTenantId(tenantId).setRequestId(requestId).setScore(score).setLabel(label).build();
    return call(() -> ExperimentServiceGrpc.newBlockingStub(channel).withDeadline(effective(deadline)).feedback(request));
  }

  public FeedbackResponse feedback(String tenantId, String requestId, double score, String label) {
    return feedback(tenantId, requestId, score, label, null);
  }

  /**
   * An experiment's report over the tenant's calls in [start, end): per variant statistics, the
   * tests against the control and a verdict. A statistic with no finite value is unset ({@code has...}).
   */
  public GetExperimentReportResponse getExperimentReport(
      String tenantId, String experiment, Instant start, Instant end, Deadline deadline) {
    GetExperimentReportRequest request = GetExperimentReportRequest.newBuilder()
        .setTenantId(tenantId).setExperiment(experiment)
        .setStartTime(timestamp(start)).setEndTime(timestamp(end)).build();
    return call(() -> ExperimentServiceGrpc.newBlockingStub(channel).withDeadline(effective(deadline))
        .getExperimentReport(request));
  }

  public GetExperimentReportResponse getExperimentReport(String tenantId, String experiment, Instant start, Instant end) {
    return getExperimentReport(tenantId, experiment, start, end, null);
  }

  public ExperimentServiceGrpc.ExperimentServiceBlockingStub experimentStub() {
    return ExperimentServiceGrpc.newBlockingStub(channel);
  }

  private static Timestamp timestamp(Instant at) {
    return Timestamp.newBuilder().setSeconds(at.getEpochSecond()).setNanos(at.getNano()).build();
  }

  /** Accepts an escalation offer made to the user ({@code summary.answer_decision.escalation_id}): queued. */
  public AcceptEscalationResponse acceptEscalation(String tenantId, String userId, String escalationId, Deadline deadline) {
    AcceptEscalationRequest request =
        AcceptEscalationRequest.newBuilder().setTenantId(tenantId).setUserId(userId).setEscalationId(escalationId).build();
    return call(() -> escalationStub(deadline).acceptEscalation(request));
  }

  /** One page of an agent's escalations (the creator's queue: QUEUED unless {@code states} says). */
  public ListEscalationsResponse listEscalations(ListEscalationsRequest request, Deadline deadline) {
    return call(() -> escalationStub(deadline).listEscalations(request));
  }

  /** The creator answers: the answer becomes a canonical answer and joins the conversation. */
  public AnswerEscalationResponse answerEscalation(AnswerEscalationRequest request, Deadline deadline) {
    return call(() -> escalationStub(deadline).answerEscalation(request));
  }

  /** The creator declines a queued escalation. */
  public DeclineEscalationResponse declineEscalation(DeclineEscalationRequest request, Deadline deadline) {
    return call(() -> escalationStub(deadline).declineEscalation(request));
  }

  /** An agent's answer-policy figures: auto-answer and reuse rates, backlog, declines, time to answer. */
  public GetAnswerReportResponse getAnswerReport(String tenantId, String agentId, Deadline deadline) {
    GetAnswerReportRequest request = GetAnswerReportRequest.newBuilder().setTenantId(tenantId).setAgentId(agentId).build();
    return call(() -> escalationStub(deadline).getAnswerReport(request));
  }

  public EscalationServiceGrpc.EscalationServiceBlockingStub escalationStub(Deadline deadline) {
    return EscalationServiceGrpc.newBlockingStub(channel).withDeadline(effective(deadline));
  }

  /**
   * The channel, for the generated stubs of every other RPC (errors: {@link SidecarException#from});
   * inside {@link Retry#call}, their Generate and Embed keep one request id like {@link #generate}.
   */
  public Channel channel() {
    return channel;
  }

  public GenerationServiceGrpc.GenerationServiceBlockingStub generationStub(Deadline deadline) {
    return GenerationServiceGrpc.newBlockingStub(channel).withDeadline(effective(deadline));
  }

  public ConversationServiceGrpc.ConversationServiceBlockingStub conversationStub() {
    return ConversationServiceGrpc.newBlockingStub(channel);
  }

  public QuotaServiceGrpc.QuotaServiceBlockingStub quotaStub() {
    return QuotaServiceGrpc.newBlockingStub(channel);
  }

  public KeyServiceGrpc.KeyServiceBlockingStub keyStub() {
    return KeyServiceGrpc.newBlockingStub(channel);
  }

  public AdminServiceGrpc.AdminServiceBlockingStub adminStub() {
    return AdminServiceGrpc.newBlockingStub(channel);
  }

  /** Closes the connection, waiting up to 5 seconds for open calls; a call made after fails CANCELLED. */
  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private Deadline effective(Deadline deadline) {
    if (deadline != null) {
      return deadline;
    }
    return defaultTimeout == null ? null : Deadline.after(defaultTimeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  private static <T> T call(Supplier<T> rpc) {
    try {
      return rpc.get();
    } catch (RuntimeException e) {
      throw SidecarException.from(e);
    }
  }

  /** Forwards to the caller's observer with errors as SidecarException; keeps the call to cancel it. */
  private static final class TypedObserver implements ClientResponseObserver<StreamGenerateRequest, StreamGenerateResponse> {
    private final StreamObserver<StreamGenerateResponse> delegate;
    private volatile ClientCallStreamObserver<StreamGenerateRequest> call;
    private int deltas; // gRPC calls an observer's methods one at a time
    private boolean result;

    TypedObserver(StreamObserver<StreamGenerateResponse> delegate) {
      this.delegate = delegate;
    }

    @Override
    public void beforeStart(ClientCallStreamObserver<StreamGenerateRequest> requestStream) {
      this.call = requestStream;
    }

    @Override
    public void onNext(StreamGenerateResponse value) {
      deltas += value.hasDelta() ? 1 : 0;
      result |= value.hasResult();
      delegate.onNext(value);
    }

    @Override
    public void onError(Throwable t) {
      delegate.onError(SidecarException.from(t, deltas));
    }

    @Override
    public void onCompleted() {
      if (result) {
        delegate.onCompleted();
      } else {
        delegate.onError(GenerationStream.endedWithoutResult(deltas));
      }
    }

    void cancel() {
      ClientCallStreamObserver<StreamGenerateRequest> c = call;
      if (c != null) {
        c.cancel("cancelled by the caller", null);
      }
    }
  }

  /**
   * After a call fails for want of a connection (UNAVAILABLE without the sidecar's status details:
   * refused, no socket file, the connection broken), resets the channel's reconnect backoff, so the
   * sidecar is tried again at once and the next call reaches it as soon as it is back. grpc-java's
   * backoff (1 s, growing 1.6 times per failed attempt up to 2 minutes) is not configurable, and
   * after a restart of a few seconds it left calls failing for seconds more with the sidecar serving.
   * At most one connection attempt per failed call.
   */
  private static final class ReconnectAtOnce implements ClientInterceptor {
    private static final Metadata.Key<byte[]> DETAILS = Metadata.Key.of("grpc-status-details-bin", Metadata.BINARY_BYTE_MARSHALLER);
    private volatile ManagedChannel channel;

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          super.start(new ForwardingClientCallListener.SimpleForwardingClientCallListener<>(listener) {
            @Override
            public void onClose(Status status, Metadata trailers) {
              ManagedChannel c = channel;
              if (status.getCode() == Status.Code.UNAVAILABLE && !trailers.containsKey(DETAILS) && c != null) {
                c.resetConnectBackoff();
              }
              super.onClose(status, trailers);
            }
          }, headers);
        }
      };
    }
  }

  /**
   * A call on a closed client fails at once, CANCELLED ("the client is closed"), as in the other
   * clients: grpc-java reports it UNAVAILABLE ("Channel shutdown invoked"), which reads as the
   * sidecar down and which the retry helper would retry.
   */
  private static final class RefusedWhenClosed implements ClientInterceptor {
    private volatile ManagedChannel channel;

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      ManagedChannel c = channel;
      if (c == null || !c.isShutdown()) {
        return next.newCall(method, options);
      }
      return new ClientCall<>() {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          listener.onClose(Status.CANCELLED.withDescription("the client is closed"), new Metadata());
        }

        @Override
        public void request(int count) {}

        @Override
        public void cancel(String message, Throwable cause) {}

        @Override
        public void halfClose() {}

        @Override
        public void sendMessage(Q message) {}
      };
    }
  }

  /**
   * Inside {@link Retry#call}, a Generate or Embed sent without a request id through the generated
   * stubs ({@link #generationStub}, {@link #channel}) gets the retry's next one, as
   * {@link #generate} and {@link #embed} take it: the same in every attempt, so the sidecar replays a
   * retried call instead of generating and charging it again.
   */
  private static final class KeyedInRetry implements ClientInterceptor {
    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      boolean keyed = method.getFullMethodName().equals(GenerationServiceGrpc.getGenerateMethod().getFullMethodName())
          || method.getFullMethodName().equals(GenerationServiceGrpc.getEmbedMethod().getFullMethodName());
      Retry.RequestIds ids = keyed ? Retry.REQUEST_IDS.get() : null; // the context of the calling thread
      if (ids == null) {
        return next.newCall(method, options);
      }
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        @SuppressWarnings("unchecked")
        public void sendMessage(Q message) {
          if (message instanceof GenerateRequest g && g.hasInput() && g.getInput().getRequestId().isEmpty()) {
            message = (Q) g.toBuilder().setInput(g.getInput().toBuilder().setRequestId(ids.next())).build();
          } else if (message instanceof EmbedRequest e && e.getRequestId().isEmpty()) {
            message = (Q) e.toBuilder().setRequestId(ids.next()).build();
          }
          super.sendMessage(message);
        }
      };
    }
  }

  /** Adds {@code authorization: Bearer <token>} to every call. */
  private static final class BearerToken implements ClientInterceptor {
    private static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
    private final String value;

    BearerToken(String token) {
      this.value = "Bearer " + token;
    }

    @Override
    public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
      return new ForwardingClientCall.SimpleForwardingClientCall<>(next.newCall(method, options)) {
        @Override
        public void start(Listener<R> listener, Metadata headers) {
          headers.put(AUTHORIZATION, value);
          super.start(listener, headers);
        }
      };
    }
  }

  /** Connection settings; unset ones come from the environment, then the defaults. */
  public static final class Builder {
    private String address;
    private String token;
    private boolean noToken;
    private Duration keepAlive = DEFAULT_KEEPALIVE;
    private int maxReplyBytes = DEFAULT_MAX_REPLY_BYTES;
    private Duration defaultTimeout;
    private Map<String, String> env = System.getenv();

    private Builder() {}

    /** {@code host:port} or {@code unix:///absolute/path}. */
    public Builder address(String address) {
      this.address = Objects.requireNonNull(address);
      return this;
    }

    /**
     * The bearer token sent on every call, without surrounding whitespace (a secret file's newline);
     * a blank one sends none, as {@link #withoutToken()}.
     */
    public Builder token(String token) {
      String trimmed = Objects.requireNonNull(token).strip();
      this.token = trimmed.isEmpty() ? null : trimmed;
      this.noToken = this.token == null;
      return this;
    }

    /** Send no token, whatever $ORCHESTRATOR_SIDECAR_TOKEN says. */
    public Builder withoutToken() {
      this.token = null;
      this.noToken = true;
      return this;
    }

    /** HTTP/2 keep-alive ping interval while calls are open (default 5 minutes). */
    public Builder keepAlive(Duration interval) {
      this.keepAlive = Objects.requireNonNull(interval);
      return this;
    }

    /**
     * The largest reply a call accepts, in bytes (default {@link #DEFAULT_MAX_REPLY_BYTES}); a larger
     * one fails RESOURCE_EXHAUSTED, a {@link TransportLimitException} naming both sizes.
     */
    public Builder maxReplyBytes(int bytes) {
      if (bytes < 1) {
        throw new IllegalArgumentException("maxReplyBytes must be at least 1 byte, not " + bytes);
      }
      this.maxReplyBytes = bytes;
      return this;
    }

    /** Deadline of every call made without one. */
    public Builder defaultTimeout(Duration timeout) {
      this.defaultTimeout = Objects.requireNonNull(timeout);
      return this;
    }

    /** The environment the defaults are read from (default System.getenv()). */
    public Builder environment(Map<String, String> env) {
      this.env = Map.copyOf(env);
      return this;
    }

    /** The gRPC target this builder connects to ({@code unix:///path} or {@code host:port}). */
    public String target() {
      String chosen = address != null ? address : nonEmpty(env.get(ADDRESS_ENV), DEFAULT_ADDRESS);
      return SidecarAddress.target(chosen);
    }

    /** The token this builder sends, or null. */
    public String resolvedToken() {
      if (noToken) {
        return null;
      }
      String fromEnv = env.get(TOKEN_ENV);
      return token != null ? token : nonEmpty(fromEnv == null ? null : fromEnv.strip(), null);
    }

    public SidecarClient build() {
      String target = target();
      ManagedChannelBuilder<?> channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
          .keepAliveTime(keepAlive.toNanos(), TimeUnit.NANOSECONDS)
          .keepAliveTimeout(20, TimeUnit.SECONDS)
          .keepAliveWithoutCalls(false)
          .maxInboundMessageSize(maxReplyBytes);
      if (target.startsWith("unix:") && channel instanceof NettyChannelBuilder netty) {
        // grpc-java sets SO_KEEPALIVE on every connection it opens, then the builder's options: an epoll
        // domain socket has no SO_KEEPALIVE, and netty logged a WARNING for each connection. A null
        // value takes the option off again (the HTTP/2 PINGs above are the liveness check).
        netty.withOption(ChannelOption.SO_KEEPALIVE, null);
      }
      String resolved = resolvedToken();
      if (resolved != null) {
        if (!resolved.chars().allMatch(c -> c >= ' ' && c <= '~')) { // never shown: it is a secret
          throw new IllegalArgumentException("the sidecar token has characters an HTTP header cannot carry (control or non-ASCII)");
        }
        channel.intercept(new BearerToken(resolved));
      }
      ReconnectAtOnce reconnect = new ReconnectAtOnce();
      RefusedWhenClosed refused = new RefusedWhenClosed();
      channel.intercept(new KeyedInRetry(), reconnect, refused);
      ManagedChannel built = channel.build();
      reconnect.channel = built;
      refused.channel = built;
      return new SidecarClient(built, defaultTimeout);
    }

    private static String nonEmpty(String value, String fallback) {
      return value == null || value.isEmpty() ? fallback : value;
    }
  }
}
