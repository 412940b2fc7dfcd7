/**
 * Every way a TypeScript caller stops a stream ends the upstream attempt, seen from the sidecar's side
 * (ListModels: the echo deployment has no attempt in flight soon after, long before the 4 s the
 * stream would take), and the sidecar counts it as the caller's, not as a provider failure (no
 * last_error on the deployment, its breaker closed). Also: closing the client leaves nothing that
 * keeps the process alive.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { BreakerState, CancelledError, DeadlineExceededError, SidecarClient, userMessage, type DeploymentStatus } from "../src/index.js";
import { REPO_ROOT, startSidecar, type RunningSidecar } from "./sidecar-process.js";

const CONFIG = path.join(REPO_ROOT, "tests/contract/sidecar.yaml");
const TOKEN = (parse(readFileSync(path.join(REPO_ROOT, "tests/contract/scenarios.yaml"), "utf8")) as { token: string }).token;
// 400 words, 2 tokens a chunk every 20 ms on the contract's echo deployment: about 4 s of stream
const LONG = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ");
const input = { tenantId: "acme", userId: "ts-upstream", messages: [userMessage(LONG)] };

async function echoStatus(client: SidecarClient): Promise<DeploymentStatus> {
  const models = await client.listModels();
  const status = models.routes.find((r) => r.alias === "echo")?.deployments[0]?.status;
  assert.ok(status, "the echo deployment's status");
  return status;
}

async function upstreamEnded(client: SidecarClient): Promise<void> {
  const started = Date.now();
  while ((await echoStatus(client)).inFlight !== 0) {
    assert.ok(Date.now() - started < 2000, "the upstream attempt still runs 2 s after the stream was stopped");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const status = await echoStatus(client);
  assert.equal(status.lastError, "", "the caller's stop counted as a provider failure");
  assert.equal(status.breakerState, BreakerState.CLOSED);
}

describe("a stream stopped early, from the sidecar's side", () => {
  let sidecar: RunningSidecar;
  let client: SidecarClient;
  before(async () => {
    sidecar = await startSidecar(CONFIG, TOKEN);
    client = new SidecarClient({ address: sidecar.address, token: TOKEN });
  });
  after(async () => {
    client?.close();
    await sidecar?.stop();
  });

  test("a break out of the loop", async () => {
    for await (const event of client.stream(input, { timeoutMs: 30_000 })) {
      assert.equal(event.event.case, "delta");
      assert.equal((await echoStatus(client)).inFlight, 1);
      break;
    }
    await upstreamEnded(client);
  });

  test("the caller's signal aborted", async () => {
    const caller = new AbortController();
    await assert.rejects(async () => {
      for await (const _ of client.stream(input, { signal: caller.signal, timeoutMs: 30_000 })) caller.abort();
    }, { name: "CancelledError" });
    await upstreamEnded(client);
  });

  test("a unary generate past its deadline, or whose signal is aborted", async () => {
    const slow = { tenantId: "acme", userId: "ts-upstream", messages: [userMessage("[[fault:delay_ms=3000]] slow")] };
    await assert.rejects(client.generate(slow, { timeoutMs: 300 }), DeadlineExceededError);
    await upstreamEnded(client);
    const caller = new AbortController();
    const call = client.generate(slow, { signal: caller.signal, timeoutMs: 30_000 });
    while ((await echoStatus(client)).inFlight !== 1) await new Promise((resolve) => setTimeout(resolve, 20));
    caller.abort();
    await assert.rejects(call, CancelledError);
    await upstreamEnded(client);
  });

  test("the client closed under an open stream", async () => {
    const own = new SidecarClient({ address: sidecar.address, token: TOKEN });
    await assert.rejects(async () => {
      for await (const _ of own.stream(input, { timeoutMs: 30_000 })) own.close();
    }, { name: "CancelledError" });
    await upstreamEnded(client);
  });
});
