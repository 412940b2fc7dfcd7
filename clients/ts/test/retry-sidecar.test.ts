/**
 * The retry helper around the client's calls, against a real sidecar: every attempt keeps the
 * client's default deadline, and a retried generate or embed keeps one request id, so a reply lost
 * after the sidecar charged the call is replayed (summary.replayed), not generated and charged again;
 * a switch is never retried.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { DeadlineExceededError, SidecarClient, UnavailableError, userMessage, withRetry } from "../src/index.js";
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

  test("a retried generate keeps one request id and is replayed, not charged again", async () => {
    const seen: string[] = [];
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [loseFirstReply("Generate", seen)] });
    try {
      const input = { tenantId: "ts-retry", userId: "u", messages: [userMessage("a lost reply")] };
      const answer = await withRetry((attempt) => client.generate(input, attempt), { timeoutMs: 10_000, baseDelayMs: 1 });
      assert.equal(seen.length, 2);
      assert.ok(seen[0] !== "" && seen[0] === seen[1], `request ids ${JSON.stringify(seen)}`);
      assert.equal(answer.summary?.replayed, true);
      assert.equal(answer.summary?.requestId, seen[0]);
    } finally {
      client.close();
    }
  });

  test("a retried embed keeps one request id and is replayed, not charged again", async () => {
    const seen: string[] = [];
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [loseFirstReply("Embed", seen)] });
    try {
      const request = { tenantId: "ts-retry", userId: "u", texts: ["a lost reply"] };
      const reply = await withRetry((attempt) => client.embed(request, attempt), { timeoutMs: 10_000, baseDelayMs: 1 });
      assert.ok(seen[0] !== "" && seen[0] === seen[1], `request ids ${JSON.stringify(seen)}`);
      assert.equal(reply.replayed, true);
    } finally {
      client.close();
    }
  });

  test("a generate retried without handing it the attempt still keeps one request id", async () => {
    // withRetry(() => client.generate(input)): the attempt's options (and so its request id) left out
    const seen: string[] = [];
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [loseFirstReply("Generate", seen)] });
    try {
      const input = { tenantId: "ts-retry", userId: "u", messages: [userMessage("a lost reply, no attempt")] };
      const answer = await withRetry(() => client.generate(input), { timeoutMs: 10_000, baseDelayMs: 1 });
      assert.equal(seen.length, 2);
      assert.ok(seen[0] !== "" && seen[0] === seen[1], `request ids ${JSON.stringify(seen)}`);
      assert.equal(answer.summary?.replayed, true, "the retry was generated and charged again");
    } finally {
      client.close();
    }
  });

  test("a generate of the generated client inside withRetry keeps one request id", async () => {
    const seen: string[] = [];
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [loseFirstReply("Generate", seen)] });
    try {
      const input = { tenantId: "ts-retry", userId: "u", messages: [userMessage("a lost reply, raw stub")] };
      const answer = await withRetry(() => client.generation.generate({ input }), { timeoutMs: 10_000, baseDelayMs: 1 });
      assert.ok(seen[0] !== "" && seen[0] === seen[1], `request ids ${JSON.stringify(seen)}`);
      assert.equal(answer.summary?.replayed, true, "the retry was generated and charged again");
    } finally {
      client.close();
    }
  });

  test("two generates in one attempt get two request ids, the same in every attempt", async () => {
    const seen: string[] = [];
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [loseFirstReply("Generate", seen)] });
    try {
      const first = { tenantId: "ts-retry", userId: "u", messages: [userMessage("first of two")] };
      const second = { tenantId: "ts-retry", userId: "u", messages: [userMessage("second of two")] };
      // attempt 1: the first generate's reply is lost; attempt 2 makes both calls
      await withRetry(async () => [await client.generate(first), await client.generate(second)], { timeoutMs: 10_000, baseDelayMs: 1 });
      assert.equal(seen.length, 3);
      assert.ok(seen[0] !== "" && seen[0] === seen[1] && seen[2] !== seen[1] && seen[2] !== "", `request ids ${JSON.stringify(seen)}`);
    } finally {
      client.close();
    }
  });

  test("two generates handed the same attempt get two request ids, the same in every attempt", async () => {
    // the README's pattern, withRetry((attempt) => client.generate(input, attempt)), for two calls: the
    // second was sent with the first one's id and refused (IDEMPOTENCY_KEY_REUSED)
    const seen: string[] = [];
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [loseFirstReply("Generate", seen)] });
    try {
      const first = { tenantId: "ts-retry", userId: "u", messages: [userMessage("first of two, handed the attempt")] };
      const second = { tenantId: "ts-retry", userId: "u", messages: [userMessage("second of two, handed the attempt")] };
      const [a, b] = await withRetry(async (attempt) => [await client.generate(first, attempt), await client.generate(second, attempt)], {
        timeoutMs: 10_000,
        baseDelayMs: 1,
      });
      assert.equal(seen.length, 3);
      assert.ok(seen[0] !== "" && seen[0] === seen[1] && seen[2] !== seen[1] && seen[2] !== "", `request ids ${JSON.stringify(seen)}`);
      assert.equal(a.summary?.replayed, true);
      assert.equal(b.summary?.requestId, seen[2]);
    } finally {
      client.close();
    }
  });

  test("a request id of the caller's own is kept", async () => {
    const seen: string[] = [];
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [loseFirstReply("Generate", seen)] });
    try {
      const input = { tenantId: "ts-retry", userId: "u", requestId: "mine-1", messages: [userMessage("my own id")] };
      const answer = await withRetry((attempt) => client.generate(input, attempt), { timeoutMs: 10_000, baseDelayMs: 1 });
      assert.deepEqual(seen, ["mine-1", "mine-1"]);
      assert.equal(answer.summary?.replayed, true);
    } finally {
      client.close();
    }
  });

  test("a switch is never retried: a lost reply of an applied Switch, repeated, would undo the one made in between", async () => {
    const plain = new SidecarClient({ address: sidecar.address, token: TOKEN });
    let switches = 0;
    /** The first Switch to helper runs, then another Switch (to critic) runs, then the reply of the first is lost. */
    const interleave: Interceptor = (next) => async (req) => {
      const res = await next(req);
      const message = req.message as unknown as { target?: { value?: unknown }; conversationId: string };
      if (req.method.name === "Switch" && message.target?.value === "helper") {
        switches++;
        await plain.switch({ tenantId: "acme", userId: "u1", conversationId: message.conversationId, target: { case: "personaId", value: "critic" } });
        throw new ConnectError("the reply was lost on the way", Code.Unavailable);
      }
      return res;
    };
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [interleave] });
    try {
      const conversationId = "ts-switch-in-retry";
      const request = { tenantId: "acme", userId: "u1", conversationId, target: { case: "personaId" as const, value: "helper" } };
      await assert.rejects(withRetry((attempt) => client.switch(request, attempt), { timeoutMs: 10_000, baseDelayMs: 1 }), UnavailableError);
      assert.equal(switches, 1);
      const check = await plain.switch({ ...request, target: { case: "personaId", value: "critic" } });
      assert.equal(check.previousPersonaId, "critic", "the Switch made in between was undone");
    } finally {
      client.close();
      plain.close();
    }
  });
});
