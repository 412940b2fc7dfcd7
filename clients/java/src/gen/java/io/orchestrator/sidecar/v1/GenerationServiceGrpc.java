package io.orchestrator.sidecar.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * Generation: the data plane. Applications send conversations and get answers.
 * Errors carry a google.rpc.Status in `grpc-status-details-bin` with exactly one
 * google.rpc.ErrorInfo (domain "orchestrator.sidecar"); its `reason` and metadata keys are API.
 * Every RPC of every service may return UNAUTHENTICATED (MISSING_CREDENTIALS, INVALID_CREDENTIALS)
 * and PERMISSION_DENIED (METHOD_NOT_ALLOWED: the credential may not call this method;
 * TENANT_NOT_ALLOWED: it may not act for the request's tenant), MALFORMED_REQUEST
 * (INVALID_ARGUMENT: the bytes are not a valid request message, or a string field is not UTF-8;
 * BadRequest names the field when the wire format can be walked to it), REQUEST_TOO_COMPLEX
 * (INVALID_ARGUMENT: more elements than the parser allows in one request) and SIDECAR_DRAINING
 * (UNAVAILABLE: the sidecar is shutting down; retry, another process will answer).
 * </pre>
 */
@io.grpc.stub.annotations.GrpcGenerated
public final class GenerationServiceGrpc {

  private GenerationServiceGrpc() {}

  public static final java.lang.String SERVICE_NAME = "orchestrator.v1.GenerationService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GenerateRequest,
      io.orchestrator.sidecar.v1.GenerateResponse> getGenerateMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Generate",
      requestType = io.orchestrator.sidecar.v1.GenerateRequest.class,
      responseType = io.orchestrator.sidecar.v1.GenerateResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GenerateRequest,
      io.orchestrator.sidecar.v1.GenerateResponse> getGenerateMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.GenerateRequest, io.orchestrator.sidecar.v1.GenerateResponse> getGenerateMethod;
    if ((getGenerateMethod = GenerationServiceGrpc.getGenerateMethod) == null) {
      synchronized (GenerationServiceGrpc.class) {
        if ((getGenerateMethod = GenerationServiceGrpc.getGenerateMethod) == null) {
          GenerationServiceGrpc.getGenerateMethod = getGenerateMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.GenerateRequest, io.orchestrator.sidecar.v1.GenerateResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Generate"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GenerateRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.GenerateResponse.getDefaultInstance()))
              .setSchemaDescriptor(new GenerationServiceMethodDescriptorSupplier("Generate"))
              .build();
        }
      }
    }
    return getGenerateMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.StreamGenerateRequest,
      io.orchestrator.sidecar.v1.StreamGenerateResponse> getStreamGenerateMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "StreamGenerate",
      requestType = io.orchestrator.sidecar.v1.StreamGenerateRequest.class,
      responseType = io.orchestrator.sidecar.v1.StreamGenerateResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.StreamGenerateRequest,
      io.orchestrator.sidecar.v1.StreamGenerateResponse> getStreamGenerateMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.StreamGenerateRequest, io.orchestrator.sidecar.v1.StreamGenerateResponse> getStreamGenerateMethod;
    if ((getStreamGenerateMethod = GenerationServiceGrpc.getStreamGenerateMethod) == null) {
      synchronized (GenerationServiceGrpc.class) {
        if ((getStreamGenerateMethod = GenerationServiceGrpc.getStreamGenerateMethod) == null) {
          GenerationServiceGrpc.getStreamGenerateMethod = getStreamGenerateMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.StreamGenerateRequest, io.orchestrator.sidecar.v1.StreamGenerateResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "StreamGenerate"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.StreamGenerateRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.StreamGenerateResponse.getDefaultInstance()))
              .setSchemaDescriptor(new GenerationServiceMethodDescriptorSupplier("StreamGenerate"))
              .build();
        }
      }
    }
    return getStreamGenerateMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListModelsRequest,
      io.orchestrator.sidecar.v1.ListModelsResponse> getListModelsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListModels",
      requestType = io.orchestrator.sidecar.v1.ListModelsRequest.class,
      responseType = io.orchestrator.sidecar.v1.ListModelsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListModelsRequest,
      io.orchestrator.sidecar.v1.ListModelsResponse> getListModelsMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.ListModelsRequest, io.orchestrator.sidecar.v1.ListModelsResponse> getListModelsMethod;
    if ((getListModelsMethod = GenerationServiceGrpc.getListModelsMethod) == null) {
      synchronized (GenerationServiceGrpc.class) {
        if ((getListModelsMethod = GenerationServiceGrpc.getListModelsMethod) == null) {
          GenerationServiceGrpc.getListModelsMethod = getListModelsMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.ListModelsRequest, io.orchestrator.sidecar.v1.ListModelsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListModels"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListModelsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.ListModelsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new GenerationServiceMethodDescriptorSupplier("ListModels"))
              .build();
        }
      }
    }
    return getListModelsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.EmbedRequest,
      io.orchestrator.sidecar.v1.EmbedResponse> getEmbedMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Embed",
      requestType = io.orchestrator.sidecar.v1.EmbedRequest.class,
      responseType = io.orchestrator.sidecar.v1.EmbedResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.EmbedRequest,
      io.orchestrator.sidecar.v1.EmbedResponse> getEmbedMethod() {
    io.grpc.MethodDescriptor<io.orchestrator.sidecar.v1.EmbedRequest, io.orchestrator.sidecar.v1.EmbedResponse> getEmbedMethod;
    if ((getEmbedMethod = GenerationServiceGrpc.getEmbedMethod) == null) {
      synchronized (GenerationServiceGrpc.class) {
        if ((getEmbedMethod = GenerationServiceGrpc.getEmbedMethod) == null) {
          GenerationServiceGrpc.getEmbedMethod = getEmbedMethod =
              io.grpc.MethodDescriptor.<io.orchestrator.sidecar.v1.EmbedRequest, io.orchestrator.sidecar.v1.EmbedResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Embed"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.EmbedRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.orchestrator.sidecar.v1.EmbedResponse.getDefaultInstance()))
              .setSchemaDescriptor(new GenerationServiceMethodDescriptorSupplier("Embed"))
              .build();
        }
      }
    }
    return getEmbedMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static GenerationServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<GenerationServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<GenerationServiceStub>() {
        @java.lang.Override
        public GenerationServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new GenerationServiceStub(channel, callOptions);
        }
      };
    return GenerationServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports all types of calls on the service
   */
  public static GenerationServiceBlockingV2Stub newBlockingV2Stub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<GenerationServiceBlockingV2Stub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<GenerationServiceBlockingV2Stub>() {
        @java.lang.Override
        public GenerationServiceBlockingV2Stub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new GenerationServiceBlockingV2Stub(channel, callOptions);
        }
      };
    return GenerationServiceBlockingV2Stub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static GenerationServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<GenerationServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<GenerationServiceBlockingStub>() {
        @java.lang.Override
        public GenerationServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new GenerationServiceBlockingStub(channel, callOptions);
        }
      };
    return GenerationServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static GenerationServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<GenerationServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<GenerationServiceFutureStub>() {
        @java.lang.Override
        public GenerationServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new GenerationServiceFutureStub(channel, callOptions);
        }
      };
    return GenerationServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * Generation: the data plane. Applications send conversations and get answers.
   * Errors carry a google.rpc.Status in `grpc-status-details-bin` with exactly one
   * google.rpc.ErrorInfo (domain "orchestrator.sidecar"); its `reason` and metadata keys are API.
   * Every RPC of every service may return UNAUTHENTICATED (MISSING_CREDENTIALS, INVALID_CREDENTIALS)
   * and PERMISSION_DENIED (METHOD_NOT_ALLOWED: the credential may not call this method;
   * TENANT_NOT_ALLOWED: it may not act for the request's tenant), MALFORMED_REQUEST
   * (INVALID_ARGUMENT: the bytes are not a valid request message, or a string field is not UTF-8;
   * BadRequest names the field when the wire format can be walked to it), REQUEST_TOO_COMPLEX
   * (INVALID_ARGUMENT: more elements than the parser allows in one request) and SIDECAR_DRAINING
   * (UNAVAILABLE: the sidecar is shutting down; retry, another process will answer).
   * </pre>
   */
  public interface AsyncService {

    /**
     * <pre>
     * Generates a complete answer.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT: another request already used this tenant's
     * request_id within the window), CONTEXT_TOO_LONG (INVALID_ARGUMENT, BadRequest on
     * `input.messages`), MODEL_NOT_FOUND (NOT_FOUND), MODEL_NOT_ALLOWED (PERMISSION_DENIED),
     * NO_CAPABLE_DEPLOYMENT (FAILED_PRECONDITION: no deployment of the route it may use takes the
     * call's tools, schema, images, size or reasoning; metadata `missing` says what each lacks),
     * PROVIDERS_UNAVAILABLE (UNAVAILABLE, with RetryInfo when known), PROVIDER_REJECTED
     * (INVALID_ARGUMENT), DEADLINE_EXCEEDED, PROVIDER_AUTH_FAILED (INTERNAL), INTERNAL.
     * User keys: KEY_CONTEXT_MISMATCH (PERMISSION_DENIED), INVALID_KEY_ENVELOPE (INVALID_ARGUMENT),
     * USER_KEY_REQUIRED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * KEY_UNAVAILABLE (INTERNAL), KEY_RECORD_CORRUPT (FAILED_PRECONDITION: the stored or inline
     * envelope does not open), KEY_FAILURE_LIMIT_REACHED (RESOURCE_EXHAUSTED, with RetryInfo: the
     * tenant's inline envelopes failed too often in the window), USER_KEY_REJECTED (PERMISSION_DENIED:
     * the provider refused the caller's own key), USER_KEY_RATE_LIMITED
     * (RESOURCE_EXHAUSTED: the provider rate-limited the caller's own key).
     * Admission: OVERLOADED (UNAVAILABLE, with RetryInfo: the sidecar's admission queue is full or the
     * call waited its limit). Personas and memory: PERSONA_NOT_FOUND (INVALID_ARGUMENT),
     * PERSONA_NOT_ALLOWED (PERMISSION_DENIED), SESSION_STORE_UNAVAILABLE (UNAVAILABLE). Quotas
     * (RESOURCE_EXHAUSTED, with QuotaFailure, RetryInfo and metadata `limit`, `metric`, `window`,
     * `scope`): RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED, COST_QUOTA_EXCEEDED,
     * CONCURRENCY_LIMITED; QUOTA_UNAVAILABLE (UNAVAILABLE) when a fail_closed store is unreachable.
     * IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE) when a shared idempotency store is unreachable.
     * </pre>
     */
    default void generate(io.orchestrator.sidecar.v1.GenerateRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GenerateResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGenerateMethod(), responseObserver);
    }

    /**
     * <pre>
     * Generates an answer as a stream of deltas followed by one result.
     * Reasons: those of Generate except IDEMPOTENCY_KEY_REUSED and IDEMPOTENCY_STORE_UNAVAILABLE
     * (a stream is never replayed), plus STREAM_INTERRUPTED (UNAVAILABLE) when the upstream fails
     * after the first delta was sent; its trailing metadata carries the partial usage. A stream that
     * ends without a result has failed. CALLER_NOT_READING (DEADLINE_EXCEEDED) when the caller read
     * nothing while one message waited settings.stream_write_timeout_seconds to be sent.
     * </pre>
     */
    default void streamGenerate(io.orchestrator.sidecar.v1.StreamGenerateRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.StreamGenerateResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getStreamGenerateMethod(), responseObserver);
    }

    /**
     * <pre>
     * Lists the route aliases, their deployments, capabilities and prices, a page at a time.
     * Reasons: INVALID_REQUEST (page_size, page_token).
     * </pre>
     */
    default void listModels(io.orchestrator.sidecar.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListModelsMethod(), responseObserver);
    }

    /**
     * <pre>
     * Embeds a batch of texts: one vector per text, through the embedding routes (the local model by
     * default), each text first looked up in the exact embedding cache. Charged to the caller's
     * quota like Generate (one request, the texts' tokens, the cost).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field: `tenant_id`,
     * `user_id`, `request_id`, `route`, `metadata[...]`, `texts`, `texts[i]`; `texts` too when the
     * reply, texts x dimensions, would exceed embeddings.max_reply_bytes: nothing charged), PROVIDERS_UNAVAILABLE
     * (UNAVAILABLE: every deployment of the route failed or has its circuit open), DEADLINE_EXCEEDED,
     * INTERNAL. Quotas as in Generate: RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED,
     * COST_QUOTA_EXCEEDED (RESOURCE_EXHAUSTED, with QuotaFailure and RetryInfo), QUOTA_UNAVAILABLE
     * (UNAVAILABLE). Idempotent retries as in Generate: IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT naming
     * `request_id`), IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE).
     * </pre>
     */
    default void embed(io.orchestrator.sidecar.v1.EmbedRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.EmbedResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getEmbedMethod(), responseObserver);
    }
  }

  /**
   * Base class for the server implementation of the service GenerationService.
   * <pre>
   * Generation: the data plane. Applications send conversations and get answers.
   * Errors carry a google.rpc.Status in `grpc-status-details-bin` with exactly one
   * google.rpc.ErrorInfo (domain "orchestrator.sidecar"); its `reason` and metadata keys are API.
   * Every RPC of every service may return UNAUTHENTICATED (MISSING_CREDENTIALS, INVALID_CREDENTIALS)
   * and PERMISSION_DENIED (METHOD_NOT_ALLOWED: the credential may not call this method;
   * TENANT_NOT_ALLOWED: it may not act for the request's tenant), MALFORMED_REQUEST
   * (INVALID_ARGUMENT: the bytes are not a valid request message, or a string field is not UTF-8;
   * BadRequest names the field when the wire format can be walked to it), REQUEST_TOO_COMPLEX
   * (INVALID_ARGUMENT: more elements than the parser allows in one request) and SIDECAR_DRAINING
   * (UNAVAILABLE: the sidecar is shutting down; retry, another process will answer).
   * </pre>
   */
  public static abstract class GenerationServiceImplBase
      implements io.grpc.BindableService, AsyncService {

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return GenerationServiceGrpc.bindService(this);
    }
  }

  /**
   * A stub to allow clients to do asynchronous rpc calls to service GenerationService.
   * <pre>
   * Generation: the data plane. Applications send conversations and get answers.
   * Errors carry a google.rpc.Status in `grpc-status-details-bin` with exactly one
   * google.rpc.ErrorInfo (domain "orchestrator.sidecar"); its `reason` and metadata keys are API.
   * Every RPC of every service may return UNAUTHENTICATED (MISSING_CREDENTIALS, INVALID_CREDENTIALS)
   * and PERMISSION_DENIED (METHOD_NOT_ALLOWED: the credential may not call this method;
   * TENANT_NOT_ALLOWED: it may not act for the request's tenant), MALFORMED_REQUEST
   * (INVALID_ARGUMENT: the bytes are not a valid request message, or a string field is not UTF-8;
   * BadRequest names the field when the wire format can be walked to it), REQUEST_TOO_COMPLEX
   * (INVALID_ARGUMENT: more elements than the parser allows in one request) and SIDECAR_DRAINING
   * (UNAVAILABLE: the sidecar is shutting down; retry, another process will answer).
   * </pre>
   */
  public static final class GenerationServiceStub
      extends io.grpc.stub.AbstractAsyncStub<GenerationServiceStub> {
    private GenerationServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected GenerationServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new GenerationServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Generates a complete answer.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT: another request already used this tenant's
     * request_id within the window), CONTEXT_TOO_LONG (INVALID_ARGUMENT, BadRequest on
     * `input.messages`), MODEL_NOT_FOUND (NOT_FOUND), MODEL_NOT_ALLOWED (PERMISSION_DENIED),
     * NO_CAPABLE_DEPLOYMENT (FAILED_PRECONDITION: no deployment of the route it may use takes the
     * call's tools, schema, images, size or reasoning; metadata `missing` says what each lacks),
     * PROVIDERS_UNAVAILABLE (UNAVAILABLE, with RetryInfo when known), PROVIDER_REJECTED
     * (INVALID_ARGUMENT), DEADLINE_EXCEEDED, PROVIDER_AUTH_FAILED (INTERNAL), INTERNAL.
     * User keys: KEY_CONTEXT_MISMATCH (PERMISSION_DENIED), INVALID_KEY_ENVELOPE (INVALID_ARGUMENT),
     * USER_KEY_REQUIRED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * KEY_UNAVAILABLE (INTERNAL), KEY_RECORD_CORRUPT (FAILED_PRECONDITION: the stored or inline
     * envelope does not open), KEY_FAILURE_LIMIT_REACHED (RESOURCE_EXHAUSTED, with RetryInfo: the
     * tenant's inline envelopes failed too often in the window), USER_KEY_REJECTED (PERMISSION_DENIED:
     * the provider refused the caller's own key), USER_KEY_RATE_LIMITED
     * (RESOURCE_EXHAUSTED: the provider rate-limited the caller's own key).
     * Admission: OVERLOADED (UNAVAILABLE, with RetryInfo: the sidecar's admission queue is full or the
     * call waited its limit). Personas and memory: PERSONA_NOT_FOUND (INVALID_ARGUMENT),
     * PERSONA_NOT_ALLOWED (PERMISSION_DENIED), SESSION_STORE_UNAVAILABLE (UNAVAILABLE). Quotas
     * (RESOURCE_EXHAUSTED, with QuotaFailure, RetryInfo and metadata `limit`, `metric`, `window`,
     * `scope`): RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED, COST_QUOTA_EXCEEDED,
     * CONCURRENCY_LIMITED; QUOTA_UNAVAILABLE (UNAVAILABLE) when a fail_closed store is unreachable.
     * IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE) when a shared idempotency store is unreachable.
     * </pre>
     */
    public void generate(io.orchestrator.sidecar.v1.GenerateRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GenerateResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGenerateMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Generates an answer as a stream of deltas followed by one result.
     * Reasons: those of Generate except IDEMPOTENCY_KEY_REUSED and IDEMPOTENCY_STORE_UNAVAILABLE
     * (a stream is never replayed), plus STREAM_INTERRUPTED (UNAVAILABLE) when the upstream fails
     * after the first delta was sent; its trailing metadata carries the partial usage. A stream that
     * ends without a result has failed. CALLER_NOT_READING (DEADLINE_EXCEEDED) when the caller read
     * nothing while one message waited settings.stream_write_timeout_seconds to be sent.
     * </pre>
     */
    public void streamGenerate(io.orchestrator.sidecar.v1.StreamGenerateRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.StreamGenerateResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getStreamGenerateMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Lists the route aliases, their deployments, capabilities and prices, a page at a time.
     * Reasons: INVALID_REQUEST (page_size, page_token).
     * </pre>
     */
    public void listModels(io.orchestrator.sidecar.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Embeds a batch of texts: one vector per text, through the embedding routes (the local model by
     * default), each text first looked up in the exact embedding cache. Charged to the caller's
     * quota like Generate (one request, the texts' tokens, the cost).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field: `tenant_id`,
     * `user_id`, `request_id`, `route`, `metadata[...]`, `texts`, `texts[i]`; `texts` too when the
     * reply, texts x dimensions, would exceed embeddings.max_reply_bytes: nothing charged), PROVIDERS_UNAVAILABLE
     * (UNAVAILABLE: every deployment of the route failed or has its circuit open), DEADLINE_EXCEEDED,
     * INTERNAL. Quotas as in Generate: RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED,
     * COST_QUOTA_EXCEEDED (RESOURCE_EXHAUSTED, with QuotaFailure and RetryInfo), QUOTA_UNAVAILABLE
     * (UNAVAILABLE). Idempotent retries as in Generate: IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT naming
     * `request_id`), IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE).
     * </pre>
     */
    public void embed(io.orchestrator.sidecar.v1.EmbedRequest request,
        io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.EmbedResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getEmbedMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * A stub to allow clients to do synchronous rpc calls to service GenerationService.
   * <pre>
   * Generation: the data plane. Applications send conversations and get answers.
   * Errors carry a google.rpc.Status in `grpc-status-details-bin` with exactly one
   * google.rpc.ErrorInfo (domain "orchestrator.sidecar"); its `reason` and metadata keys are API.
   * Every RPC of every service may return UNAUTHENTICATED (MISSING_CREDENTIALS, INVALID_CREDENTIALS)
   * and PERMISSION_DENIED (METHOD_NOT_ALLOWED: the credential may not call this method;
   * TENANT_NOT_ALLOWED: it may not act for the request's tenant), MALFORMED_REQUEST
   * (INVALID_ARGUMENT: the bytes are not a valid request message, or a string field is not UTF-8;
   * BadRequest names the field when the wire format can be walked to it), REQUEST_TOO_COMPLEX
   * (INVALID_ARGUMENT: more elements than the parser allows in one request) and SIDECAR_DRAINING
   * (UNAVAILABLE: the sidecar is shutting down; retry, another process will answer).
   * </pre>
   */
  public static final class GenerationServiceBlockingV2Stub
      extends io.grpc.stub.AbstractBlockingStub<GenerationServiceBlockingV2Stub> {
    private GenerationServiceBlockingV2Stub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected GenerationServiceBlockingV2Stub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new GenerationServiceBlockingV2Stub(channel, callOptions);
    }

    /**
     * <pre>
     * Generates a complete answer.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT: another request already used this tenant's
     * request_id within the window), CONTEXT_TOO_LONG (INVALID_ARGUMENT, BadRequest on
     * `input.messages`), MODEL_NOT_FOUND (NOT_FOUND), MODEL_NOT_ALLOWED (PERMISSION_DENIED),
     * NO_CAPABLE_DEPLOYMENT (FAILED_PRECONDITION: no deployment of the route it may use takes the
     * call's tools, schema, images, size or reasoning; metadata `missing` says what each lacks),
     * PROVIDERS_UNAVAILABLE (UNAVAILABLE, with RetryInfo when known), PROVIDER_REJECTED
     * (INVALID_ARGUMENT), DEADLINE_EXCEEDED, PROVIDER_AUTH_FAILED (INTERNAL), INTERNAL.
     * User keys: KEY_CONTEXT_MISMATCH (PERMISSION_DENIED), INVALID_KEY_ENVELOPE (INVALID_ARGUMENT),
     * USER_KEY_REQUIRED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * KEY_UNAVAILABLE (INTERNAL), KEY_RECORD_CORRUPT (FAILED_PRECONDITION: the stored or inline
     * envelope does not open), KEY_FAILURE_LIMIT_REACHED (RESOURCE_EXHAUSTED, with RetryInfo: the
     * tenant's inline envelopes failed too often in the window), USER_KEY_REJECTED (PERMISSION_DENIED:
     * the provider refused the caller's own key), USER_KEY_RATE_LIMITED
     * (RESOURCE_EXHAUSTED: the provider rate-limited the caller's own key).
     * Admission: OVERLOADED (UNAVAILABLE, with RetryInfo: the sidecar's admission queue is full or the
     * call waited its limit). Personas and memory: PERSONA_NOT_FOUND (INVALID_ARGUMENT),
     * PERSONA_NOT_ALLOWED (PERMISSION_DENIED), SESSION_STORE_UNAVAILABLE (UNAVAILABLE). Quotas
     * (RESOURCE_EXHAUSTED, with QuotaFailure, RetryInfo and metadata `limit`, `metric`, `window`,
     * `scope`): RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED, COST_QUOTA_EXCEEDED,
     * CONCURRENCY_LIMITED; QUOTA_UNAVAILABLE (UNAVAILABLE) when a fail_closed store is unreachable.
     * IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE) when a shared idempotency store is unreachable.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GenerateResponse generate(io.orchestrator.sidecar.v1.GenerateRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getGenerateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Generates an answer as a stream of deltas followed by one result.
     * Reasons: those of Generate except IDEMPOTENCY_KEY_REUSED and IDEMPOTENCY_STORE_UNAVAILABLE
     * (a stream is never replayed), plus STREAM_INTERRUPTED (UNAVAILABLE) when the upstream fails
     * after the first delta was sent; its trailing metadata carries the partial usage. A stream that
     * ends without a result has failed. CALLER_NOT_READING (DEADLINE_EXCEEDED) when the caller read
     * nothing while one message waited settings.stream_write_timeout_seconds to be sent.
     * </pre>
     */
    @io.grpc.ExperimentalApi("https://github.com/grpc/grpc-java/issues/10918")
    public io.grpc.stub.BlockingClientCall<?, io.orchestrator.sidecar.v1.StreamGenerateResponse>
        streamGenerate(io.orchestrator.sidecar.v1.StreamGenerateRequest request) {
      return io.grpc.stub.ClientCalls.blockingV2ServerStreamingCall(
          getChannel(), getStreamGenerateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the route aliases, their deployments, capabilities and prices, a page at a time.
     * Reasons: INVALID_REQUEST (page_size, page_token).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListModelsResponse listModels(io.orchestrator.sidecar.v1.ListModelsRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Embeds a batch of texts: one vector per text, through the embedding routes (the local model by
     * default), each text first looked up in the exact embedding cache. Charged to the caller's
     * quota like Generate (one request, the texts' tokens, the cost).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field: `tenant_id`,
     * `user_id`, `request_id`, `route`, `metadata[...]`, `texts`, `texts[i]`; `texts` too when the
     * reply, texts x dimensions, would exceed embeddings.max_reply_bytes: nothing charged), PROVIDERS_UNAVAILABLE
     * (UNAVAILABLE: every deployment of the route failed or has its circuit open), DEADLINE_EXCEEDED,
     * INTERNAL. Quotas as in Generate: RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED,
     * COST_QUOTA_EXCEEDED (RESOURCE_EXHAUSTED, with QuotaFailure and RetryInfo), QUOTA_UNAVAILABLE
     * (UNAVAILABLE). Idempotent retries as in Generate: IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT naming
     * `request_id`), IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.EmbedResponse embed(io.orchestrator.sidecar.v1.EmbedRequest request) throws io.grpc.StatusException {
      return io.grpc.stub.ClientCalls.blockingV2UnaryCall(
          getChannel(), getEmbedMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do limited synchronous rpc calls to service GenerationService.
   * <pre>
   * Generation: the data plane. Applications send conversations and get answers.
   * Errors carry a google.rpc.Status in `grpc-status-details-bin` with exactly one
   * google.rpc.ErrorInfo (domain "orchestrator.sidecar"); its `reason` and metadata keys are API.
   * Every RPC of every service may return UNAUTHENTICATED (MISSING_CREDENTIALS, INVALID_CREDENTIALS)
   * and PERMISSION_DENIED (METHOD_NOT_ALLOWED: the credential may not call this method;
   * TENANT_NOT_ALLOWED: it may not act for the request's tenant), MALFORMED_REQUEST
   * (INVALID_ARGUMENT: the bytes are not a valid request message, or a string field is not UTF-8;
   * BadRequest names the field when the wire format can be walked to it), REQUEST_TOO_COMPLEX
   * (INVALID_ARGUMENT: more elements than the parser allows in one request) and SIDECAR_DRAINING
   * (UNAVAILABLE: the sidecar is shutting down; retry, another process will answer).
   * </pre>
   */
  public static final class GenerationServiceBlockingStub
      extends io.grpc.stub.AbstractBlockingStub<GenerationServiceBlockingStub> {
    private GenerationServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected GenerationServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new GenerationServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Generates a complete answer.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT: another request already used this tenant's
     * request_id within the window), CONTEXT_TOO_LONG (INVALID_ARGUMENT, BadRequest on
     * `input.messages`), MODEL_NOT_FOUND (NOT_FOUND), MODEL_NOT_ALLOWED (PERMISSION_DENIED),
     * NO_CAPABLE_DEPLOYMENT (FAILED_PRECONDITION: no deployment of the route it may use takes the
     * call's tools, schema, images, size or reasoning; metadata `missing` says what each lacks),
     * PROVIDERS_UNAVAILABLE (UNAVAILABLE, with RetryInfo when known), PROVIDER_REJECTED
     * (INVALID_ARGUMENT), DEADLINE_EXCEEDED, PROVIDER_AUTH_FAILED (INTERNAL), INTERNAL.
     * User keys: KEY_CONTEXT_MISMATCH (PERMISSION_DENIED), INVALID_KEY_ENVELOPE (INVALID_ARGUMENT),
     * USER_KEY_REQUIRED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * KEY_UNAVAILABLE (INTERNAL), KEY_RECORD_CORRUPT (FAILED_PRECONDITION: the stored or inline
     * envelope does not open), KEY_FAILURE_LIMIT_REACHED (RESOURCE_EXHAUSTED, with RetryInfo: the
     * tenant's inline envelopes failed too often in the window), USER_KEY_REJECTED (PERMISSION_DENIED:
     * the provider refused the caller's own key), USER_KEY_RATE_LIMITED
     * (RESOURCE_EXHAUSTED: the provider rate-limited the caller's own key).
     * Admission: OVERLOADED (UNAVAILABLE, with RetryInfo: the sidecar's admission queue is full or the
     * call waited its limit). Personas and memory: PERSONA_NOT_FOUND (INVALID_ARGUMENT),
     * PERSONA_NOT_ALLOWED (PERMISSION_DENIED), SESSION_STORE_UNAVAILABLE (UNAVAILABLE). Quotas
     * (RESOURCE_EXHAUSTED, with QuotaFailure, RetryInfo and metadata `limit`, `metric`, `window`,
     * `scope`): RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED, COST_QUOTA_EXCEEDED,
     * CONCURRENCY_LIMITED; QUOTA_UNAVAILABLE (UNAVAILABLE) when a fail_closed store is unreachable.
     * IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE) when a shared idempotency store is unreachable.
     * </pre>
     */
    public io.orchestrator.sidecar.v1.GenerateResponse generate(io.orchestrator.sidecar.v1.GenerateRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGenerateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Generates an answer as a stream of deltas followed by one result.
     * Reasons: those of Generate except IDEMPOTENCY_KEY_REUSED and IDEMPOTENCY_STORE_UNAVAILABLE
     * (a stream is never replayed), plus STREAM_INTERRUPTED (UNAVAILABLE) when the upstream fails
     * after the first delta was sent; its trailing metadata carries the partial usage. A stream that
     * ends without a result has failed. CALLER_NOT_READING (DEADLINE_EXCEEDED) when the caller read
     * nothing while one message waited settings.stream_write_timeout_seconds to be sent.
     * </pre>
     */
    public java.util.Iterator<io.orchestrator.sidecar.v1.StreamGenerateResponse> streamGenerate(
        io.orchestrator.sidecar.v1.StreamGenerateRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getStreamGenerateMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Lists the route aliases, their deployments, capabilities and prices, a page at a time.
     * Reasons: INVALID_REQUEST (page_size, page_token).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.ListModelsResponse listModels(io.orchestrator.sidecar.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Embeds a batch of texts: one vector per text, through the embedding routes (the local model by
     * default), each text first looked up in the exact embedding cache. Charged to the caller's
     * quota like Generate (one request, the texts' tokens, the cost).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field: `tenant_id`,
     * `user_id`, `request_id`, `route`, `metadata[...]`, `texts`, `texts[i]`; `texts` too when the
     * reply, texts x dimensions, would exceed embeddings.max_reply_bytes: nothing charged), PROVIDERS_UNAVAILABLE
     * (UNAVAILABLE: every deployment of the route failed or has its circuit open), DEADLINE_EXCEEDED,
     * INTERNAL. Quotas as in Generate: RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED,
     * COST_QUOTA_EXCEEDED (RESOURCE_EXHAUSTED, with QuotaFailure and RetryInfo), QUOTA_UNAVAILABLE
     * (UNAVAILABLE). Idempotent retries as in Generate: IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT naming
     * `request_id`), IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE).
     * </pre>
     */
    public io.orchestrator.sidecar.v1.EmbedResponse embed(io.orchestrator.sidecar.v1.EmbedRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getEmbedMethod(), getCallOptions(), request);
    }
  }

  /**
   * A stub to allow clients to do ListenableFuture-style rpc calls to service GenerationService.
   * <pre>
   * Generation: the data plane. Applications send conversations and get answers.
   * Errors carry a google.rpc.Status in `grpc-status-details-bin` with exactly one
   * google.rpc.ErrorInfo (domain "orchestrator.sidecar"); its `reason` and metadata keys are API.
   * Every RPC of every service may return UNAUTHENTICATED (MISSING_CREDENTIALS, INVALID_CREDENTIALS)
   * and PERMISSION_DENIED (METHOD_NOT_ALLOWED: the credential may not call this method;
   * TENANT_NOT_ALLOWED: it may not act for the request's tenant), MALFORMED_REQUEST
   * (INVALID_ARGUMENT: the bytes are not a valid request message, or a string field is not UTF-8;
   * BadRequest names the field when the wire format can be walked to it), REQUEST_TOO_COMPLEX
   * (INVALID_ARGUMENT: more elements than the parser allows in one request) and SIDECAR_DRAINING
   * (UNAVAILABLE: the sidecar is shutting down; retry, another process will answer).
   * </pre>
   */
  public static final class GenerationServiceFutureStub
      extends io.grpc.stub.AbstractFutureStub<GenerationServiceFutureStub> {
    private GenerationServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected GenerationServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new GenerationServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Generates a complete answer.
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field),
     * IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT: another request already used this tenant's
     * request_id within the window), CONTEXT_TOO_LONG (INVALID_ARGUMENT, BadRequest on
     * `input.messages`), MODEL_NOT_FOUND (NOT_FOUND), MODEL_NOT_ALLOWED (PERMISSION_DENIED),
     * NO_CAPABLE_DEPLOYMENT (FAILED_PRECONDITION: no deployment of the route it may use takes the
     * call's tools, schema, images, size or reasoning; metadata `missing` says what each lacks),
     * PROVIDERS_UNAVAILABLE (UNAVAILABLE, with RetryInfo when known), PROVIDER_REJECTED
     * (INVALID_ARGUMENT), DEADLINE_EXCEEDED, PROVIDER_AUTH_FAILED (INTERNAL), INTERNAL.
     * User keys: KEY_CONTEXT_MISMATCH (PERMISSION_DENIED), INVALID_KEY_ENVELOPE (INVALID_ARGUMENT),
     * USER_KEY_REQUIRED (FAILED_PRECONDITION), KEY_BACKEND_UNAVAILABLE (UNAVAILABLE),
     * KEY_UNAVAILABLE (INTERNAL), KEY_RECORD_CORRUPT (FAILED_PRECONDITION: the stored or inline
     * envelope does not open), KEY_FAILURE_LIMIT_REACHED (RESOURCE_EXHAUSTED, with RetryInfo: the
     * tenant's inline envelopes failed too often in the window), USER_KEY_REJECTED (PERMISSION_DENIED:
     * the provider refused the caller's own key), USER_KEY_RATE_LIMITED
     * (RESOURCE_EXHAUSTED: the provider rate-limited the caller's own key).
     * Admission: OVERLOADED (UNAVAILABLE, with RetryInfo: the sidecar's admission queue is full or the
     * call waited its limit). Personas and memory: PERSONA_NOT_FOUND (INVALID_ARGUMENT),
     * PERSONA_NOT_ALLOWED (PERMISSION_DENIED), SESSION_STORE_UNAVAILABLE (UNAVAILABLE). Quotas
     * (RESOURCE_EXHAUSTED, with QuotaFailure, RetryInfo and metadata `limit`, `metric`, `window`,
     * `scope`): RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED, COST_QUOTA_EXCEEDED,
     * CONCURRENCY_LIMITED; QUOTA_UNAVAILABLE (UNAVAILABLE) when a fail_closed store is unreachable.
     * IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE) when a shared idempotency store is unreachable.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.GenerateResponse> generate(
        io.orchestrator.sidecar.v1.GenerateRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGenerateMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Lists the route aliases, their deployments, capabilities and prices, a page at a time.
     * Reasons: INVALID_REQUEST (page_size, page_token).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.ListModelsResponse> listModels(
        io.orchestrator.sidecar.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Embeds a batch of texts: one vector per text, through the embedding routes (the local model by
     * default), each text first looked up in the exact embedding cache. Charged to the caller's
     * quota like Generate (one request, the texts' tokens, the cost).
     * Reasons: INVALID_REQUEST (INVALID_ARGUMENT, with BadRequest naming the field: `tenant_id`,
     * `user_id`, `request_id`, `route`, `metadata[...]`, `texts`, `texts[i]`; `texts` too when the
     * reply, texts x dimensions, would exceed embeddings.max_reply_bytes: nothing charged), PROVIDERS_UNAVAILABLE
     * (UNAVAILABLE: every deployment of the route failed or has its circuit open), DEADLINE_EXCEEDED,
     * INTERNAL. Quotas as in Generate: RATE_LIMITED, REQUEST_QUOTA_EXCEEDED, TOKEN_QUOTA_EXCEEDED,
     * COST_QUOTA_EXCEEDED (RESOURCE_EXHAUSTED, with QuotaFailure and RetryInfo), QUOTA_UNAVAILABLE
     * (UNAVAILABLE). Idempotent retries as in Generate: IDEMPOTENCY_KEY_REUSED (INVALID_ARGUMENT naming
     * `request_id`), IDEMPOTENCY_STORE_UNAVAILABLE (UNAVAILABLE).
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.orchestrator.sidecar.v1.EmbedResponse> embed(
        io.orchestrator.sidecar.v1.EmbedRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getEmbedMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GENERATE = 0;
  private static final int METHODID_STREAM_GENERATE = 1;
  private static final int METHODID_LIST_MODELS = 2;
  private static final int METHODID_EMBED = 3;

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
        case METHODID_GENERATE:
          serviceImpl.generate((io.orchestrator.sidecar.v1.GenerateRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.GenerateResponse>) responseObserver);
          break;
        case METHODID_STREAM_GENERATE:
          serviceImpl.streamGenerate((io.orchestrator.sidecar.v1.StreamGenerateRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.StreamGenerateResponse>) responseObserver);
          break;
        case METHODID_LIST_MODELS:
          serviceImpl.listModels((io.orchestrator.sidecar.v1.ListModelsRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.ListModelsResponse>) responseObserver);
          break;
        case METHODID_EMBED:
          serviceImpl.embed((io.orchestrator.sidecar.v1.EmbedRequest) request,
              (io.grpc.stub.StreamObserver<io.orchestrator.sidecar.v1.EmbedResponse>) responseObserver);
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
          getGenerateMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.GenerateRequest,
              io.orchestrator.sidecar.v1.GenerateResponse>(
                service, METHODID_GENERATE)))
        .addMethod(
          getStreamGenerateMethod(),
          io.grpc.stub.ServerCalls.asyncServerStreamingCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.StreamGenerateRequest,
              io.orchestrator.sidecar.v1.StreamGenerateResponse>(
                service, METHODID_STREAM_GENERATE)))
        .addMethod(
          getListModelsMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.ListModelsRequest,
              io.orchestrator.sidecar.v1.ListModelsResponse>(
                service, METHODID_LIST_MODELS)))
        .addMethod(
          getEmbedMethod(),
          io.grpc.stub.ServerCalls.asyncUnaryCall(
            new MethodHandlers<
              io.orchestrator.sidecar.v1.EmbedRequest,
              io.orchestrator.sidecar.v1.EmbedResponse>(
                service, METHODID_EMBED)))
        .build();
  }

  private static abstract class GenerationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    GenerationServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.orchestrator.sidecar.v1.GenerationServiceProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("GenerationService");
    }
  }

  private static final class GenerationServiceFileDescriptorSupplier
      extends GenerationServiceBaseDescriptorSupplier {
    GenerationServiceFileDescriptorSupplier() {}
  }

  private static final class GenerationServiceMethodDescriptorSupplier
      extends GenerationServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final java.lang.String methodName;

    GenerationServiceMethodDescriptorSupplier(java.lang.String methodName) {
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
      synchronized (GenerationServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new GenerationServiceFileDescriptorSupplier())
              .addMethod(getGenerateMethod())
              .addMethod(getStreamGenerateMethod())
              .addMethod(getListModelsMethod())
              .addMethod(getEmbedMethod())
              .build();
        }
      }
    }
    return result;
  }
}
