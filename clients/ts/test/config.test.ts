/** Address and token defaults. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseAddress } from "../src/index.js";
import { resolveAddress, resolveToken } from "../src/config.js";

test("addresses: host:port, [v6]:port, unix:///path, unix:/path", () => {
  assert.deepEqual(parseAddress("127.0.0.1:50051"), { kind: "tcp", host: "127.0.0.1", port: 50051 });
  assert.deepEqual(parseAddress("[::1]:7"), { kind: "tcp", host: "::1", port: 7 });
  assert.deepEqual(parseAddress("unix:///run/s.sock"), { kind: "unix", path: "/run/s.sock" });
  assert.deepEqual(parseAddress("unix:/run/s.sock"), { kind: "unix", path: "/run/s.sock" });
  for (const bad of ["localhost", "host:0", "host:99999", "unix://relative", ""]) {
    assert.throws(() => parseAddress(bad), TypeError, bad);
  }
});

test("defaults: explicit, else the environment, else 127.0.0.1:50051 and no token", () => {
  const env = { ORCHESTRATOR_SIDECAR_ADDRESS: "unix:///s", ORCHESTRATOR_SIDECAR_TOKEN: "t" };
  assert.equal(resolveAddress(undefined, {}), "127.0.0.1:50051");
  assert.equal(resolveAddress(undefined, env), "unix:///s");
  assert.equal(resolveAddress("h:1", env), "h:1");
  assert.equal(resolveToken(undefined, env), "t");
  assert.equal(resolveToken(null, env), undefined);
  assert.equal(resolveToken("x", env), "x");
  assert.equal(resolveToken("", env), undefined); // never an empty "Bearer "
  assert.equal(resolveToken(undefined, {}), undefined);
});

test("tokens: surrounding whitespace (a secret file's newline) dropped, one a header cannot carry refused unseen", () => {
  assert.equal(resolveToken("  t\n", {}), "t");
  assert.equal(resolveToken(undefined, { ORCHESTRATOR_SIDECAR_TOKEN: "t\n" }), "t");
  assert.equal(resolveToken(" \n", {}), undefined);
  for (const bad of ["a\nb", "tok\u0000", "t\u00e9"]) {
    assert.throws(
      () => resolveToken(bad, {}),
      (err: unknown) => err instanceof TypeError && err.message.includes("token") && !err.message.includes(bad),
      JSON.stringify(bad),
    );
  }
});
