package io.orchestrator.sidecar.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Quotas: what the caller may still spend. Authentication and authorization reasons as in
 * GenerationService.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class QuotaServiceGrpc {

  private QuotaServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "orchestrator.v1.QuotaService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetQuotaRequest,
      io.orchestrator.sidecar.v1.GetQuotaResponse> getGetQuotaMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetQuota",
      requestType = io.orchestrator.sidecar.v1.GetQuotaRequest.class,
      responseType = io.orchestrator.sidecar.v1.GetQuotaResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetQuotaRequest,
      io.orchestrator.sidecar.v1.GetQuotaResponse> getGetQuotaMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetQuotaRequest, io.orchestrator.sidecar.v1.GetQuotaResponse> getGetQuotaMethod;
    if ((getGetQuotaMethod = QuotaServiceGrpc.getGetQuotaMethod) == null) {
      synchronized (QuotaServiceGrpc.class) {
        if ((getGetQuotaMethod = QuotaServiceGrpc.getGetQuotaMethod) == null) {
          QuotaServiceGrpc.getGetQuotaMethod = getGetQuotaMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.GetQuotaRequest, io.orchestrator.sidecar.v1.GetQuotaResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetQuota"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetQuotaRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetQuotaResponse.getDefaultInstance()))
              .setSchemaDescriptor(new QuotaServiceMethodDescriptorSupplier("GetQuota"))
              .build();
        }
      }
    }
    return getGetQuotaMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static QuotaServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<QuotaServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<QuotaServiceStub>() {
        @java.lang.Override
        public QuotaServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new QuotaServiceStub(channel, callOptions);
        }
      };
    return QuotaServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static QuotaServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<QuotaServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<QuotaServiceBlockingV2Stub>() {
        @java.lang.Override
        public QuotaServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new QuotaServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return QuotaServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static QuotaServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<QuotaServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<QuotaServiceBlockingStub>() {
        @java.lang.Override
        public QuotaServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new QuotaServiceBlockingStub(channel, callOptions);
        }
      };
    return QuotaServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static QuotaServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<QuotaServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<QuotaServiceFutureStub>() {
        @java.lang.Override
        public QuotaServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new QuotaServiceFutureStub(channel, callOptions);
        }
      };
    return QuotaServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Quotas: what the caller may still spend. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Reports the caller's tier and, for each limit, its window, limit, used, reserved, remaining
     * and reset time (money in micro-dollars).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT: tenant_id missing or malformed, user_id
     * malformed, unknown tier in metadata), QUOTA_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    default void getQuota(io.orchestrator.sidecar.v1.GetQuotaRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetQuotaResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetQuotaMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service QuotaService.
   * <pre>
   * Quotas: what the caller may still spend. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static abstract class QuotaServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return QuotaServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service QuotaService.
   * <pre>
   * Quotas: what the caller may still spend. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static final class QuotaServiceStub
      extends io.grpc.stub.AbstractAsyncStub<QuotaServiceStub> {
    private QuotaServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected QuotaServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new QuotaServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Reports the caller's tier and, for each limit, its window, limit, used, reserved, remaining
     * and reset time (money in micro-dollars).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT: tenant_id missing or malformed, user_id
     * malformed, unknown tier in metadata), QUOTA_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    public void getQuota(io.orchestrator.sidecar.v1.GetQuotaRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetQuotaResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetQuotaMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service QuotaService.
   * <pre>
   * Quotas: what the caller may still spend. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static final class QuotaServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<QuotaServiceBlockingV2Stub> {
    private QuotaServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected QuotaServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new QuotaServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Reports the caller's tier and, for each limit, its window, limit, used, reserved, remaining
     * and reset time (money in micro-dollars).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT: tenant_id missing or malformed, user_id
     * malformed, unknown tier in metadata), QUOTA_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetQuotaResponse getQuota(io.orchestrator.sidecar.v1.GetQuotaRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetQuotaMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service QuotaService.
   * <pre>
   * Quotas: what the caller may still spend. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static final class QuotaServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<QuotaServiceBlockingStub> {
    private QuotaServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected QuotaServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new QuotaServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Reports the caller's tier and, for each limit, its window, limit, used, reserved, remaining
     * and reset time (money in micro-dollars).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT: tenant_id missing or malformed, user_id
     * malformed, unknown tier in metadata), QUOTA_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetQuotaResponse getQuota(io.orchestrator.sidecar.v1.GetQuotaRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetQuotaMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service QuotaService.
   * <pre>
   * Quotas: what the caller may still spend. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static final class QuotaServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<QuotaServiceFutureStub> {
    private QuotaServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected QuotaServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new QuotaServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Reports the caller's tier and, for each limit, its window, limit, used, reserved, remaining
     * and reset time (money in micro-dollars).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT: tenant_id missing or malformed, user_id
     * malformed, unknown tier in metadata), QUOTA_UNAVAILABLE (UNAVAILABLE, with RetryInfo).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.GetQuotaResponse> getQuota(
        io.orchestrator.sidecar.v1.GetQuotaRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetQuotaMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GET_QUOTA = 0;

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
        case METHODID_GET_QUOTA:
          serviceImpl.getQuota((io.orchestrator.sidecar.v1.GetQuotaRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetQuotaResponse>) responseObserver);
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
          getGetQuotaMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.GetQuotaRequest,
              io.orchestrator.sidecar.v1.GetQuotaResponse>(
                service, METHODID_GET_QUOTA)))
        .build();
  }

  private static abstract class QuotaServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    QuotaServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.orchestrator.sidecar.v1.QuotaServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("QuotaService");
    }
  }

  private static final class QuotaServiceFileDescriptorSupplier
      extends QuotaServiceBaseDescriptorSupplier {
    QuotaServiceFileDescriptorSupplier() {}
  }

  private static final class QuotaServiceMethodDescriptorSupplier
      extends QuotaServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    QuotaServiceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (QuotaServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new QuotaServiceFileDescriptorSupplier())
              .addMethod(getGetQuotaMethod())
              .build();
        }
      }
    }
    return result;
  }
}
