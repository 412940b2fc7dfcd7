package io.orchestrator.sidecar.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * The escalation queue of creator agents (docs/answer-policy.md). Users accept offers made to them;
 * creators (credentials named in the agent's `creators`) list, answer and decline their own agent's
 * escalations. Authentication and authorization reasons as in GenerationService; every error about
 * a field names it (google.rpc.BadRequest) and changes nothing. Every RPC may also return
 * ANSWERS_DISABLED (FAILED_PRECONDITION: no answer policy is configured), ANSWER_STORE_UNAVAILABLE
 * (UNAVAILABLE, retryable: the answer store failed or timed out; nothing was changed) and
 * EMBEDDING_MODEL_UNAVAILABLE (UNAVAILABLE, retryable: the agent's embedding model cannot be reached,
 * and another model's vectors cannot be compared with its answers).
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class EscalationServiceGrpc {

  private EscalationServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "orchestrator.v1.EscalationService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.AcceptEscalationRequest,
      io.orchestrator.sidecar.v1.AcceptEscalationResponse> getAcceptEscalationMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "AcceptEscalation",
      requestType = io.orchestrator.sidecar.v1.AcceptEscalationRequest.class,
      responseType = io.orchestrator.sidecar.v1.AcceptEscalationResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.AcceptEscalationRequest,
      io.orchestrator.sidecar.v1.AcceptEscalationResponse> getAcceptEscalationMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.AcceptEscalationRequest, io.orchestrator.sidecar.v1.AcceptEscalationResponse> getAcceptEscalationMethod;
    if ((getAcceptEscalationMethod = EscalationServiceGrpc.getAcceptEscalationMethod) == null) {
      synchronized (EscalationServiceGrpc.class) {
        if ((getAcceptEscalationMethod = EscalationServiceGrpc.getAcceptEscalationMethod) == null) {
          EscalationServiceGrpc.getAcceptEscalationMethod = getAcceptEscalationMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.AcceptEscalationRequest, io.orchestrator.sidecar.v1.AcceptEscalationResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "AcceptEscalation"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.AcceptEscalationRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.AcceptEscalationResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EscalationServiceMethodDescriptorSupplier("AcceptEscalation"))
              .build();
        }
      }
    }
    return getAcceptEscalationMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListEscalationsRequest,
      io.orchestrator.sidecar.v1.ListEscalationsResponse> getListEscalationsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListEscalations",
      requestType = io.orchestrator.sidecar.v1.ListEscalationsRequest.class,
      responseType = io.orchestrator.sidecar.v1.ListEscalationsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListEscalationsRequest,
      io.orchestrator.sidecar.v1.ListEscalationsResponse> getListEscalationsMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListEscalationsRequest, io.orchestrator.sidecar.v1.ListEscalationsResponse> getListEscalationsMethod;
    if ((getListEscalationsMethod = EscalationServiceGrpc.getListEscalationsMethod) == null) {
      synchronized (EscalationServiceGrpc.class) {
        if ((getListEscalationsMethod = EscalationServiceGrpc.getListEscalationsMethod) == null) {
          EscalationServiceGrpc.getListEscalationsMethod = getListEscalationsMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.ListEscalationsRequest, io.orchestrator.sidecar.v1.ListEscalationsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListEscalations"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListEscalationsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListEscalationsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EscalationServiceMethodDescriptorSupplier("ListEscalations"))
              .build();
        }
      }
    }
    return getListEscalationsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.AnswerEscalationRequest,
      io.orchestrator.sidecar.v1.AnswerEscalationResponse> getAnswerEscalationMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "AnswerEscalation",
      requestType = io.orchestrator.sidecar.v1.AnswerEscalationRequest.class,
      responseType = io.orchestrator.sidecar.v1.AnswerEscalationResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.AnswerEscalationRequest,
      io.orchestrator.sidecar.v1.AnswerEscalationResponse> getAnswerEscalationMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.AnswerEscalationRequest, io.orchestrator.sidecar.v1.AnswerEscalationResponse> getAnswerEscalationMethod;
    if ((getAnswerEscalationMethod = EscalationServiceGrpc.getAnswerEscalationMethod) == null) {
      synchronized (EscalationServiceGrpc.class) {
        if ((getAnswerEscalationMethod = EscalationServiceGrpc.getAnswerEscalationMethod) == null) {
          EscalationServiceGrpc.getAnswerEscalationMethod = getAnswerEscalationMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.AnswerEscalationRequest, io.orchestrator.sidecar.v1.AnswerEscalationResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "AnswerEscalation"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.AnswerEscalationRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.AnswerEscalationResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EscalationServiceMethodDescriptorSupplier("AnswerEscalation"))
              .build();
        }
      }
    }
    return getAnswerEscalationMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.DeclineEscalationRequest,
      io.orchestrator.sidecar.v1.DeclineEscalationResponse> getDeclineEscalationMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeclineEscalation",
      requestType = io.orchestrator.sidecar.v1.DeclineEscalationRequest.class,
      responseType = io.orchestrator.sidecar.v1.DeclineEscalationResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.DeclineEscalationRequest,
      io.orchestrator.sidecar.v1.DeclineEscalationResponse> getDeclineEscalationMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.DeclineEscalationRequest, io.orchestrator.sidecar.v1.DeclineEscalationResponse> getDeclineEscalationMethod;
    if ((getDeclineEscalationMethod = EscalationServiceGrpc.getDeclineEscalationMethod) == null) {
      synchronized (EscalationServiceGrpc.class) {
        if ((getDeclineEscalationMethod = EscalationServiceGrpc.getDeclineEscalationMethod) == null) {
          EscalationServiceGrpc.getDeclineEscalationMethod = getDeclineEscalationMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.DeclineEscalationRequest, io.orchestrator.sidecar.v1.DeclineEscalationResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeclineEscalation"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.DeclineEscalationRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.DeclineEscalationResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EscalationServiceMethodDescriptorSupplier("DeclineEscalation"))
              .build();
        }
      }
    }
    return getDeclineEscalationMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetAnswerReportRequest,
      io.orchestrator.sidecar.v1.GetAnswerReportResponse> getGetAnswerReportMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetAnswerReport",
      requestType = io.orchestrator.sidecar.v1.GetAnswerReportRequest.class,
      responseType = io.orchestrator.sidecar.v1.GetAnswerReportResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetAnswerReportRequest,
      io.orchestrator.sidecar.v1.GetAnswerReportResponse> getGetAnswerReportMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetAnswerReportRequest, io.orchestrator.sidecar.v1.GetAnswerReportResponse> getGetAnswerReportMethod;
    if ((getGetAnswerReportMethod = EscalationServiceGrpc.getGetAnswerReportMethod) == null) {
      synchronized (EscalationServiceGrpc.class) {
        if ((getGetAnswerReportMethod = EscalationServiceGrpc.getGetAnswerReportMethod) == null) {
          EscalationServiceGrpc.getGetAnswerReportMethod = getGetAnswerReportMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.GetAnswerReportRequest, io.orchestrator.sidecar.v1.GetAnswerReportResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetAnswerReport"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetAnswerReportRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetAnswerReportResponse.getDefaultInstance()))
              .setSchemaDescriptor(new EscalationServiceMethodDescriptorSupplier("GetAnswerReport"))
              .build();
        }
      }
    }
    return getGetAnswerReportMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static EscalationServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<EscalationServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<EscalationServiceStub>() {
        @java.lang.Override
        public EscalationServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new EscalationServiceStub(channel, callOptions);
        }
      };
    return EscalationServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static EscalationServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<EscalationServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<EscalationServiceBlockingV2Stub>() {
        @java.lang.Override
        public EscalationServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new EscalationServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return EscalationServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static EscalationServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<EscalationServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<EscalationServiceBlockingStub>() {
        @java.lang.Override
        public EscalationServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new EscalationServiceBlockingStub(channel, callOptions);
        }
      };
    return EscalationServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static EscalationServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<EscalationServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<EscalationServiceFutureStub>() {
        @java.lang.Override
        public EscalationServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new EscalationServiceFutureStub(channel, callOptions);
        }
      };
    return EscalationServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * The escalation queue of creator agents (docs/answer-policy.md). Users accept offers made to them;
   * creators (credentials named in the agent's `creators`) list, answer and decline their own agent's
   * escalations. Authentication and authorization reasons as in GenerationService; every error about
   * a field names it (google.rpc.BadRequest) and changes nothing. Every RPC may also return
   * ANSWERS_DISABLED (FAILED_PRECONDITION: no answer policy is configured), ANSWER_STORE_UNAVAILABLE
   * (UNAVAILABLE, retryable: the answer store failed or timed out; nothing was changed) and
   * EMBEDDING_MODEL_UNAVAILABLE (UNAVAILABLE, retryable: the agent's embedding model cannot be reached,
   * and another model's vectors cannot be compared with its answers).
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Accepts an offer (AnswerDecision.escalation_id): the message is queued for the creator.
     * Reasons: INVALID_REQUEST, ESCALATION_NOT_FOUND (NOT_FOUND: no such offer to this user),
     * ESCALATION_WRONG_STATE (FAILED_PRECONDITION: accepted before, expired), ESCALATION_LIMIT_REACHED
     * (RESOURCE_EXHAUSTED: the agent's day or week limit, or its escalations turned off since the
     * offer), ESCALATION_NOT_ALLOWED (FAILED_PRECONDITION: since the offer, the policy stopped
     * allowing the user's tier or blocked the question's topic; the offer stays an offer).
     * </pre>
     */
    default void acceptEscalation(io.orchestrator.sidecar.v1.AcceptEscalationRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.AcceptEscalationResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getAcceptEscalationMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists an agent's escalations (QUEUED ones unless states says otherwise), oldest first.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND (NOT_FOUND: no answer policy for that agent),
     * CREATOR_NOT_ALLOWED (PERMISSION_DENIED).
     * </pre>
     */
    default void listEscalations(io.orchestrator.sidecar.v1.ListEscalationsRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListEscalationsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListEscalationsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Answers a queued escalation: the answer becomes a canonical answer and joins the conversation.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED, ESCALATION_NOT_FOUND,
     * ESCALATION_WRONG_STATE (answered, declined or expired before).
     * </pre>
     */
    default void answerEscalation(io.orchestrator.sidecar.v1.AnswerEscalationRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.AnswerEscalationResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getAnswerEscalationMethod(), responseObserver);
    }

    /**
     * <pre>
     * Declines a queued escalation.
     * Reasons: as AnswerEscalation.
     * </pre>
     */
    default void declineEscalation(io.orchestrator.sidecar.v1.DeclineEscalationRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.DeclineEscalationResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeclineEscalationMethod(), responseObserver);
    }

    /**
     * <pre>
     * An agent's figures: path distribution, auto-answer and reuse rates, backlog, declines, time to answer.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED.
     * </pre>
     */
    default void getAnswerReport(io.orchestrator.sidecar.v1.GetAnswerReportRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetAnswerReportResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetAnswerReportMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service EscalationService.
   * <pre>
   * The escalation queue of creator agents (docs/answer-policy.md). Users accept offers made to them;
   * creators (credentials named in the agent's `creators`) list, answer and decline their own agent's
   * escalations. Authentication and authorization reasons as in GenerationService; every error about
   * a field names it (google.rpc.BadRequest) and changes nothing. Every RPC may also return
   * ANSWERS_DISABLED (FAILED_PRECONDITION: no answer policy is configured), ANSWER_STORE_UNAVAILABLE
   * (UNAVAILABLE, retryable: the answer store failed or timed out; nothing was changed) and
   * EMBEDDING_MODEL_UNAVAILABLE (UNAVAILABLE, retryable: the agent's embedding model cannot be reached,
   * and another model's vectors cannot be compared with its answers).
   * </pre>
   */
  public static abstract class EscalationServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return EscalationServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service EscalationService.
   * <pre>
   * The escalation queue of creator agents (docs/answer-policy.md). Users accept offers made to them;
   * creators (credentials named in the agent's `creators`) list, answer and decline their own agent's
   * escalations. Authentication and authorization reasons as in GenerationService; every error about
   * a field names it (google.rpc.BadRequest) and changes nothing. Every RPC may also return
   * ANSWERS_DISABLED (FAILED_PRECONDITION: no answer policy is configured), ANSWER_STORE_UNAVAILABLE
   * (UNAVAILABLE, retryable: the answer store failed or timed out; nothing was changed) and
   * EMBEDDING_MODEL_UNAVAILABLE (UNAVAILABLE, retryable: the agent's embedding model cannot be reached,
   * and another model's vectors cannot be compared with its answers).
   * </pre>
   */
  public static final class EscalationServiceStub
      extends io.grpc.stub.AbstractAsyncStub<EscalationServiceStub> {
    private EscalationServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected EscalationServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new EscalationServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Accepts an offer (AnswerDecision.escalation_id): the message is queued for the creator.
     * Reasons: INVALID_REQUEST, ESCALATION_NOT_FOUND (NOT_FOUND: no such offer to this user),
     * ESCALATION_WRONG_STATE (FAILED_PRECONDITION: accepted before, expired), ESCALATION_LIMIT_REACHED
     * (RESOURCE_EXHAUSTED: the agent's day or week limit, or its escalations turned off since the
     * offer), ESCALATION_NOT_ALLOWED (FAILED_PRECONDITION: since the offer, the policy stopped
     * allowing the user's tier or blocked the question's topic; the offer stays an offer).
     * </pre>
     */
    public void acceptEscalation(io.orchestrator.sidecar.v1.AcceptEscalationRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.AcceptEscalationResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getAcceptEscalationMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists an agent's escalations (QUEUED ones unless states says otherwise), oldest first.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND (NOT_FOUND: no answer policy for that agent),
     * CREATOR_NOT_ALLOWED (PERMISSION_DENIED).
     * </pre>
     */
    public void listEscalations(io.orchestrator.sidecar.v1.ListEscalationsRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListEscalationsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListEscalationsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Answers a queued escalation: the answer becomes a canonical answer and joins the conversation.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED, ESCALATION_NOT_FOUND,
     * ESCALATION_WRONG_STATE (answered, declined or expired before).
     * </pre>
     */
    public void answerEscalation(io.orchestrator.sidecar.v1.AnswerEscalationRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.AnswerEscalationResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getAnswerEscalationMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Declines a queued escalation.
     * Reasons: as AnswerEscalation.
     * </pre>
     */
    public void declineEscalation(io.orchestrator.sidecar.v1.DeclineEscalationRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.DeclineEscalationResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeclineEscalationMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * An agent's figures: path distribution, auto-answer and reuse rates, backlog, declines, time to answer.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED.
     * </pre>
     */
    public void getAnswerReport(io.orchestrator.sidecar.v1.GetAnswerReportRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetAnswerReportResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetAnswerReportMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service EscalationService.
   * <pre>
   * The escalation queue of creator agents (docs/answer-policy.md). Users accept offers made to them;
   * creators (credentials named in the agent's `creators`) list, answer and decline their own agent's
   * escalations. Authentication and authorization reasons as in GenerationService; every error about
   * a field names it (google.rpc.BadRequest) and changes nothing. Every RPC may also return
   * ANSWERS_DISABLED (FAILED_PRECONDITION: no answer policy is configured), ANSWER_STORE_UNAVAILABLE
   * (UNAVAILABLE, retryable: the answer store failed or timed out; nothing was changed) and
   * EMBEDDING_MODEL_UNAVAILABLE (UNAVAILABLE, retryable: the agent's embedding model cannot be reached,
   * and another model's vectors cannot be compared with its answers).
   * </pre>
   */
  public static final class EscalationServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<EscalationServiceBlockingV2Stub> {
    private EscalationServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected EscalationServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new EscalationServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Accepts an offer (AnswerDecision.escalation_id): the message is queued for the creator.
     * Reasons: INVALID_REQUEST, ESCALATION_NOT_FOUND (NOT_FOUND: no such offer to this user),
     * ESCALATION_WRONG_STATE (FAILED_PRECONDITION: accepted before, expired), ESCALATION_LIMIT_REACHED
     * (RESOURCE_EXHAUSTED: the agent's day or week limit, or its escalations turned off since the
     * offer), ESCALATION_NOT_ALLOWED (FAILED_PRECONDITION: since the offer, the policy stopped
     * allowing the user's tier or blocked the question's topic; the offer stays an offer).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.AcceptEscalationResponse acceptEscalation(io.orchestrator.sidecar.v1.AcceptEscalationRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getAcceptEscalationMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists an agent's escalations (QUEUED ones unless states says otherwise), oldest first.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND (NOT_FOUND: no answer policy for that agent),
     * CREATOR_NOT_ALLOWED (PERMISSION_DENIED).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListEscalationsResponse listEscalations(io.orchestrator.sidecar.v1.ListEscalationsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListEscalationsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Answers a queued escalation: the answer becomes a canonical answer and joins the conversation.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED, ESCALATION_NOT_FOUND,
     * ESCALATION_WRONG_STATE (answered, declined or expired before).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.AnswerEscalationResponse answerEscalation(io.orchestrator.sidecar.v1.AnswerEscalationRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getAnswerEscalationMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Declines a queued escalation.
     * Reasons: as AnswerEscalation.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.DeclineEscalationResponse declineEscalation(io.orchestrator.sidecar.v1.DeclineEscalationRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeclineEscalationMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * An agent's figures: path distribution, auto-answer and reuse rates, backlog, declines, time to answer.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetAnswerReportResponse getAnswerReport(io.orchestrator.sidecar.v1.GetAnswerReportRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetAnswerReportMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service EscalationService.
   * <pre>
   * The escalation queue of creator agents (docs/answer-policy.md). Users accept offers made to them;
   * creators (credentials named in the agent's `creators`) list, answer and decline their own agent's
   * escalations. Authentication and authorization reasons as in GenerationService; every error about
   * a field names it (google.rpc.BadRequest) and changes nothing. Every RPC may also return
   * ANSWERS_DISABLED (FAILED_PRECONDITION: no answer policy is configured), ANSWER_STORE_UNAVAILABLE
   * (UNAVAILABLE, retryable: the answer store failed or timed out; nothing was changed) and
   * EMBEDDING_MODEL_UNAVAILABLE (UNAVAILABLE, retryable: the agent's embedding model cannot be reached,
   * and another model's vectors cannot be compared with its answers).
   * </pre>
   */
  public static final class EscalationServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<EscalationServiceBlockingStub> {
    private EscalationServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected EscalationServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new EscalationServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Accepts an offer (AnswerDecision.escalation_id): the message is queued for the creator.
     * Reasons: INVALID_REQUEST, ESCALATION_NOT_FOUND (NOT_FOUND: no such offer to this user),
     * ESCALATION_WRONG_STATE (FAILED_PRECONDITION: accepted before, expired), ESCALATION_LIMIT_REACHED
     * (RESOURCE_EXHAUSTED: the agent's day or week limit, or its escalations turned off since the
     * offer), ESCALATION_NOT_ALLOWED (FAILED_PRECONDITION: since the offer, the policy stopped
     * allowing the user's tier or blocked the question's topic; the offer stays an offer).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.AcceptEscalationResponse acceptEscalation(io.orchestrator.sidecar.v1.AcceptEscalationRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getAcceptEscalationMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists an agent's escalations (QUEUED ones unless states says otherwise), oldest first.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND (NOT_FOUND: no answer policy for that agent),
     * CREATOR_NOT_ALLOWED (PERMISSION_DENIED).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListEscalationsResponse listEscalations(io.orchestrator.sidecar.v1.ListEscalationsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListEscalationsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Answers a queued escalation: the answer becomes a canonical answer and joins the conversation.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED, ESCALATION_NOT_FOUND,
     * ESCALATION_WRONG_STATE (answered, declined or expired before).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.AnswerEscalationResponse answerEscalation(io.orchestrator.sidecar.v1.AnswerEscalationRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getAnswerEscalationMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Declines a queued escalation.
     * Reasons: as AnswerEscalation.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.DeclineEscalationResponse declineEscalation(io.orchestrator.sidecar.v1.DeclineEscalationRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeclineEscalationMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * An agent's figures: path distribution, auto-answer and reuse rates, backlog, declines, time to answer.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetAnswerReportResponse getAnswerReport(io.orchestrator.sidecar.v1.GetAnswerReportRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetAnswerReportMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service EscalationService.
   * <pre>
   * The escalation queue of creator agents (docs/answer-policy.md). Users accept offers made to them;
   * creators (credentials named in the agent's `creators`) list, answer and decline their own agent's
   * escalations. Authentication and authorization reasons as in GenerationService; every error about
   * a field names it (google.rpc.BadRequest) and changes nothing. Every RPC may also return
   * ANSWERS_DISABLED (FAILED_PRECONDITION: no answer policy is configured), ANSWER_STORE_UNAVAILABLE
   * (UNAVAILABLE, retryable: the answer store failed or timed out; nothing was changed) and
   * EMBEDDING_MODEL_UNAVAILABLE (UNAVAILABLE, retryable: the agent's embedding model cannot be reached,
   * and another model's vectors cannot be compared with its answers).
   * </pre>
   */
  public static final class EscalationServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<EscalationServiceFutureStub> {
    private EscalationServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected EscalationServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new EscalationServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Accepts an offer (AnswerDecision.escalation_id): the message is queued for the creator.
     * Reasons: INVALID_REQUEST, ESCALATION_NOT_FOUND (NOT_FOUND: no such offer to this user),
     * ESCALATION_WRONG_STATE (FAILED_PRECONDITION: accepted before, expired), ESCALATION_LIMIT_REACHED
     * (RESOURCE_EXHAUSTED: the agent's day or week limit, or its escalations turned off since the
     * offer), ESCALATION_NOT_ALLOWED (FAILED_PRECONDITION: since the offer, the policy stopped
     * allowing the user's tier or blocked the question's topic; the offer stays an offer).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.AcceptEscalationResponse> acceptEscalation(
        io.orchestrator.sidecar.v1.AcceptEscalationRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getAcceptEscalationMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists an agent's escalations (QUEUED ones unless states says otherwise), oldest first.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND (NOT_FOUND: no answer policy for that agent),
     * CREATOR_NOT_ALLOWED (PERMISSION_DENIED).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.ListEscalationsResponse> listEscalations(
        io.orchestrator.sidecar.v1.ListEscalationsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListEscalationsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Answers a queued escalation: the answer becomes a canonical answer and joins the conversation.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED, ESCALATION_NOT_FOUND,
     * ESCALATION_WRONG_STATE (answered, declined or expired before).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.AnswerEscalationResponse> answerEscalation(
        io.orchestrator.sidecar.v1.AnswerEscalationRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getAnswerEscalationMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Declines a queued escalation.
     * Reasons: as AnswerEscalation.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.DeclineEscalationResponse> declineEscalation(
        io.orchestrator.sidecar.v1.DeclineEscalationRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeclineEscalationMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * An agent's figures: path distribution, auto-answer and reuse rates, backlog, declines, time to answer.
     * Reasons: INVALID_REQUEST, AGENT_NOT_FOUND, CREATOR_NOT_ALLOWED.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.GetAnswerReportResponse> getAnswerReport(
        io.orchestrator.sidecar.v1.GetAnswerReportRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetAnswerReportMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_ACCEPT_ESCALATION = 0;
  private static final int METHODID_LIST_ESCALATIONS = 1;
  private static final int METHODID_ANSWER_ESCALATION = 2;
  private static final int METHODID_DECLINE_ESCALATION = 3;
  private static final int METHODID_GET_ANSWER_REPORT = 4;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final AsyncService serviceImpl;
    private final int methodId;

    MethodHandlers(AsyncService serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_ACCEPT_ESCALATION:
          serviceImpl.acceptEscalation((io.orchestrator.sidecar.v1.AcceptEscalationRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.AcceptEscalationResponse>) responseObserver);
          break;
        case METHODID_LIST_ESCALATIONS:
          serviceImpl.listEscalations((io.orchestrator.sidecar.v1.ListEscalationsRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListEscalationsResponse>) responseObserver);
          break;
        case METHODID_ANSWER_ESCALATION:
          serviceImpl.answerEscalation((io.orchestrator.sidecar.v1.AnswerEscalationRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.AnswerEscalationResponse>) responseObserver);
          break;
        case METHODID_DECLINE_ESCALATION:
          serviceImpl.declineEscalation((io.orchestrator.sidecar.v1.DeclineEscalationRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.DeclineEscalationResponse>) responseObserver);
          break;
        case METHODID_GET_ANSWER_REPORT:
          serviceImpl.getAnswerReport((io.orchestrator.sidecar.v1.GetAnswerReportRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetAnswerReportResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  public static final io.grpc.ServerServiceDefinition bindService(AsyncService service) {
    return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
        .addMethod(
          getAcceptEscalationMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.AcceptEscalationRequest,
              io.orchestrator.sidecar.v1.AcceptEscalationResponse>(
                service, METHODID_ACCEPT_ESCALATION)))
        .addMethod(
          getListEscalationsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.ListEscalationsRequest,
              io.orchestrator.sidecar.v1.ListEscalationsResponse>(
                service, METHODID_LIST_ESCALATIONS)))
        .addMethod(
          getAnswerEscalationMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.AnswerEscalationRequest,
              io.orchestrator.sidecar.v1.AnswerEscalationResponse>(
                service, METHODID_ANSWER_ESCALATION)))
        .addMethod(
          getDeclineEscalationMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.DeclineEscalationRequest,
              io.orchestrator.sidecar.v1.DeclineEscalationResponse>(
                service, METHODID_DECLINE_ESCALATION)))
        .addMethod(
          getGetAnswerReportMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.GetAnswerReportRequest,
              io.orchestrator.sidecar.v1.GetAnswerReportResponse>(
                service, METHODID_GET_ANSWER_REPORT)))
        .build();
  }

  private static abstract class EscalationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    EscalationServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.orchestrator.sidecar.v1.EscalationServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("EscalationService");
    }
  }

  private static final class EscalationServiceFileDescriptorSupplier
      extends EscalationServiceBaseDescriptorSupplier {
    EscalationServiceFileDescriptorSupplier() {}
  }

  private static final class EscalationServiceMethodDescriptorSupplier
      extends EscalationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    EscalationServiceMethodDescriptorSupplier(java.lang.String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (EscalationServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new EscalationServiceFileDescriptorSupplier())
              .addMethod(getAcceptEscalationMethod())
              .addMethod(getListEscalationsMethod())
              .addMethod(getAnswerEscalationMethod())
              .addMethod(getDeclineEscalationMethod())
              .addMethod(getGetAnswerReportMethod())
              .build();
        }
      }
    }
    return result;
  }
}
