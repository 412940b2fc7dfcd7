/**
 * A stream the application stops reading early is cancelled on the wire: the README says breaking
 * out of the loop cancels the call. The check is the signal connect gives the HTTP/2 stream (an
 * interceptor sees it): aborted once the loop is left, long before the stream would have ended.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { Interceptor } from "@connectrpc/connect";
import { SidecarClient, StreamInterruptedError, userMessage, withStreamRetry } from "../src/index.js";
import { REPO_ROOT, startSidecar, type RunningSidecar } from "./sidecar-process.js";

const CONFIG = path.join(REPO_ROOT, "tests/contract/sidecar.yaml");
const TOKEN = (parse(readFileSync(path.join(REPO_ROOT, "tests/contract/scenarios.yaml"), "utf8")) as { token: string }).token;
// 400 words, 2 tokens a chunk every 20 ms on the contract's echo deployment: about 4 s of stream
const LONG = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ");
const input = { tenantId: "lifecycle", userId: "u", messages: [userMessage(LONG)] };

describe("a stream left early", () => {
  let sidecar: RunningSidecar;
  let client: SidecarClient;
  const signals: AbortSignal[] = [];
  const record: Interceptor = (next) => (req) => {
    signals.push(req.signal);
    return next(req);
  };

  before(async () => {
    sidecar = await startSidecar(CONFIG, TOKEN);
    client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [record] });
  });

  after(async () => {
    client?.close();
    await sidecar?.stop();
  });

  test("break out of the loop cancels the call", async () => {
    signals.length = 0;
    const started = Date.now();
    for await (const event of client.stream(input, { timeoutMs: 30_000 })) {
      assert.equal(event.event.case, "delta");
      break;
    }
    assert.equal(signals.length, 1);
    assert.ok(signals[0]!.aborted, "the call's signal is aborted once the loop is left");
    assert.ok(Date.now() - started < 3000);
  });

  test("break out of a withStreamRetry loop cancels the call", async () => {
    signals.length = 0;
    for await (const event of withStreamRetry((attempt) => client.stream(input, attempt), { timeoutMs: 30_000 })) {
      assert.equal(event.event.case, "delta");
      break;
    }
    assert.equal(signals.length, 1);
    assert.ok(signals[0]!.aborted);
  });

  test("a stream read to its end ends well, and the caller's signal still cancels", async () => {
    let kinds: string[] = [];
    for await (const event of client.stream({ ...input, messages: [userMessage("a b c d")] })) kinds.push(event.event.case ?? "");
    assert.equal(kinds.at(-1), "result");
    const caller = new AbortController();
    kinds = [];
    await assert.rejects(async () => {
      for await (const event of client.stream(input, { signal: caller.signal })) {
        kinds.push(event.event.case ?? "");
        caller.abort();
      }
    }, { name: "CancelledError" });
    assert.deepEqual(kinds, ["delta"]);
  });

  test("a stream that ends cleanly without its result is a failure, not a silent end", async () => {
    const dropResult: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (!res.stream) return res;
      async function* withoutResult(messages: AsyncIterable<unknown>) {
        for await (const m of messages) if ((m as { event: { case: string } }).event.case !== "result") yield m;
      }
      return { ...res, message: withoutResult(res.message) } as typeof res;
    };
    const lossy = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [dropResult] });
    try {
      const kinds: string[] = [];
      await assert.rejects(async () => {
        for await (const event of lossy.stream({ ...input, messages: [userMessage("a b c d")] })) kinds.push(event.event.case ?? "");
      }, StreamInterruptedError);
      assert.ok(kinds.length > 0 && kinds.every((k) => k === "delta"));
    } finally {
      lossy.close();
    }
  });
});
