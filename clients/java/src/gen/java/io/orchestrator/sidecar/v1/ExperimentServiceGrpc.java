package io.orchestrator.sidecar.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Experiments: feedback on finished calls, and the report comparing an experiment's variants.
 * Tenant-scoped: a caller scores and reads only the calls of a tenant its credential may act for.
 * Authentication and authorization reasons as in GenerationService. Both RPCs need the usage
 * ledger: LEDGER_DISABLED (FAILED_PRECONDITION) when settings.telemetry.ledger.backend is none,
 * LEDGER_UNAVAILABLE (UNAVAILABLE) when it cannot be read or written.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class ExperimentServiceGrpc {

  private ExperimentServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "orchestrator.v1.ExperimentService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.FeedbackRequest,
      io.orchestrator.sidecar.v1.FeedbackResponse> getFeedbackMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Feedback",
      requestType = io.orchestrator.sidecar.v1.FeedbackRequest.class,
      responseType = io.orchestrator.sidecar.v1.FeedbackResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.FeedbackRequest,
      io.orchestrator.sidecar.v1.FeedbackResponse> getFeedbackMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.FeedbackRequest, io.orchestrator.sidecar.v1.FeedbackResponse> getFeedbackMethod;
    if ((getFeedbackMethod = ExperimentServiceGrpc.getFeedbackMethod) == null) {
      synchronized (ExperimentServiceGrpc.class) {
        if ((getFeedbackMethod = ExperimentServiceGrpc.getFeedbackMethod) == null) {
          ExperimentServiceGrpc.getFeedbackMethod = getFeedbackMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.FeedbackRequest, io.orchestrator.sidecar.v1.FeedbackResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Feedback"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.FeedbackRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.FeedbackResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ExperimentServiceMethodDescriptorSupplier("Feedback"))
              .build();
        }
      }
    }
    return getFeedbackMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetExperimentReportRequest,
      io.orchestrator.sidecar.v1.GetExperimentReportResponse> getGetExperimentReportMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetExperimentReport",
      requestType = io.orchestrator.sidecar.v1.GetExperimentReportRequest.class,
      responseType = io.orchestrator.sidecar.v1.GetExperimentReportResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetExperimentReportRequest,
      io.orchestrator.sidecar.v1.GetExperimentReportResponse> getGetExperimentReportMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetExperimentReportRequest, io.orchestrator.sidecar.v1.GetExperimentReportResponse> getGetExperimentReportMethod;
    if ((getGetExperimentReportMethod = ExperimentServiceGrpc.getGetExperimentReportMethod) == null) {
      synchronized (ExperimentServiceGrpc.class) {
        if ((getGetExperimentReportMethod = ExperimentServiceGrpc.getGetExperimentReportMethod) == null) {
          ExperimentServiceGrpc.getGetExperimentReportMethod = getGetExperimentReportMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.GetExperimentReportRequest, io.orchestrator.sidecar.v1.GetExperimentReportResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetExperimentReport"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetExperimentReportRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetExperimentReportResponse.getDefaultInstance()))
              .setSchemaDescriptor(new ExperimentServiceMethodDescriptorSupplier("GetExperimentReport"))
              .build();
        }
      }
    }
    return getGetExperimentReportMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static ExperimentServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ExperimentServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ExperimentServiceStub>() {
        @java.lang.Override
        public ExperimentServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ExperimentServiceStub(channel, callOptions);
        }
      };
    return ExperimentServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static ExperimentServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ExperimentServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ExperimentServiceBlockingV2Stub>() {
        @java.lang.Override
        public ExperimentServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ExperimentServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return ExperimentServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static ExperimentServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ExperimentServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ExperimentServiceBlockingStub>() {
        @java.lang.Override
        public ExperimentServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ExperimentServiceBlockingStub(channel, callOptions);
        }
      };
    return ExperimentServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static ExperimentServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<ExperimentServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<ExperimentServiceFutureStub>() {
        @java.lang.Override
        public ExperimentServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new ExperimentServiceFutureStub(channel, callOptions);
        }
      };
    return ExperimentServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Experiments: feedback on finished calls, and the report comparing an experiment's variants.
   * Tenant-scoped: a caller scores and reads only the calls of a tenant its credential may act for.
   * Authentication and authorization reasons as in GenerationService. Both RPCs need the usage
   * ledger: LEDGER_DISABLED (FAILED_PRECONDITION) when settings.telemetry.ledger.backend is none,
   * LEDGER_UNAVAILABLE (UNAVAILABLE) when it cannot be read or written.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Stores a score (and an optional label) on a finished call's usage record, where reports read
     * it. A call is scored once: the same score and label again succeed with already_recorded set
     * and change nothing; a different one is refused.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming `tenant_id`, `request_id`,
     * `score` or `label`), CALL_NOT_FOUND (NOT_FOUND, metadata `requestId`), FEEDBACK_EXISTS
     * (ALREADY_EXISTS: the call has another score).
     * </pre>
     */
    default void feedback(io.orchestrator.sidecar.v1.FeedbackRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.FeedbackResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getFeedbackMethod(), responseObserver);
    }

    /**
     * <pre>
     * Reports an experiment over a time range for one tenant: per variant the calls, error rate,
     * latency percentiles, tokens, cost per call and mean feedback with its confidence interval;
     * per variant against the control Welch's t-test, Mann-Whitney U, Cohen's d and a verdict under
     * the configured gates, none before min_samples values on each side. Includes this sidecar's
     * records not yet written.
     * Reasons: INVALID_REQUEST (naming `tenant_id`, `experiment`, `start_time`, `end_time`; naming
     * `start_time` also when the range holds more than 250,000 calls),
     * EXPERIMENT_NOT_FOUND (NOT_FOUND, metadata `experiment`), STATS_UNAVAILABLE
     * (FAILED_PRECONDITION: the sidecar was installed without the `stats` extra).
     * </pre>
     */
    default void getExperimentReport(io.orchestrator.sidecar.v1.GetExperimentReportRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetExperimentReportResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetExperimentReportMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service ExperimentService.
   * <pre>
   * Experiments: feedback on finished calls, and the report comparing an experiment's variants.
   * Tenant-scoped: a caller scores and reads only the calls of a tenant its credential may act for.
   * Authentication and authorization reasons as in GenerationService. Both RPCs need the usage
   * ledger: LEDGER_DISABLED (FAILED_PRECONDITION) when settings.telemetry.ledger.backend is none,
   * LEDGER_UNAVAILABLE (UNAVAILABLE) when it cannot be read or written.
   * </pre>
   */
  public static abstract class ExperimentServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return ExperimentServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service ExperimentService.
   * <pre>
   * Experiments: feedback on finished calls, and the report comparing an experiment's variants.
   * Tenant-scoped: a caller scores and reads only the calls of a tenant its credential may act for.
   * Authentication and authorization reasons as in GenerationService. Both RPCs need the usage
   * ledger: LEDGER_DISABLED (FAILED_PRECONDITION) when settings.telemetry.ledger.backend is none,
   * LEDGER_UNAVAILABLE (UNAVAILABLE) when it cannot be read or written.
   * </pre>
   */
  public static final class ExperimentServiceStub
      extends io.grpc.stub.AbstractAsyncStub<ExperimentServiceStub> {
    private ExperimentServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ExperimentServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ExperimentServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores a score (and an optional label) on a finished call's usage record, where reports read
     * it. A call is scored once: the same score and label again succeed with already_recorded set
     * and change nothing; a different one is refused.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming `tenant_id`, `request_id`,
     * `score` or `label`), CALL_NOT_FOUND (NOT_FOUND, metadata `requestId`), FEEDBACK_EXISTS
     * (ALREADY_EXISTS: the call has another score).
     * </pre>
     */
    public void feedback(io.orchestrator.sidecar.v1.FeedbackRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.FeedbackResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getFeedbackMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Reports an experiment over a time range for one tenant: per variant the calls, error rate,
     * latency percentiles, tokens, cost per call and mean feedback with its confidence interval;
     * per variant against the control Welch's t-test, Mann-Whitney U, Cohen's d and a verdict under
     * the configured gates, none before min_samples values on each side. Includes this sidecar's
     * records not yet written.
     * Reasons: INVALID_REQUEST (naming `tenant_id`, `experiment`, `start_time`, `end_time`; naming
     * `start_time` also when the range holds more than 250,000 calls),
     * EXPERIMENT_NOT_FOUND (NOT_FOUND, metadata `experiment`), STATS_UNAVAILABLE
     * (FAILED_PRECONDITION: the sidecar was installed without the `stats` extra).
     * </pre>
     */
    public void getExperimentReport(io.orchestrator.sidecar.v1.GetExperimentReportRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetExperimentReportResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetExperimentReportMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service ExperimentService.
   * <pre>
   * Experiments: feedback on finished calls, and the report comparing an experiment's variants.
   * Tenant-scoped: a caller scores and reads only the calls of a tenant its credential may act for.
   * Authentication and authorization reasons as in GenerationService. Both RPCs need the usage
   * ledger: LEDGER_DISABLED (FAILED_PRECONDITION) when settings.telemetry.ledger.backend is none,
   * LEDGER_UNAVAILABLE (UNAVAILABLE) when it cannot be read or written.
   * </pre>
   */
  public static final class ExperimentServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<ExperimentServiceBlockingV2Stub> {
    private ExperimentServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ExperimentServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ExperimentServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores a score (and an optional label) on a finished call's usage record, where reports read
     * it. A call is scored once: the same score and label again succeed with already_recorded set
     * and change nothing; a different one is refused.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming `tenant_id`, `request_id`,
     * `score` or `label`), CALL_NOT_FOUND (NOT_FOUND, metadata `requestId`), FEEDBACK_EXISTS
     * (ALREADY_EXISTS: the call has another score).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.FeedbackResponse feedback(io.orchestrator.sidecar.v1.FeedbackRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getFeedbackMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reports an experiment over a time range for one tenant: per variant the calls, error rate,
     * latency percentiles, tokens, cost per call and mean feedback with its confidence interval;
     * per variant against the control Welch's t-test, Mann-Whitney U, Cohen's d and a verdict under
     * the configured gates, none before min_samples values on each side. Includes this sidecar's
     * records not yet written.
     * Reasons: INVALID_REQUEST (naming `tenant_id`, `experiment`, `start_time`, `end_time`; naming
     * `start_time` also when the range holds more than 250,000 calls),
     * EXPERIMENT_NOT_FOUND (NOT_FOUND, metadata `experiment`), STATS_UNAVAILABLE
     * (FAILED_PRECONDITION: the sidecar was installed without the `stats` extra).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetExperimentReportResponse getExperimentReport(io.orchestrator.sidecar.v1.GetExperimentReportRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetExperimentReportMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service ExperimentService.
   * <pre>
   * Experiments: feedback on finished calls, and the report comparing an experiment's variants.
   * Tenant-scoped: a caller scores and reads only the calls of a tenant its credential may act for.
   * Authentication and authorization reasons as in GenerationService. Both RPCs need the usage
   * ledger: LEDGER_DISABLED (FAILED_PRECONDITION) when settings.telemetry.ledger.backend is none,
   * LEDGER_UNAVAILABLE (UNAVAILABLE) when it cannot be read or written.
   * </pre>
   */
  public static final class ExperimentServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<ExperimentServiceBlockingStub> {
    private ExperimentServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ExperimentServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ExperimentServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores a score (and an optional label) on a finished call's usage record, where reports read
     * it. A call is scored once: the same score and label again succeed with already_recorded set
     * and change nothing; a different one is refused.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming `tenant_id`, `request_id`,
     * `score` or `label`), CALL_NOT_FOUND (NOT_FOUND, metadata `requestId`), FEEDBACK_EXISTS
     * (ALREADY_EXISTS: the call has another score).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.FeedbackResponse feedback(io.orchestrator.sidecar.v1.FeedbackRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getFeedbackMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reports an experiment over a time range for one tenant: per variant the calls, error rate,
     * latency percentiles, tokens, cost per call and mean feedback with its confidence interval;
     * per variant against the control Welch's t-test, Mann-Whitney U, Cohen's d and a verdict under
     * the configured gates, none before min_samples values on each side. Includes this sidecar's
     * records not yet written.
     * Reasons: INVALID_REQUEST (naming `tenant_id`, `experiment`, `start_time`, `end_time`; naming
     * `start_time` also when the range holds more than 250,000 calls),
     * EXPERIMENT_NOT_FOUND (NOT_FOUND, metadata `experiment`), STATS_UNAVAILABLE
     * (FAILED_PRECONDITION: the sidecar was installed without the `stats` extra).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetExperimentReportResponse getExperimentReport(io.orchestrator.sidecar.v1.GetExperimentReportRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetExperimentReportMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service ExperimentService.
   * <pre>
   * Experiments: feedback on finished calls, and the report comparing an experiment's variants.
   * Tenant-scoped: a caller scores and reads only the calls of a tenant its credential may act for.
   * Authentication and authorization reasons as in GenerationService. Both RPCs need the usage
   * ledger: LEDGER_DISABLED (FAILED_PRECONDITION) when settings.telemetry.ledger.backend is none,
   * LEDGER_UNAVAILABLE (UNAVAILABLE) when it cannot be read or written.
   * </pre>
   */
  public static final class ExperimentServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<ExperimentServiceFutureStub> {
    private ExperimentServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected ExperimentServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new ExperimentServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores a score (and an optional label) on a finished call's usage record, where reports read
     * it. A call is scored once: the same score and label again succeed with already_recorded set
     * and change nothing; a different one is refused.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming `tenant_id`, `request_id`,
     * `score` or `label`), CALL_NOT_FOUND (NOT_FOUND, metadata `requestId`), FEEDBACK_EXISTS
     * (ALREADY_EXISTS: the call has another score).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.FeedbackResponse> feedback(
        io.orchestrator.sidecar.v1.FeedbackRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getFeedbackMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Reports an experiment over a time range for one tenant: per variant the calls, error rate,
     * latency percentiles, tokens, cost per call and mean feedback with its confidence interval;
     * per variant against the control Welch's t-test, Mann-Whitney U, Cohen's d and a verdict under
     * the configured gates, none before min_samples values on each side. Includes this sidecar's
     * records not yet written.
     * Reasons: INVALID_REQUEST (naming `tenant_id`, `experiment`, `start_time`, `end_time`; naming
     * `start_time` also when the range holds more than 250,000 calls),
     * EXPERIMENT_NOT_FOUND (NOT_FOUND, metadata `experiment`), STATS_UNAVAILABLE
     * (FAILED_PRECONDITION: the sidecar was installed without the `stats` extra).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.GetExperimentReportResponse> getExperimentReport(
        io.orchestrator.sidecar.v1.GetExperimentReportRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetExperimentReportMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_FEEDBACK = 0;
  private static final int METHODID_GET_EXPERIMENT_REPORT = 1;

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
        case METHODID_FEEDBACK:
          serviceImpl.feedback((io.orchestrator.sidecar.v1.FeedbackRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.FeedbackResponse>) responseObserver);
          break;
        case METHODID_GET_EXPERIMENT_REPORT:
          serviceImpl.getExperimentReport((io.orchestrator.sidecar.v1.GetExperimentReportRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetExperimentReportResponse>) responseObserver);
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
          getFeedbackMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.FeedbackRequest,
              io.orchestrator.sidecar.v1.FeedbackResponse>(
                service, METHODID_FEEDBACK)))
        .addMethod(
          getGetExperimentReportMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.GetExperimentReportRequest,
              io.orchestrator.sidecar.v1.GetExperimentReportResponse>(
                service, METHODID_GET_EXPERIMENT_REPORT)))
        .build();
  }

  private static abstract class ExperimentServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    ExperimentServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.orchestrator.sidecar.v1.ExperimentServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("ExperimentService");
    }
  }

  private static final class ExperimentServiceFileDescriptorSupplier
      extends ExperimentServiceBaseDescriptorSupplier {
    ExperimentServiceFileDescriptorSupplier() {}
  }

  private static final class ExperimentServiceMethodDescriptorSupplier
      extends ExperimentServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    ExperimentServiceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (ExperimentServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new ExperimentServiceFileDescriptorSupplier())
              .addMethod(getFeedbackMethod())
              .addMethod(getGetExperimentReportMethod())
              .build();
        }
      }
    }
    return result;
  }
}
