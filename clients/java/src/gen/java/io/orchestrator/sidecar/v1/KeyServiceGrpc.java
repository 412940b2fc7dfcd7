package io.orchestrator.sidecar.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * The calling user's own provider keys, stored under envelope encryption. Every RPC is scoped to
 * the request's tenant_id and user_id. Authentication and authorization reasons as in
 * GenerationService.
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class KeyServiceGrpc {

  private KeyServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "orchestrator.v1.KeyService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.RegisterKeyRequest,
      io.orchestrator.sidecar.v1.RegisterKeyResponse> getRegisterKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "RegisterKey",
      requestType = io.orchestrator.sidecar.v1.RegisterKeyRequest.class,
      responseType = io.orchestrator.sidecar.v1.RegisterKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.RegisterKeyRequest,
      io.orchestrator.sidecar.v1.RegisterKeyResponse> getRegisterKeyMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.RegisterKeyRequest, io.orchestrator.sidecar.v1.RegisterKeyResponse> getRegisterKeyMethod;
    if ((getRegisterKeyMethod = KeyServiceGrpc.getRegisterKeyMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getRegisterKeyMethod = KeyServiceGrpc.getRegisterKeyMethod) == null) {
          KeyServiceGrpc.getRegisterKeyMethod = getRegisterKeyMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.RegisterKeyRequest, io.orchestrator.sidecar.v1.RegisterKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "RegisterKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.RegisterKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.RegisterKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("RegisterKey"))
              .build();
        }
      }
    }
    return getRegisterKeyMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListKeysRequest,
      io.orchestrator.sidecar.v1.ListKeysResponse> getListKeysMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListKeys",
      requestType = io.orchestrator.sidecar.v1.ListKeysRequest.class,
      responseType = io.orchestrator.sidecar.v1.ListKeysResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListKeysRequest,
      io.orchestrator.sidecar.v1.ListKeysResponse> getListKeysMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListKeysRequest, io.orchestrator.sidecar.v1.ListKeysResponse> getListKeysMethod;
    if ((getListKeysMethod = KeyServiceGrpc.getListKeysMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getListKeysMethod = KeyServiceGrpc.getListKeysMethod) == null) {
          KeyServiceGrpc.getListKeysMethod = getListKeysMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.ListKeysRequest, io.orchestrator.sidecar.v1.ListKeysResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListKeys"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListKeysRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListKeysResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("ListKeys"))
              .build();
        }
      }
    }
    return getListKeysMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.DeleteKeyRequest,
      io.orchestrator.sidecar.v1.DeleteKeyResponse> getDeleteKeyMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "DeleteKey",
      requestType = io.orchestrator.sidecar.v1.DeleteKeyRequest.class,
      responseType = io.orchestrator.sidecar.v1.DeleteKeyResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.DeleteKeyRequest,
      io.orchestrator.sidecar.v1.DeleteKeyResponse> getDeleteKeyMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.DeleteKeyRequest, io.orchestrator.sidecar.v1.DeleteKeyResponse> getDeleteKeyMethod;
    if ((getDeleteKeyMethod = KeyServiceGrpc.getDeleteKeyMethod) == null) {
      synchronized (KeyServiceGrpc.class) {
        if ((getDeleteKeyMethod = KeyServiceGrpc.getDeleteKeyMethod) == null) {
          KeyServiceGrpc.getDeleteKeyMethod = getDeleteKeyMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.DeleteKeyRequest, io.orchestrator.sidecar.v1.DeleteKeyResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "DeleteKey"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.DeleteKeyRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.DeleteKeyResponse.getDefaultInstance()))
              .setSchemaDescriptor(new KeyServiceMethodDescriptorSupplier("DeleteKey"))
              .build();
        }
      }
    }
    return getDeleteKeyMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static KeyServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<KeyServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<KeyServiceStub>() {
        @java.lang.Override
        public KeyServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new KeyServiceStub(channel, callOptions);
        }
      };
    return KeyServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static KeyServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<KeyServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<KeyServiceBlockingV2Stub>() {
        @java.lang.Override
        public KeyServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new KeyServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return KeyServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static KeyServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<KeyServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<KeyServiceBlockingStub>() {
        @java.lang.Override
        public KeyServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new KeyServiceBlockingStub(channel, callOptions);
        }
      };
    return KeyServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static KeyServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<KeyServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<KeyServiceFutureStub>() {
        @java.lang.Override
        public KeyServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new KeyServiceFutureStub(channel, callOptions);
        }
      };
    return KeyServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * The calling user's own provider keys, stored under envelope encryption. Every RPC is scoped to
   * the request's tenant_id and user_id. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Stores the user's provider key under envelope encryption and returns its reference.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED (FAILED_PRECONDITION: no key backend configured),
     * KEY_BACKEND_UNAVAILABLE (UNAVAILABLE, with RetryInfo), KEY_UNAVAILABLE (INTERNAL),
     * KEY_LIMIT_REACHED (RESOURCE_EXHAUSTED: the user keeps settings.keys.max_keys_per_user keys;
     * delete one or replace one by name), KEY_REGISTRATION_LIMIT_REACHED (RESOURCE_EXHAUSTED, with
     * RetryInfo: too many registrations by the user or the tenant in the window).
     * </pre>
     */
    default void registerKey(io.orchestrator.sidecar.v1.RegisterKeyRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.RegisterKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRegisterKeyMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists the user's keys, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    default void listKeys(io.orchestrator.sidecar.v1.ListKeysRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListKeysResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListKeysMethod(), responseObserver);
    }

    /**
     * <pre>
     * Deletes one of the user's keys.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    default void deleteKey(io.orchestrator.sidecar.v1.DeleteKeyRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.DeleteKeyResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDeleteKeyMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service KeyService.
   * <pre>
   * The calling user's own provider keys, stored under envelope encryption. Every RPC is scoped to
   * the request's tenant_id and user_id. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static abstract class KeyServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return KeyServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service KeyService.
   * <pre>
   * The calling user's own provider keys, stored under envelope encryption. Every RPC is scoped to
   * the request's tenant_id and user_id. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static final class KeyServiceStub
      extends io.grpc.stub.AbstractAsyncStub<KeyServiceStub> {
    private KeyServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected KeyServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new KeyServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores the user's provider key under envelope encryption and returns its reference.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED (FAILED_PRECONDITION: no key backend configured),
     * KEY_BACKEND_UNAVAILABLE (UNAVAILABLE, with RetryInfo), KEY_UNAVAILABLE (INTERNAL),
     * KEY_LIMIT_REACHED (RESOURCE_EXHAUSTED: the user keeps settings.keys.max_keys_per_user keys;
     * delete one or replace one by name), KEY_REGISTRATION_LIMIT_REACHED (RESOURCE_EXHAUSTED, with
     * RetryInfo: too many registrations by the user or the tenant in the window).
     * </pre>
     */
    public void registerKey(io.orchestrator.sidecar.v1.RegisterKeyRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.RegisterKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRegisterKeyMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists the user's keys, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public void listKeys(io.orchestrator.sidecar.v1.ListKeysRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListKeysResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListKeysMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Deletes one of the user's keys.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public void deleteKey(io.orchestrator.sidecar.v1.DeleteKeyRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.DeleteKeyResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDeleteKeyMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service KeyService.
   * <pre>
   * The calling user's own provider keys, stored under envelope encryption. Every RPC is scoped to
   * the request's tenant_id and user_id. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static final class KeyServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<KeyServiceBlockingV2Stub> {
    private KeyServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected KeyServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new KeyServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores the user's provider key under envelope encryption and returns its reference.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED (FAILED_PRECONDITION: no key backend configured),
     * KEY_BACKEND_UNAVAILABLE (UNAVAILABLE, with RetryInfo), KEY_UNAVAILABLE (INTERNAL),
     * KEY_LIMIT_REACHED (RESOURCE_EXHAUSTED: the user keeps settings.keys.max_keys_per_user keys;
     * delete one or replace one by name), KEY_REGISTRATION_LIMIT_REACHED (RESOURCE_EXHAUSTED, with
     * RetryInfo: too many registrations by the user or the tenant in the window).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.RegisterKeyResponse registerKey(io.orchestrator.sidecar.v1.RegisterKeyRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getRegisterKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the user's keys, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListKeysResponse listKeys(io.orchestrator.sidecar.v1.ListKeysRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes one of the user's keys.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.DeleteKeyResponse deleteKey(io.orchestrator.sidecar.v1.DeleteKeyRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getDeleteKeyMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service KeyService.
   * <pre>
   * The calling user's own provider keys, stored under envelope encryption. Every RPC is scoped to
   * the request's tenant_id and user_id. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static final class KeyServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<KeyServiceBlockingStub> {
    private KeyServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected KeyServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new KeyServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores the user's provider key under envelope encryption and returns its reference.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED (FAILED_PRECONDITION: no key backend configured),
     * KEY_BACKEND_UNAVAILABLE (UNAVAILABLE, with RetryInfo), KEY_UNAVAILABLE (INTERNAL),
     * KEY_LIMIT_REACHED (RESOURCE_EXHAUSTED: the user keeps settings.keys.max_keys_per_user keys;
     * delete one or replace one by name), KEY_REGISTRATION_LIMIT_REACHED (RESOURCE_EXHAUSTED, with
     * RetryInfo: too many registrations by the user or the tenant in the window).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.RegisterKeyResponse registerKey(io.orchestrator.sidecar.v1.RegisterKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRegisterKeyMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the user's keys, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListKeysResponse listKeys(io.orchestrator.sidecar.v1.ListKeysRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListKeysMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Deletes one of the user's keys.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.DeleteKeyResponse deleteKey(io.orchestrator.sidecar.v1.DeleteKeyRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDeleteKeyMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service KeyService.
   * <pre>
   * The calling user's own provider keys, stored under envelope encryption. Every RPC is scoped to
   * the request's tenant_id and user_id. Authentication and authorization reasons as in
   * GenerationService.
   * </pre>
   */
  public static final class KeyServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<KeyServiceFutureStub> {
    private KeyServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected KeyServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new KeyServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Stores the user's provider key under envelope encryption and returns its reference.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED (FAILED_PRECONDITION: no key backend configured),
     * KEY_BACKEND_UNAVAILABLE (UNAVAILABLE, with RetryInfo), KEY_UNAVAILABLE (INTERNAL),
     * KEY_LIMIT_REACHED (RESOURCE_EXHAUSTED: the user keeps settings.keys.max_keys_per_user keys;
     * delete one or replace one by name), KEY_REGISTRATION_LIMIT_REACHED (RESOURCE_EXHAUSTED, with
     * RetryInfo: too many registrations by the user or the tenant in the window).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.RegisterKeyResponse> registerKey(
        io.orchestrator.sidecar.v1.RegisterKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRegisterKeyMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists the user's keys, a page at a time: metadata only, never a key.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.ListKeysResponse> listKeys(
        io.orchestrator.sidecar.v1.ListKeysRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListKeysMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Deletes one of the user's keys.
     * Reasons: INVALID_REQUEST, KEYS_DISABLED.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.DeleteKeyResponse> deleteKey(
        io.orchestrator.sidecar.v1.DeleteKeyRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDeleteKeyMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_REGISTER_KEY = 0;
  private static final int METHODID_LIST_KEYS = 1;
  private static final int METHODID_DELETE_KEY = 2;

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
        case METHODID_REGISTER_KEY:
          serviceImpl.registerKey((io.orchestrator.sidecar.v1.RegisterKeyRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.RegisterKeyResponse>) responseObserver);
          break;
        case METHODID_LIST_KEYS:
          serviceImpl.listKeys((io.orchestrator.sidecar.v1.ListKeysRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListKeysResponse>) responseObserver);
          break;
        case METHODID_DELETE_KEY:
          serviceImpl.deleteKey((io.orchestrator.sidecar.v1.DeleteKeyRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.DeleteKeyResponse>) responseObserver);
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
          getRegisterKeyMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.RegisterKeyRequest,
              io.orchestrator.sidecar.v1.RegisterKeyResponse>(
                service, METHODID_REGISTER_KEY)))
        .addMethod(
          getListKeysMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.ListKeysRequest,
              io.orchestrator.sidecar.v1.ListKeysResponse>(
                service, METHODID_LIST_KEYS)))
        .addMethod(
          getDeleteKeyMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.DeleteKeyRequest,
              io.orchestrator.sidecar.v1.DeleteKeyResponse>(
                service, METHODID_DELETE_KEY)))
        .build();
  }

  private static abstract class KeyServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    KeyServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.orchestrator.sidecar.v1.KeyServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("KeyService");
    }
  }

  private static final class KeyServiceFileDescriptorSupplier
      extends KeyServiceBaseDescriptorSupplier {
    KeyServiceFileDescriptorSupplier() {}
  }

  private static final class KeyServiceMethodDescriptorSupplier
      extends KeyServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    KeyServiceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (KeyServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new KeyServiceFileDescriptorSupplier())
              .addMethod(getRegisterKeyMethod())
              .addMethod(getListKeysMethod())
              .addMethod(getDeleteKeyMethod())
              .build();
        }
      }
    }
    return result;
  }
}
