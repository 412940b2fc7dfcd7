/**
 * The sidecar killed under open calls, then started again on the same address: the calls it was
 * serving fail as UNAVAILABLE (a stream that had yielded a delta as STREAM interrupted), never as the
 * CANCELLED of a caller's own cancellation, and the same client reaches the new process.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  CancelledError,
  SidecarClient,
  StreamInterruptedError,
  UnavailableError,
  isRetryable,
  messageText,
  userMessage,
} from "../src/index.js";
import { REPO_ROOT, freePort, startSidecar, type RunningSidecar } from "./sidecar-process.js";

const CONFIG = path.join(REPO_ROOT, "tests/contract/sidecar.yaml");
const TOKEN = "contract-token";
const LONG = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ");
const running: RunningSidecar[] = [];

after(async () => {
  for (const sidecar of running) await sidecar.stop();
});

test("calls open when the sidecar dies are UNAVAILABLE, and the client reconnects", async () => {
  const port = await freePort();
  const first = await startSidecar(CONFIG, TOKEN, port);
  running.push(first);
  const client = new SidecarClient({ address: first.address, token: TOKEN });
  try {
    const slow = client.generate({ tenantId: "restart", userId: "u", messages: [userMessage("[[fault:delay_ms=5000]] x")] });
    const outcome = slow.then(() => undefined, (err: unknown) => err);
    const stream = client.stream({ tenantId: "restart", userId: "u", messages: [userMessage(LONG)] });
    const firstEvent = await stream.next();
    assert.equal(firstEvent.value?.event.case, "delta");
    await first.kill();

    const unary = await outcome;
    assert.ok(unary instanceof UnavailableError && !(unary instanceof CancelledError), `unary: ${String(unary)}`);
    assert.equal(isRetryable(unary), true);
    const broken = await stream.next().then(() => undefined, (err: unknown) => err);
    assert.ok(broken instanceof StreamInterruptedError, `stream: ${String(broken)}`);
    assert.equal(isRetryable(broken), false);

    const second = await startSidecar(CONFIG, TOKEN, port);
    running.push(second);
    const answer = await client.generate({ tenantId: "restart", userId: "u", messages: [userMessage("back again")] }, { timeoutMs: 5000 });
    assert.equal(messageText(answer.message), "back again");
  } finally {
    client.close();
  }
});

test("close() while a call is open still ends it as CANCELLED", async () => {
  const sidecar = await startSidecar(CONFIG, TOKEN);
  running.push(sidecar);
  const client = new SidecarClient({ address: sidecar.address, token: TOKEN });
  const slow = client.generate({ tenantId: "restart", userId: "u", messages: [userMessage("[[fault:delay_ms=5000]] x")] });
  const outcome = slow.then(() => undefined, (err: unknown) => err);
  await new Promise((resolve) => setTimeout(resolve, 200));
  client.close();
  assert.ok((await outcome) instanceof CancelledError);
});

test("a transport failure connect codes CANCELLED or ABORTED, without an ErrorInfo, is UNAVAILABLE", async () => {
  const sidecar = await startSidecar(CONFIG, TOKEN);
  running.push(sidecar);
  for (const [code, message] of [
    [Code.Aborted, "read ECONNRESET"],
    [Code.Canceled, "http/2 stream closed with error code CANCEL (0x8)"],
  ] as const) {
    const reset: Interceptor = () => async () => {
      throw new ConnectError(message, code); // what connect-node raises when the socket dies under a call
    };
    const client = new SidecarClient({ address: sidecar.address, token: TOKEN, interceptors: [reset] });
    try {
      const err = await client.generate({ tenantId: "restart", userId: "u", messages: [userMessage("x")] }).catch((e: unknown) => e);
      assert.ok(err instanceof UnavailableError, `${message}: ${String(err)}`);
      assert.equal(isRetryable(err), true);
    } finally {
      client.close();
    }
  }
});

test("a Unix socket that does not exist yet (the sidecar not up) is UNAVAILABLE, and retried", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "sidecar-ts-nosock-"));
  const client = new SidecarClient({ address: `unix://${path.join(dir, "sidecar.sock")}`, token: TOKEN });
  try {
    const err = await client.generate({ tenantId: "restart", userId: "u", messages: [userMessage("x")] }).catch((e: unknown) => e);
    assert.ok(err instanceof UnavailableError, String(err));
    assert.equal(isRetryable(err), true);
  } finally {
    client.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
