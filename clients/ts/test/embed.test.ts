/**
 * SidecarClient.embed against a real sidecar: vectors per text, retried through withRetry, and a bad
 * batch as a typed InvalidRequestError naming the field.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { InvalidRequestError, SidecarClient, withRetry } from "../src/index.js";
import { REPO_ROOT, startSidecar, type RunningSidecar } from "./sidecar-process.js";

const TOKEN = "contract-token";
let sidecar: RunningSidecar;
let client: SidecarClient;

before(async () => {
  sidecar = await startSidecar(path.join(REPO_ROOT, "tests/contract/sidecar.yaml"), TOKEN);
  client = new SidecarClient({ address: sidecar.address, token: TOKEN, timeoutMs: 10_000 });
});

after(async () => {
  client?.close();
  await sidecar?.stop();
});

test("embed returns one unit vector per text, through withRetry", async () => {
  const texts = ["a cat", "a dog"];
  const reply = await withRetry((attempt) => client.embed({ tenantId: "ts", userId: "u", texts }, attempt), { timeoutMs: 10_000 });
  assert.equal(reply.embeddings.length, 2);
  assert.ok(reply.normalized);
  for (const e of reply.embeddings) assert.equal(e.values.length, reply.dimensions);
  const again = await client.embed({ tenantId: "ts", userId: "u", texts: ["a cat"] });
  assert.equal(again.cachedTexts, 1);
});

test("a bad batch is an InvalidRequestError naming the field", async () => {
  await assert.rejects(client.embed({ tenantId: "ts", userId: "u", texts: [] }), (err: unknown) => {
    assert.ok(err instanceof InvalidRequestError);
    assert.deepEqual(err.fieldViolations.map((v) => v.field), ["texts"]);
    return true;
  });
});
