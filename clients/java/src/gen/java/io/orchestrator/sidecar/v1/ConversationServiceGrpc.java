package io.orchestrator.sidecar.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Conversations: personas, the active persona of a conversation and its stored history.
 * Authentication and authorization reasons as in GenerationService.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class ConversationServiceGrpc {

  private ConversationServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "orchestrator.v1.ConversationService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListPersonasRequest,
      io.orchestrator.sidecar.v1.ListPersonasResponse> getListPersonasMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListPersonas",
      requestType = io.orchestrator.sidecar.v1.ListPersonasRequest.class,
      responseType = io.orchestrator.sidecar.v1.ListPersonasResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListPersonasRequest,
      io.orchestrator.sidecar.v1.ListPersonasResponse> getListPersonasMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListPersonasRequest, io.orchestrator.sidecar.v1.ListPersonasResponse> getListPersonasMethod;
    if ((getListPersonasMethod = ConversationServiceGrpc.getListPersonasMethod) == null) {
      synchronized (ConversationServiceGrpc.class) {
        if ((getListPersonasMethod = ConversationServiceGrpc.getListPersonasMethod) == null) {
          ConversationServiceGrpc.getListPersonasMethod = getListPersonasMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.ListPersonasRequest, io.orchestrator.sidecar.v1.ListPersonasResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListPersonas"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListPersonasRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListPersonasResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ConversationServiceMethodDescriptorSupplier("ListPersonas"))
              .build();
        }
      }
    }
    return getListPersonasMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.SwitchRequest,
      io.orchestrator.sidecar.v1.SwitchResponse> getSwitchMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Switch",
      requestType = io.orchestrator.sidecar.v1.SwitchRequest.class,
      responseType = io.orchestrator.sidecar.v1.SwitchResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.SwitchRequest,
      io.orchestrator.sidecar.v1.SwitchResponse> getSwitchMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.SwitchRequest, io.orchestrator.sidecar.v1.SwitchResponse> getSwitchMethod;
    if ((getSwitchMethod = ConversationServiceGrpc.getSwitchMethod) == null) {
      synchronized (ConversationServiceGrpc.class) {
        if ((getSwitchMethod = ConversationServiceGrpc.getSwitchMethod) == null) {
          ConversationServiceGrpc.getSwitchMethod = getSwitchMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.SwitchRequest, io.orchestrator.sidecar.v1.SwitchResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Switch"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.SwitchRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.SwitchResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ConversationServiceMethodDescriptorSupplier("Switch"))
              .build();
        }
      }
    }
    return getSwitchMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListSwitchHistoryRequest,
      io.orchestrator.sidecar.v1.ListSwitchHistoryResponse> getListSwitchHistoryMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListSwitchHistory",
      requestType = io.orchestrator.sidecar.v1.ListSwitchHistoryRequest.class,
      responseType = io.orchestrator.sidecar.v1.ListSwitchHistoryResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListSwitchHistoryRequest,
      io.orchestrator.sidecar.v1.ListSwitchHistoryResponse> getListSwitchHistoryMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListSwitchHistoryRequest, io.orchestrator.sidecar.v1.ListSwitchHistoryResponse> getListSwitchHistoryMethod;
    if ((getListSwitchHistoryMethod = ConversationServiceGrpc.getListSwitchHistoryMethod) == null) {
      synchronized (ConversationServiceGrpc.class) {
        if ((getListSwitchHistoryMethod = ConversationServiceGrpc.getListSwitchHistoryMethod) == null) {
          ConversationServiceGrpc.getListSwitchHistoryMethod = getListSwitchHistoryMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.ListSwitchHistoryRequest, io.orchestrator.sidecar.v1.ListSwitchHistoryResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListSwitchHistory"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListSwitchHistoryRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListSwitchHistoryResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ConversationServiceMethodDescriptorSupplier("ListSwitchHistory"))
              .build();
        }
      }
    }
    return getListSwitchHistoryMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ClearConversationRequest,
      io.orchestrator.sidecar.v1.ClearConversationResponse> getClearConversationMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ClearConversation",
      requestType = io.orchestrator.sidecar.v1.ClearConversationRequest.class,
      responseType = io.orchestrator.sidecar.v1.ClearConversationResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ClearConversationRequest,
      io.orchestrator.sidecar.v1.ClearConversationResponse> getClearConversationMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ClearConversationRequest, io.orchestrator.sidecar.v1.ClearConversationResponse> getClearConversationMethod;
    if ((getClearConversationMethod = ConversationServiceGrpc.getClearConversationMethod) == null) {
      synchronized (ConversationServiceGrpc.class) {
        if ((getClearConversationMethod = ConversationServiceGrpc.getClearConversationMethod) == null) {
          ConversationServiceGrpc.getClearConversationMethod = getClearConversationMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.ClearConversationRequest, io.orchestrator.sidecar.v1.ClearConversationResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ClearConversation"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ClearConversationRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ClearConversationResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ConversationServiceMethodDescriptorSupplier("ClearConversation"))
              .build();
        }
      }
    }
    return getClearConversationMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static ConversationServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ConversationServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ConversationServiceStub>() {
        @java.lang.Override
        public ConversationServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ConversationServiceStub(channel, callOptions);
        }
      };
    return ConversationServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static ConversationServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ConversationServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ConversationServiceBlockingV2Stub>() {
        @java.lang.Override
        public ConversationServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ConversationServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return ConversationServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static ConversationServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ConversationServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ConversationServiceBlockingStub>() {
        @java.lang.Override
        public ConversationServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ConversationServiceBlockingStub(channel, callOptions);
        }
      };
    return ConversationServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static ConversationServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ConversationServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ConversationServiceFutureStub>() {
        @java.lang.Override
        public ConversationServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ConversationServiceFutureStub(channel, callOptions);
        }
      };
    return ConversationServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Conversations: personas, the active persona of a conversation and its stored history.
   * Authentication and authorization reasons as in GenerationService.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Lists the configured personas, optionally of one category and usable by one tier.
     * Reasons: INVALID_REQUEST (a malformed category, an unknown tier, page_size, page_token).
     * </pre>
     */
    default void listPersonas(io.orchestrator.sidecar.v1.ListPersonasRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListPersonasResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListPersonasMethod(), responseObserver);
    }

    /**
     * <pre>
     * Sets the active persona of a conversation, by id or by a natural command. One user's
     * Switches and generations are ordered: a Generate uses the persona of every Switch that arrived
     * before it; a newer Switch of the same conversation cancels one still waiting. Every attempt is
     * recorded (ListSwitchHistory).
     * Reasons: INVALID_REQUEST, PERSONA_NOT_FOUND (INVALID_ARGUMENT: unknown id or command; the
     * message and metadata.candidates list candidates), AMBIGUOUS_PERSONA (INVALID_ARGUMENT: the
     * command matches several; metadata.candidates lists them), PERSONA_NOT_ALLOWED
     * (PERMISSION_DENIED: the caller's tier may not use it), SWITCH_SUPERSEDED (ABORTED: a newer
     * Switch won), SESSION_STORE_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    default void switch_(io.orchestrator.sidecar.v1.SwitchRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.SwitchResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSwitchMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists a user's Switch attempts, newest first, a page at a time.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    default void listSwitchHistory(io.orchestrator.sidecar.v1.ListSwitchHistoryRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListSwitchHistoryResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListSwitchHistoryMethod(), responseObserver);
    }

    /**
     * <pre>
     * Forgets a conversation's stored history and active persona.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    default void clearConversation(io.orchestrator.sidecar.v1.ClearConversationRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ClearConversationResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getClearConversationMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service ConversationService.
   * <pre>
   * Conversations: personas, the active persona of a conversation and its stored history.
   * Authentication and authorization reasons as in GenerationService.
   * </pre>
   */
  public static abstract class ConversationServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return ConversationServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service ConversationService.
   * <pre>
   * Conversations: personas, the active persona of a conversation and its stored history.
   * Authentication and authorization reasons as in GenerationService.
   * </pre>
   */
  public static final class ConversationServiceStub
      extends io.grpc.stub.AbstractAsyncStub<ConversationServiceStub> {
    private ConversationServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ConversationServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ConversationServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Lists the configured personas, optionally of one category and usable by one tier.
     * Reasons: INVALID_REQUEST (a malformed category, an unknown tier, page_size, page_token).
     * </pre>
     */
    public void listPersonas(io.orchestrator.sidecar.v1.ListPersonasRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListPersonasResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListPersonasMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Sets the active persona of a conversation, by id or by a natural command. One user's
     * Switches and generations are ordered: a Generate uses the persona of every Switch that arrived
     * before it; a newer Switch of the same conversation cancels one still waiting. Every attempt is
     * recorded (ListSwitchHistory).
     * Reasons: INVALID_REQUEST, PERSONA_NOT_FOUND (INVALID_ARGUMENT: unknown id or command; the
     * message and metadata.candidates list candidates), AMBIGUOUS_PERSONA (INVALID_ARGUMENT: the
     * command matches several; metadata.candidates lists them), PERSONA_NOT_ALLOWED
     * (PERMISSION_DENIED: the caller's tier may not use it), SWITCH_SUPERSEDED (ABORTED: a newer
     * Switch won), SESSION_STORE_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    public void switch_(io.orchestrator.sidecar.v1.SwitchRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.SwitchResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSwitchMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists a user's Switch attempts, newest first, a page at a time.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    public void listSwitchHistory(io.orchestrator.sidecar.v1.ListSwitchHistoryRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListSwitchHistoryResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListSwitchHistoryMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Forgets a conversation's stored history and active persona.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    public void clearConversation(io.orchestrator.sidecar.v1.ClearConversationRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ClearConversationResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getClearConversationMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service ConversationService.
   * <pre>
   * Conversations: personas, the active persona of a conversation and its stored history.
   * Authentication and authorization reasons as in GenerationService.
   * </pre>
   */
  public static final class ConversationServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<ConversationServiceBlockingV2Stub> {
    private ConversationServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ConversationServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ConversationServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Lists the configured personas, optionally of one category and usable by one tier.
     * Reasons: INVALID_REQUEST (a malformed category, an unknown tier, page_size, page_token).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListPersonasResponse listPersonas(io.orchestrator.sidecar.v1.ListPersonasRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListPersonasMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Sets the active persona of a conversation, by id or by a natural command. One user's
     * Switches and generations are ordered: a Generate uses the persona of every Switch that arrived
     * before it; a newer Switch of the same conversation cancels one still waiting. Every attempt is
     * recorded (ListSwitchHistory).
     * Reasons: INVALID_REQUEST, PERSONA_NOT_FOUND (INVALID_ARGUMENT: unknown id or command; the
     * message and metadata.candidates list candidates), AMBIGUOUS_PERSONA (INVALID_ARGUMENT: the
     * command matches several; metadata.candidates lists them), PERSONA_NOT_ALLOWED
     * (PERMISSION_DENIED: the caller's tier may not use it), SWITCH_SUPERSEDED (ABORTED: a newer
     * Switch won), SESSION_STORE_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.SwitchResponse switch_(io.orchestrator.sidecar.v1.SwitchRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getSwitchMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists a user's Switch attempts, newest first, a page at a time.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListSwitchHistoryResponse listSwitchHistory(io.orchestrator.sidecar.v1.ListSwitchHistoryRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListSwitchHistoryMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Forgets a conversation's stored history and active persona.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ClearConversationResponse clearConversation(io.orchestrator.sidecar.v1.ClearConversationRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getClearConversationMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service ConversationService.
   * <pre>
   * Conversations: personas, the active persona of a conversation and its stored history.
   * Authentication and authorization reasons as in GenerationService.
   * </pre>
   */
  public static final class ConversationServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<ConversationServiceBlockingStub> {
    private ConversationServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ConversationServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ConversationServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Lists the configured personas, optionally of one category and usable by one tier.
     * Reasons: INVALID_REQUEST (a malformed category, an unknown tier, page_size, page_token).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListPersonasResponse listPersonas(io.orchestrator.sidecar.v1.ListPersonasRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListPersonasMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Sets the active persona of a conversation, by id or by a natural command. One user's
     * Switches and generations are ordered: a Generate uses the persona of every Switch that arrived
     * before it; a newer Switch of the same conversation cancels one still waiting. Every attempt is
     * recorded (ListSwitchHistory).
     * Reasons: INVALID_REQUEST, PERSONA_NOT_FOUND (INVALID_ARGUMENT: unknown id or command; the
     * message and metadata.candidates list candidates), AMBIGUOUS_PERSONA (INVALID_ARGUMENT: the
     * command matches several; metadata.candidates lists them), PERSONA_NOT_ALLOWED
     * (PERMISSION_DENIED: the caller's tier may not use it), SWITCH_SUPERSEDED (ABORTED: a newer
     * Switch won), SESSION_STORE_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.SwitchResponse switch_(io.orchestrator.sidecar.v1.SwitchRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSwitchMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists a user's Switch attempts, newest first, a page at a time.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListSwitchHistoryResponse listSwitchHistory(io.orchestrator.sidecar.v1.ListSwitchHistoryRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListSwitchHistoryMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Forgets a conversation's stored history and active persona.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ClearConversationResponse clearConversation(io.orchestrator.sidecar.v1.ClearConversationRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getClearConversationMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service ConversationService.
   * <pre>
   * Conversations: personas, the active persona of a conversation and its stored history.
   * Authentication and authorization reasons as in GenerationService.
   * </pre>
   */
  public static final class ConversationServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<ConversationServiceFutureStub> {
    private ConversationServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ConversationServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ConversationServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Lists the configured personas, optionally of one category and usable by one tier.
     * Reasons: INVALID_REQUEST (a malformed category, an unknown tier, page_size, page_token).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.ListPersonasResponse> listPersonas(
        io.orchestrator.sidecar.v1.ListPersonasRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListPersonasMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Sets the active persona of a conversation, by id or by a natural command. One user's
     * Switches and generations are ordered: a Generate uses the persona of every Switch that arrived
     * before it; a newer Switch of the same conversation cancels one still waiting. Every attempt is
     * recorded (ListSwitchHistory).
     * Reasons: INVALID_REQUEST, PERSONA_NOT_FOUND (INVALID_ARGUMENT: unknown id or command; the
     * message and metadata.candidates list candidates), AMBIGUOUS_PERSONA (INVALID_ARGUMENT: the
     * command matches several; metadata.candidates lists them), PERSONA_NOT_ALLOWED
     * (PERMISSION_DENIED: the caller's tier may not use it), SWITCH_SUPERSEDED (ABORTED: a newer
     * Switch won), SESSION_STORE_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.SwitchResponse> switch_(
        io.orchestrator.sidecar.v1.SwitchRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSwitchMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists a user's Switch attempts, newest first, a page at a time.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.ListSwitchHistoryResponse> listSwitchHistory(
        io.orchestrator.sidecar.v1.ListSwitchHistoryRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListSwitchHistoryMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Forgets a conversation's stored history and active persona.
     * Reasons: INVALID_REQUEST, SESSION_STORE_UNAVAILABLE.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.ClearConversationResponse> clearConversation(
        io.orchestrator.sidecar.v1.ClearConversationRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getClearConversationMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_LIST_PERSONAS = 0;
  private static final int METHODID_SWITCH = 1;
  private static final int METHODID_LIST_SWITCH_HISTORY = 2;
  private static final int METHODID_CLEAR_CONVERSATION = 3;

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
        case METHODID_LIST_PERSONAS:
          serviceImpl.listPersonas((io.orchestrator.sidecar.v1.ListPersonasRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListPersonasResponse>) responseObserver);
          break;
        case METHODID_SWITCH:
          serviceImpl.switch_((io.orchestrator.sidecar.v1.SwitchRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.SwitchResponse>) responseObserver);
          break;
        case METHODID_LIST_SWITCH_HISTORY:
          serviceImpl.listSwitchHistory((io.orchestrator.sidecar.v1.ListSwitchHistoryRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListSwitchHistoryResponse>) responseObserver);
          break;
        case METHODID_CLEAR_CONVERSATION:
          serviceImpl.clearConversation((io.orchestrator.sidecar.v1.ClearConversationRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ClearConversationResponse>) responseObserver);
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
          getListPersonasMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.ListPersonasRequest,
              io.orchestrator.sidecar.v1.ListPersonasResponse>(
                service, METHODID_LIST_PERSONAS)))
        .addMethod(
          getSwitchMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.SwitchRequest,
              io.orchestrator.sidecar.v1.SwitchResponse>(
                service, METHODID_SWITCH)))
        .addMethod(
          getListSwitchHistoryMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.ListSwitchHistoryRequest,
              io.orchestrator.sidecar.v1.ListSwitchHistoryResponse>(
                service, METHODID_LIST_SWITCH_HISTORY)))
        .addMethod(
          getClearConversationMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.ClearConversationRequest,
              io.orchestrator.sidecar.v1.ClearConversationResponse>(
                service, METHODID_CLEAR_CONVERSATION)))
        .build();
  }

  private static abstract class ConversationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    ConversationServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.orchestrator.sidecar.v1.ConversationServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("ConversationService");
    }
  }

  private static final class ConversationServiceFileDescriptorSupplier
      extends ConversationServiceBaseDescriptorSupplier {
    ConversationServiceFileDescriptorSupplier() {}
  }

  private static final class ConversationServiceMethodDescriptorSupplier
      extends ConversationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    ConversationServiceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (ConversationServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new ConversationServiceFileDescriptorSupplier())
              .addMethod(getListPersonasMethod())
              .addMethod(getSwitchMethod())
              .addMethod(getListSwitchHistoryMethod())
              .addMethod(getClearConversationMethod())
              .build();
        }
      }
    }
    return result;
  }
}
