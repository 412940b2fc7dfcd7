/** Starts a real sidecar (`<repo>/.venv/bin/sidecar serve`) on free ports for the tests, and stops it. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { isServing } from "./health.js";

/** The repository root: this file is clients/ts/build-test/test/sidecar-process.js once compiled. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");

export interface RunningSidecar {
  readonly address: string;
  readonly unixAddress: string;
  stop(): Promise<void>;
  /** SIGKILL: the sidecar dies under its open calls, as in a crash or an OOM kill. */
  kill(): Promise<void>;
  output(): string;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The sidecar's config names its token by reference (`auth.token: {env: NAME}`): the variable it
 * names gets the scenarios' token.
 */
function tokenEnv(configPath: string, token: string): Record<string, string> {
  const config = parse(readFileSync(configPath, "utf8")) as { settings?: { auth?: { token?: { env?: string } } } };
  const name = config.settings?.auth?.token?.env;
  return name ? { [name]: token } : {};
}

export async function startSidecar(configPath: string, token: string, port?: number): Promise<RunningSidecar> {
  port ??= await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "sidecar-ts-"));
  const socket = path.join(dir, "sidecar.sock");
  let log = "";
  const child: ChildProcess = spawn(path.join(REPO_ROOT, ".venv/bin/sidecar"), ["serve", "--config", configPath], {
    cwd: dir,
    env: {
      ...process.env,
      ...tokenEnv(configPath, token),
      SIDECAR__SETTINGS__LISTEN__ADDRESS: `127.0.0.1:${port}`,
      SIDECAR__SETTINGS__LISTEN__UNIX_SOCKET: socket,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running: RunningSidecar = {
    address: `127.0.0.1:${port}`,
    unixAddress: `unix://${socket}`,
    output: () => log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitServing(running, () => child.exitCode !== null);
  } catch (err) {
    await running.stop();
    throw new Error(`sidecar did not start: ${String(err)}\n${log}`);
  }
  return running;
}

/** Polls grpc.health.v1.Health/Check until it answers SERVING, for at most 60 s. */
async function waitServing(sidecar: RunningSidecar, exited: () => boolean): Promise<void> {
  const giveUp = Date.now() + 60_000;
  while (!(await isServing(sidecar.address, 1000))) {
    if (exited()) {
      throw new Error("the sidecar process exited");
    }
    if (Date.now() > giveUp) {
      throw new Error("Health/Check did not answer SERVING within 60 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
