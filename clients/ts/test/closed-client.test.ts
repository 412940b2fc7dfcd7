/**
 * A call on a closed client fails at once with a CancelledError, never retried, and opens no
 * connection: it connected again (a session the application believed closed), as if close() had
 * not been called; the Go client fails such a call CANCELLED, and now Java and Python do too.
 */
import assert from "node:assert/strict";
import * as net from "node:net";
import { test } from "node:test";
import { CancelledError, SidecarClient, isRetryable, userMessage } from "../src/index.js";

test("a call on a closed client is CANCELLED and opens no connection", async () => {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = new SidecarClient({ address: `127.0.0.1:${port}`, token: null });
  client.close();
  try {
    const ask = { tenantId: "acme", userId: "u", messages: [userMessage("after close")] };
    for (const call of [
      () => client.generate(ask, { timeoutMs: 2000 }),
      async () => { for await (const _ of client.stream(ask, { timeoutMs: 2000 })) { /* nothing */ } },
      () => client.getQuota({ tenantId: "acme", userId: "u" }, { timeoutMs: 2000 }),
    ]) {
      await assert.rejects(call(), (err: unknown) => err instanceof CancelledError && !isRetryable(err) && /closed/.test(err.message));
    }
    assert.equal(connections, 0);
  } finally {
    server.close();
  }
});
