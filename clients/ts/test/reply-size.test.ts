/**
 * The largest reply a call accepts is the same in every client (DEFAULT_MAX_REPLY_BYTES, 256 MiB),
 * `maxReplyBytes` to change it: the TypeScript client accepted any size and could not be limited,
 * while Go and Java refused more than 4 MiB. The sidecar's `xlarge` route echoes the prompt, so a
 * prompt of n bytes is a reply of n bytes and a little (tests/contract/sidecar.yaml).
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  DEFAULT_MAX_REPLY_BYTES,
  GenerateResponseSchema,
  QuotaExceededError,
  TransportLimitError,
  SidecarClient,
  messageText,
  userMessage,
} from "../src/index.js";
import { REPO_ROOT, startSidecar, type RunningSidecar } from "./sidecar-process.js";

const TOKEN = "contract-token";
const LIMIT = 1024 * 1024; // a limit set by the caller
let sidecar: RunningSidecar;

before(async () => {
  sidecar = await startSidecar(path.join(REPO_ROOT, "tests/contract/sidecar.yaml"), TOKEN);
});

after(async () => {
  await sidecar?.stop();
});

function ask(size: number) {
  const text = "word ".repeat(Math.floor(size / 5) + 1).slice(0, size);
  return { model: "xlarge", tenantId: "acme", userId: "reply-size", messages: [userMessage(text)] };
}

test("the default is the largest reply the sidecar may send, and a reply past gRPC's 4 MiB arrives", async () => {
  assert.equal(DEFAULT_MAX_REPLY_BYTES, 256 * 1024 * 1024);
  const client = new SidecarClient({ address: sidecar.address, token: TOKEN, timeoutMs: 60_000 });
  try {
    const size = 5 * 1024 * 1024;
    const reply = await client.generate(ask(size));
    assert.equal(messageText(reply.message).length, size);
  } finally {
    client.close();
  }
});

test("a reply just under the limit arrives, one over it fails RESOURCE_EXHAUSTED naming the limit", async () => {
  const client = new SidecarClient({ address: sidecar.address, token: TOKEN, timeoutMs: 30_000, maxReplyBytes: LIMIT });
  try {
    const under = await client.generate(ask(LIMIT - 512)); // the text and ~150 bytes of the rest
    assert.ok(toBinary(GenerateResponseSchema, under).length <= LIMIT);
    await assert.rejects(client.generate(ask(LIMIT + 1)), (err: unknown) => {
      // gRPC's own refusal, not the caller's budget: it was a QuotaExceededError ("out of quota")
      assert.ok(err instanceof TransportLimitError && !(err instanceof QuotaExceededError), String(err));
      assert.equal(err.code, Code.ResourceExhausted);
      assert.equal(err.reason, "");
      assert.match(err.message, new RegExp(`readMaxBytes ${LIMIT}`));
      return true;
    });
  } finally {
    client.close();
  }
});

test("a request over the sidecar's own limit (8 MiB) is a TransportLimitError too", async () => {
  const client = new SidecarClient({ address: sidecar.address, token: TOKEN, timeoutMs: 30_000 });
  try {
    const request = { model: "xlarge", tenantId: "acme", userId: "reply-size", messages: [userMessage("x".repeat(9 * 1024 * 1024))] };
    await assert.rejects(client.generate(request), (err: unknown) => {
      assert.ok(err instanceof TransportLimitError, String(err));
      assert.equal(err.code, Code.ResourceExhausted);
      return true;
    });
  } finally {
    client.close();
  }
});

test("the sidecar's quota refusal stays a QuotaExceededError", async () => {
  const client = new SidecarClient({ address: sidecar.address, token: TOKEN, timeoutMs: 30_000 });
  try {
    const request = { tenantId: "scarce-tenant", userId: "u-reply-size", messages: [userMessage("one too many")] };
    await client.generate(request);
    await assert.rejects(client.generate(request), (err: unknown) => {
      assert.ok(err instanceof QuotaExceededError && !(err instanceof TransportLimitError), String(err));
      assert.equal(err.reason, "RATE_LIMITED");
      return true;
    });
  } finally {
    client.close();
  }
});

test("a limit that is no whole number of bytes is refused", () => {
  for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
    assert.throws(() => new SidecarClient({ address: "127.0.0.1:1", token: null, maxReplyBytes: bad }), RangeError);
  }
});
