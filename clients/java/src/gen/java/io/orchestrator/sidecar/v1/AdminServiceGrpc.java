package io.orchestrator.sidecar.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Tenant-wide operations for operators. Off unless settings.admin enables it, on the main listener
 * or on its own Unix socket. Authentication and authorization reasons as in GenerationService; a
 * credential limited to some tenants may call only the RPCs scoped to one of them.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class AdminServiceGrpc {

  private AdminServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "orchestrator.v1.AdminService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.RotateKeysRequest,
      io.orchestrator.sidecar.v1.RotateKeysResponse> getRotateKeysMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RotateKeys",
      requestType = io.orchestrator.sidecar.v1.RotateKeysRequest.class,
      responseType = io.orchestrator.sidecar.v1.RotateKeysResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.RotateKeysRequest,
      io.orchestrator.sidecar.v1.RotateKeysResponse> getRotateKeysMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.RotateKeysRequest, io.orchestrator.sidecar.v1.RotateKeysResponse> getRotateKeysMethod;
    if ((getRotateKeysMethod = AdminServiceGrpc.getRotateKeysMethod) == null) {
      synchronized (AdminServiceGrpc.class) {
        if ((getRotateKeysMethod = AdminServiceGrpc.getRotateKeysMethod) == null) {
          AdminServiceGrpc.getRotateKeysMethod = getRotateKeysMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.RotateKeysRequest, io.orchestrator.sidecar.v1.RotateKeysResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RotateKeys"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.RotateKeysRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.RotateKeysResponse.getDefaultInstance()))
              .setSchemaDescriptor(new AdminServiceMethodDescriptorSupplier("RotateKeys"))
              .build();
        }
      }
    }
    return getRotateKeysMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListTenantKeysRequest,
      io.orchestrator.sidecar.v1.ListTenantKeysResponse> getListTenantKeysMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListTenantKeys",
      requestType = io.orchestrator.sidecar.v1.ListTenantKeysRequest.class,
      responseType = io.orchestrator.sidecar.v1.ListTenantKeysResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListTenantKeysRequest,
      io.orchestrator.sidecar.v1.ListTenantKeysResponse> getListTenantKeysMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListTenantKeysRequest, io.orchestrator.sidecar.v1.ListTenantKeysResponse> getListTenantKeysMethod;
    if ((getListTenantKeysMethod = AdminServiceGrpc.getListTenantKeysMethod) == null) {
      synchronized (AdminServiceGrpc.class) {
        if ((getListTenantKeysMethod = AdminServiceGrpc.getListTenantKeysMethod) == null) {
          AdminServiceGrpc.getListTenantKeysMethod = getListTenantKeysMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.ListTenantKeysRequest, io.orchestrator.sidecar.v1.ListTenantKeysResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListTenantKeys"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListTenantKeysRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListTenantKeysResponse.getDefaultInstance()))
              .setSchemaDescriptor(new AdminServiceMethodDescriptorSupplier("ListTenantKeys"))
              .build();
        }
      }
    }
    return getListTenantKeysMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetUsageRequest,
      io.orchestrator.sidecar.v1.GetUsageResponse> getGetUsageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetUsage",
      requestType = io.orchestrator.sidecar.v1.GetUsageRequest.class,
      responseType = io.orchestrator.sidecar.v1.GetUsageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetUsageRequest,
      io.orchestrator.sidecar.v1.GetUsageResponse> getGetUsageMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetUsageRequest, io.orchestrator.sidecar.v1.GetUsageResponse> getGetUsageMethod;
    if ((getGetUsageMethod = AdminServiceGrpc.getGetUsageMethod) == null) {
      synchronized (AdminServiceGrpc.class) {
        if ((getGetUsageMethod = AdminServiceGrpc.getGetUsageMethod) == null) {
          AdminServiceGrpc.getGetUsageMethod = getGetUsageMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.GetUsageRequest, io.orchestrator.sidecar.v1.GetUsageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetUsage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetUsageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetUsageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new AdminServiceMethodDescriptorSupplier("GetUsage"))
              .build();
        }
      }
    }
    return getGetUsageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest,
      io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse> getGetExperimentReportAcrossTenantsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetExperimentReportAcrossTenants",
      requestType = io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest.class,
      responseType = io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest,
      io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse> getGetExperimentReportAcrossTenantsMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest, io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse> getGetExperimentReportAcrossTenantsMethod;
    if ((getGetExperimentReportAcrossTenantsMethod = AdminServiceGrpc.getGetExperimentReportAcrossTenantsMethod) == null) {
      synchronized (AdminServiceGrpc.class) {
        if ((getGetExperimentReportAcrossTenantsMethod = AdminServiceGrpc.getGetExperimentReportAcrossTenantsMethod) == null) {
          AdminServiceGrpc.getGetExperimentReportAcrossTenantsMethod = getGetExperimentReportAcrossTenantsMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest, io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetExperimentReportAcrossTenants"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new AdminServiceMethodDescriptorSupplier("GetExperimentReportAcrossTenants"))
              .build();
        }
      }
    }
    return getGetExperimentReportAcrossTenantsMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static AdminServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<AdminServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<AdminServiceStub>() {
        @java.lang.Override
        public AdminServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new AdminServiceStub(channel, callOptions);
        }
      };
    return AdminServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static AdminServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<AdminServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<AdminServiceBlockingV2Stub>() {
        @java.lang.Override
        public AdminServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new AdminServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return AdminServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static AdminServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<AdminServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<AdminServiceBlockingStub>() {
        @java.lang.Override
        public AdminServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new AdminServiceBlockingStub(channel, callOptions);
        }
      };
    return AdminServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static AdminServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<AdminServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<AdminServiceFutureStub>() {
        @java.lang.Override
        public AdminServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new AdminServiceFutureStub(channel, callOptions);
        }
      };
    return AdminServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Tenant-wide operations for operators. Off unless settings.admin enables it, on the main listener
   * or on its own Unix socket. Authentication and authorization reasons as in GenerationService; a
   * credential limited to some tenants may call only the RPCs scoped to one of them.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Rewraps every stored key record to the backend's current key version. No provider key is
     * decrypted. Prefer the one-off `sidecar keys rotate` job, which is paced and safe to run once
     * per cluster.
     * Reasons: KEYS_DISABLED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * ROTATION_IN_PROGRESS (ABORTED: another rotation holds the key store's lock).
     * </pre>
     */
    default void rotateKeys(io.orchestrator.sidecar.v1.RotateKeysRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.RotateKeysResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRotateKeysMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists a tenant's keys across its users, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    default void listTenantKeys(io.orchestrator.sidecar.v1.ListTenantKeysRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListTenantKeysResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListTenantKeysMethod(), responseObserver);
    }

    /**
     * <pre>
     * Aggregates the usage ledger for a tenant (optionally one user) over a time range: cost,
     * tokens, request and error counts and latency percentiles, grouped by user, model, route or
     * day. Includes this sidecar's records not yet written.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * LEDGER_DISABLED (FAILED_PRECONDITION: settings.telemetry.ledger.backend is none),
     * LEDGER_UNAVAILABLE (UNAVAILABLE: the ledger database cannot be read; retry).
     * </pre>
     */
    default void getUsage(io.orchestrator.sidecar.v1.GetUsageRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetUsageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetUsageMethod(), responseObserver);
    }

    /**
     * <pre>
     * Reports an experiment as ExperimentService.GetExperimentReport does, over every tenant's calls.
     * Only a credential allowed every tenant may call it (TENANT_NOT_ALLOWED otherwise).
     * Reasons: those of ExperimentService.GetExperimentReport (naming `experiment`, `start_time`,
     * `end_time`).
     * </pre>
     */
    default void getExperimentReportAcrossTenants(io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetExperimentReportAcrossTenantsMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service AdminService.
   * <pre>
   * Tenant-wide operations for operators. Off unless settings.admin enables it, on the main listener
   * or on its own Unix socket. Authentication and authorization reasons as in GenerationService; a
   * credential limited to some tenants may call only the RPCs scoped to one of them.
   * </pre>
   */
  public static abstract class AdminServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return AdminServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service AdminService.
   * <pre>
   * Tenant-wide operations for operators. Off unless settings.admin enables it, on the main listener
   * or on its own Unix socket. Authentication and authorization reasons as in GenerationService; a
   * credential limited to some tenants may call only the RPCs scoped to one of them.
   * </pre>
   */
  public static final class AdminServiceStub
      extends io.grpc.stub.AbstractAsyncStub<AdminServiceStub> {
    private AdminServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected AdminServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new AdminServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Rewraps every stored key record to the backend's current key version. No provider key is
     * decrypted. Prefer the one-off `sidecar keys rotate` job, which is paced and safe to run once
     * per cluster.
     * Reasons: KEYS_DISABLED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * ROTATION_IN_PROGRESS (ABORTED: another rotation holds the key store's lock).
     * </pre>
     */
    public void rotateKeys(io.orchestrator.sidecar.v1.RotateKeysRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.RotateKeysResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRotateKeysMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists a tenant's keys across its users, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public void listTenantKeys(io.orchestrator.sidecar.v1.ListTenantKeysRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListTenantKeysResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListTenantKeysMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Aggregates the usage ledger for a tenant (optionally one user) over a time range: cost,
     * tokens, request and error counts and latency percentiles, grouped by user, model, route or
     * day. Includes this sidecar's records not yet written.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * LEDGER_DISABLED (FAILED_PRECONDITION: settings.telemetry.ledger.backend is none),
     * LEDGER_UNAVAILABLE (UNAVAILABLE: the ledger database cannot be read; retry).
     * </pre>
     */
    public void getUsage(io.orchestrator.sidecar.v1.GetUsageRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetUsageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetUsageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Reports an experiment as ExperimentService.GetExperimentReport does, over every tenant's calls.
     * Only a credential allowed every tenant may call it (TENANT_NOT_ALLOWED otherwise).
     * Reasons: those of ExperimentService.GetExperimentReport (naming `experiment`, `start_time`,
     * `end_time`).
     * </pre>
     */
    public void getExperimentReportAcrossTenants(io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetExperimentReportAcrossTenantsMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service AdminService.
   * <pre>
   * Tenant-wide operations for operators. Off unless settings.admin enables it, on the main listener
   * or on its own Unix socket. Authentication and authorization reasons as in GenerationService; a
   * credential limited to some tenants may call only the RPCs scoped to one of them.
   * </pre>
   */
  public static final class AdminServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<AdminServiceBlockingV2Stub> {
    private AdminServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected AdminServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new AdminServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Rewraps every stored key record to the backend's current key version. No provider key is
     * decrypted. Prefer the one-off `sidecar keys rotate` job, which is paced and safe to run once
     * per cluster.
     * Reasons: KEYS_DISABLED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * ROTATION_IN_PROGRESS (ABORTED: another rotation holds the key store's lock).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.RotateKeysResponse rotateKeys(io.orchestrator.sidecar.v1.RotateKeysRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRotateKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists a tenant's keys across its users, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListTenantKeysResponse listTenantKeys(io.orchestrator.sidecar.v1.ListTenantKeysRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListTenantKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Aggregates the usage ledger for a tenant (optionally one user) over a time range: cost,
     * tokens, request and error counts and latency percentiles, grouped by user, model, route or
     * day. Includes this sidecar's records not yet written.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * LEDGER_DISABLED (FAILED_PRECONDITION: settings.telemetry.ledger.backend is none),
     * LEDGER_UNAVAILABLE (UNAVAILABLE: the ledger database cannot be read; retry).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetUsageResponse getUsage(io.orchestrator.sidecar.v1.GetUsageRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetUsageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reports an experiment as ExperimentService.GetExperimentReport does, over every tenant's calls.
     * Only a credential allowed every tenant may call it (TENANT_NOT_ALLOWED otherwise).
     * Reasons: those of ExperimentService.GetExperimentReport (naming `experiment`, `start_time`,
     * `end_time`).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse getExperimentReportAcrossTenants(io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGetExperimentReportAcrossTenantsMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service AdminService.
   * <pre>
   * Tenant-wide operations for operators. Off unless settings.admin enables it, on the main listener
   * or on its own Unix socket. Authentication and authorization reasons as in GenerationService; a
   * credential limited to some tenants may call only the RPCs scoped to one of them.
   * </pre>
   */
  public static final class AdminServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<AdminServiceBlockingStub> {
    private AdminServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected AdminServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new AdminServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Rewraps every stored key record to the backend's current key version. No provider key is
     * decrypted. Prefer the one-off `sidecar keys rotate` job, which is paced and safe to run once
     * per cluster.
     * Reasons: KEYS_DISABLED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * ROTATION_IN_PROGRESS (ABORTED: another rotation holds the key store's lock).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.RotateKeysResponse rotateKeys(io.orchestrator.sidecar.v1.RotateKeysRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRotateKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists a tenant's keys across its users, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListTenantKeysResponse listTenantKeys(io.orchestrator.sidecar.v1.ListTenantKeysRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListTenantKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Aggregates the usage ledger for a tenant (optionally one user) over a time range: cost,
     * tokens, request and error counts and latency percentiles, grouped by user, model, route or
     * day. Includes this sidecar's records not yet written.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * LEDGER_DISABLED (FAILED_PRECONDITION: settings.telemetry.ledger.backend is none),
     * LEDGER_UNAVAILABLE (UNAVAILABLE: the ledger database cannot be read; retry).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetUsageResponse getUsage(io.orchestrator.sidecar.v1.GetUsageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetUsageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Reports an experiment as ExperimentService.GetExperimentReport does, over every tenant's calls.
     * Only a credential allowed every tenant may call it (TENANT_NOT_ALLOWED otherwise).
     * Reasons: those of ExperimentService.GetExperimentReport (naming `experiment`, `start_time`,
     * `end_time`).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse getExperimentReportAcrossTenants(io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetExperimentReportAcrossTenantsMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service AdminService.
   * <pre>
   * Tenant-wide operations for operators. Off unless settings.admin enables it, on the main listener
   * or on its own Unix socket. Authentication and authorization reasons as in GenerationService; a
   * credential limited to some tenants may call only the RPCs scoped to one of them.
   * </pre>
   */
  public static final class AdminServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<AdminServiceFutureStub> {
    private AdminServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected AdminServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new AdminServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Rewraps every stored key record to the backend's current key version. No provider key is
     * decrypted. Prefer the one-off `sidecar keys rotate` job, which is paced and safe to run once
     * per cluster.
     * Reasons: KEYS_DISABLED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * ROTATION_IN_PROGRESS (ABORTED: another rotation holds the key store's lock).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.RotateKeysResponse> rotateKeys(
        io.orchestrator.sidecar.v1.RotateKeysRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRotateKeysMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists a tenant's keys across its users, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.ListTenantKeysResponse> listTenantKeys(
        io.orchestrator.sidecar.v1.ListTenantKeysRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListTenantKeysMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Aggregates the usage ledger for a tenant (optionally one user) over a time range: cost,
     * tokens, request and error counts and latency percentiles, grouped by user, model, route or
     * day. Includes this sidecar's records not yet written.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * LEDGER_DISABLED (FAILED_PRECONDITION: settings.telemetry.ledger.backend is none),
     * LEDGER_UNAVAILABLE (UNAVAILABLE: the ledger database cannot be read; retry).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.GetUsageResponse> getUsage(
        io.orchestrator.sidecar.v1.GetUsageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetUsageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Reports an experiment as ExperimentService.GetExperimentReport does, over every tenant's calls.
     * Only a credential allowed every tenant may call it (TENANT_NOT_ALLOWED otherwise).
     * Reasons: those of ExperimentService.GetExperimentReport (naming `experiment`, `start_time`,
     * `end_time`).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse> getExperimentReportAcrossTenants(
        io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetExperimentReportAcrossTenantsMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_ROTATE_KEYS = 0;
  private static final int METHODID_LIST_TENANT_KEYS = 1;
  private static final int METHODID_GET_USAGE = 2;
  private static final int METHODID_GET_EXPERIMENT_REPORT_ACROSS_TENANTS = 3;

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
        case METHODID_ROTATE_KEYS:
          serviceImpl.rotateKeys((io.orchestrator.sidecar.v1.RotateKeysRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.RotateKeysResponse>) responseObserver);
          break;
        case METHODID_LIST_TENANT_KEYS:
          serviceImpl.listTenantKeys((io.orchestrator.sidecar.v1.ListTenantKeysRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListTenantKeysResponse>) responseObserver);
          break;
        case METHODID_GET_USAGE:
          serviceImpl.getUsage((io.orchestrator.sidecar.v1.GetUsageRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetUsageResponse>) responseObserver);
          break;
        case METHODID_GET_EXPERIMENT_REPORT_ACROSS_TENANTS:
          serviceImpl.getExperimentReportAcrossTenants((io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse>) responseObserver);
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
          getRotateKeysMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.RotateKeysRequest,
              io.orchestrator.sidecar.v1.RotateKeysResponse>(
                service, METHODID_ROTATE_KEYS)))
        .addMethod(
          getListTenantKeysMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.ListTenantKeysRequest,
              io.orchestrator.sidecar.v1.ListTenantKeysResponse>(
                service, METHODID_LIST_TENANT_KEYS)))
        .addMethod(
          getGetUsageMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.GetUsageRequest,
              io.orchestrator.sidecar.v1.GetUsageResponse>(
                service, METHODID_GET_USAGE)))
        .addMethod(
          getGetExperimentReportAcrossTenantsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsRequest,
              io.orchestrator.sidecar.v1.GetExperimentReportAcrossTenantsResponse>(
                service, METHODID_GET_EXPERIMENT_REPORT_ACROSS_TENANTS)))
        .build();
  }

  private static abstract class AdminServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    AdminServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.orchestrator.sidecar.v1.AdminServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("AdminService");
    }
  }

  private static final class AdminServiceFileDescriptorSupplier
      extends AdminServiceBaseDescriptorSupplier {
    AdminServiceFileDescriptorSupplier() {}
  }

  private static final class AdminServiceMethodDescriptorSupplier
      extends AdminServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    AdminServiceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (AdminServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new AdminServiceFileDescriptorSupplier())
              .addMethod(getRotateKeysMethod())
              .addMethod(getListTenantKeysMethod())
              .addMethod(getGetUsageMethod())
              .addMethod(getGetExperimentReportAcrossTenantsMethod())
              .build();
        }
      }
    }
    return result;
  }
}
