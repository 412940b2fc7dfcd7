/** Address and token defaults. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { parseAddress } from "../src/index.js";
import { REPO_ROOT } from "./sidecar-process.js";
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

test("the shared address table (tests/contract/addresses.yaml): the same addresses taken and refused as in every client", () => {
  const table = parse(readFileSync(path.join(REPO_ROOT, "tests/contract/addresses.yaml"), "utf8")) as {
    unix: Record<string, string>;
    tcp: string[];
    refused: string[];
  };
  for (const [address, socket] of Object.entries(table.unix)) {
    assert.deepEqual(parseAddress(address), { kind: "unix", path: socket }, JSON.stringify(address));
  }
  for (const address of table.tcp) {
    assert.equal(parseAddress(address).kind, "tcp", address);
  }
  for (const address of table.refused) {
    assert.throws(() => parseAddress(address), (err: unknown) => err instanceof TypeError && err.message.includes("sidecar address"), JSON.stringify(address));
  }
});
