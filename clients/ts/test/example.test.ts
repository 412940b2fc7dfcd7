/**
 * examples/ts (the same code as the README's "Use" section) built with its own compiler and run
 * against the contract sidecar, as an application developer would run it: it must succeed and print
 * what it promises.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { after, test } from "node:test";
import { REPO_ROOT, startSidecar, type RunningSidecar } from "./sidecar-process.js";

const run = promisify(execFile);
const EXAMPLE = path.join(REPO_ROOT, "examples/ts");
const CONFIG = path.join(REPO_ROOT, "tests/contract/sidecar.yaml");
const TOKEN = "contract-token";
let sidecar: RunningSidecar | undefined;

after(async () => {
  await sidecar?.stop();
});

test("examples/ts runs against a real sidecar", async () => {
  // examples/ts depends on this folder (file:../../clients/ts): its build reads the dist just built
  await run(path.join(EXAMPLE, "node_modules/.bin/tsc"), ["-p", path.join(EXAMPLE, "tsconfig.json")]);
  sidecar = await startSidecar(CONFIG, TOKEN);
  const env = { ...process.env, ORCHESTRATOR_SIDECAR_ADDRESS: sidecar.address, ORCHESTRATOR_SIDECAR_TOKEN: TOKEN };
  const { stdout } = await run(process.execPath, [path.join(EXAMPLE, "dist/main.js")], { env, timeout: 60_000 }).catch(
    (err: { stdout?: string; stderr?: string }) => assert.fail(`the example failed:\n${err.stdout ?? ""}${err.stderr ?? ""}`),
  );
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 3, stdout);
  assert.match(lines[0] ?? "", /^hello \d+$/);
  assert.equal(lines[1], "hello, streaming");
  assert.equal(lines[2], "MODEL_NOT_FOUND: model=no-such-route");
});
