/** Typed errors from google.rpc.Status details: every detail kind, and payloads that are missing or malformed. */
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RetryInfoSchema,
} from "../src/gen/google/rpc/error_details_pb.js";
import {
  AuthenticationError,
  CancelledError,
  InternalError,
  InvalidRequestError,
  QuotaExceededError,
  TransportLimitError,
  SidecarClient,
  SidecarError,
  StreamInterruptedError,
  isRetryable,
  UnavailableError,
  toSidecarError,
  userMessage,
} from "../src/index.js";

function detail<Desc extends DescMessage>(schema: Desc, init: MessageInitShape<Desc>) {
  return { type: schema.typeName, value: toBinary(schema, create(schema, init)) };
}

function connectError(code: Code, details: { type: string; value: Uint8Array }[]): ConnectError {
  const err = new ConnectError("refused", code);
  err.details = details;
  return err;
}

describe("toSidecarError", () => {
  test("decodes reason, metadata, RetryInfo in ms, QuotaFailure into QuotaExceededError", () => {
    const err = toSidecarError(
      connectError(Code.ResourceExhausted, [
        detail(ErrorInfoSchema, { reason: "REQUEST_QUOTA_EXCEEDED", domain: "orchestrator.sidecar", metadata: { limit: "rpm" } }),
        detail(RetryInfoSchema, { retryDelay: { seconds: 2n, nanos: 500_000_000 } }),
        detail(QuotaFailureSchema, { violations: [{ subject: "user:u1", description: "3 requests per minute" }] }),
      ]),
    );
    assert.ok(err instanceof QuotaExceededError);
    assert.equal(err.reason, "REQUEST_QUOTA_EXCEEDED");
    assert.equal(err.codeName, "RESOURCE_EXHAUSTED");
    assert.deepEqual(err.metadata, { limit: "rpm" });
    assert.equal(err.retryDelayMs, 2500);
    assert.deepEqual(err.quotaViolations, [{ subject: "user:u1", description: "3 requests per minute" }]);
  });

  test("RESOURCE_EXHAUSTED without the sidecar's reason is gRPC's own limit, never the quota error", () => {
    for (const details of [[], [detail(ErrorInfoSchema, { reason: "" })]]) {
      const err = toSidecarError(connectError(Code.ResourceExhausted, details));
      assert.ok(err instanceof TransportLimitError && !(err instanceof QuotaExceededError), err.name);
      assert.equal(err.codeName, "RESOURCE_EXHAUSTED");
    }
  });

  test("BadRequest field violations on an InvalidRequestError", () => {
    const err = toSidecarError(
      connectError(Code.InvalidArgument, [
        detail(ErrorInfoSchema, { reason: "INVALID_REQUEST" }),
        detail(BadRequestSchema, { fieldViolations: [{ field: "input.config.temperature", description: "0 to 2" }] }),
      ]),
    );
    assert.ok(err instanceof InvalidRequestError);
    assert.deepEqual(err.fieldViolations.map((v) => v.field), ["input.config.temperature"]);
  });

  test("STREAM_INTERRUPTED carries the partial usage and is an UnavailableError", () => {
    const err = toSidecarError(
      connectError(Code.Unavailable, [
        detail(ErrorInfoSchema, {
          reason: "STREAM_INTERRUPTED",
          metadata: { promptTokens: "12", completionTokens: "3", usageEstimated: "true" },
        }),
      ]),
    );
    assert.ok(err instanceof StreamInterruptedError);
    assert.ok(err instanceof UnavailableError);
    assert.deepEqual(err.partialUsage, { promptTokens: 12, completionTokens: 3, estimated: true });
  });

  test("a token count is ASCII digits, nothing else (the same rule in every client)", () => {
    for (const bad of ["²", "٣", "+7", "-0", "7.5", "1e3", "0x10", "", " 7", "99999999999999999999"]) {
      const err = toSidecarError(
        connectError(Code.Unavailable, [detail(ErrorInfoSchema, { reason: "STREAM_INTERRUPTED", metadata: { promptTokens: bad, completionTokens: "2" } })]),
      );
      assert.ok(err instanceof StreamInterruptedError);
      assert.equal(err.partialUsage, undefined, `promptTokens ${JSON.stringify(bad)}`);
    }
  });

  test("no details: the family of the code, empty details", () => {
    const err = toSidecarError(new ConnectError("who are you", Code.Unauthenticated));
    assert.ok(err instanceof AuthenticationError);
    assert.equal(err.reason, "");
    assert.deepEqual(err.fieldViolations, []);
    assert.equal(err.retryDelayMs, undefined);
  });

  test("malformed detail bytes are skipped, the others still decode", () => {
    const err = toSidecarError(
      connectError(Code.Unavailable, [
        { type: "google.rpc.ErrorInfo", value: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) },
        { type: "google.rpc.RetryInfo", value: new Uint8Array([0xff]) },
        detail(QuotaFailureSchema, { violations: [{ subject: "s" }] }),
      ]),
    );
    assert.ok(err instanceof UnavailableError);
    assert.equal(err.reason, "");
    assert.equal(err.retryDelayMs, undefined);
    assert.equal(err.quotaViolations.length, 1);
  });

  test("a StreamInterruptedError with unusable usage metadata has no partial usage", () => {
    const err = toSidecarError(
      connectError(Code.Unavailable, [detail(ErrorInfoSchema, { reason: "STREAM_INTERRUPTED", metadata: { promptTokens: "x" } })]),
    );
    assert.ok(err instanceof StreamInterruptedError);
    assert.equal(err.partialUsage, undefined);
  });

  test("a stream broken after a delta without a reason is interrupted, not retryable", () => {
    const broken = new ConnectError("the connection was reset", Code.Unavailable);
    const after = toSidecarError(broken, 2);
    assert.ok(after instanceof StreamInterruptedError && after instanceof UnavailableError);
    assert.equal(after.partialUsage, undefined);
    assert.equal(isRetryable(after), false);
    const before = toSidecarError(broken, 0);
    assert.ok(!(before instanceof StreamInterruptedError) && before instanceof UnavailableError);
    assert.equal(isRetryable(before), true);
  });

  test("anything thrown becomes a SidecarError; an abort is a CancelledError", () => {
    assert.ok(toSidecarError(new Error("boom")) instanceof InternalError);
    assert.ok(toSidecarError("a string") instanceof SidecarError);
    const abort = new DOMException("aborted", "AbortError");
    assert.ok(toSidecarError(abort) instanceof CancelledError);
  });
});

describe("a server sending garbage in grpc-status-details-bin", () => {
  let server: http2.Http2Server;
  let port = 0;
  const trailers: Record<string, string>[] = [
    { "grpc-status": "14", "grpc-message": "down", "grpc-status-details-bin": "////" },
    { "grpc-status": "14", "grpc-message": "down", "grpc-status-details-bin": "%%% not base64 %%%" },
    { "grpc-status": "14", "grpc-message": "down" },
  ];
  let next = 0;

  before(async () => {
    server = http2.createServer();
    server.on("stream", (stream) => {
      const trailer = trailers[next++ % trailers.length] ?? {};
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers(trailer));
      stream.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test("every call ends in a SidecarError, never a crash", async () => {
    next = 0;
    const client = new SidecarClient({ address: `127.0.0.1:${port}`, token: null });
    try {
      // details that are not a google.rpc.Status: connect-node reports DATA_LOSS (the documented limit)
      for (let i = 0; i < 2; i++) {
        await assert.rejects(client.generate({ messages: [userMessage("hi")] }, { timeoutMs: 5000 }), (err: unknown) => {
          assert.ok(err instanceof InternalError, String(err));
          assert.equal((err as InternalError).codeName, "DATA_LOSS");
          return true;
        });
      }
    } finally {
      client.close();
    }
  });

  test("without details the code's family is kept", async () => {
    next = 2;
    const client = new SidecarClient({ address: `127.0.0.1:${port}`, token: null });
    try {
      await assert.rejects(client.generate({ messages: [userMessage("hi")] }), UnavailableError);
    } finally {
      client.close();
    }
  });
});
