/** Where the sidecar is and which token to send: explicit options, else the environment, else defaults. */

export const DEFAULT_ADDRESS = "127.0.0.1:50051";
export const ADDRESS_ENV = "ORCHESTRATOR_SIDECAR_ADDRESS";
export const TOKEN_ENV = "ORCHESTRATOR_SIDECAR_TOKEN";

/** A parsed sidecar address: a TCP host and port, or a Unix domain socket path. */
export type Endpoint =
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string };

/**
 * Parses `host:port`, `[::1]:port`, `unix:///abs/path`, `unix:/abs/path` or a bare absolute path (a
 * Unix socket, as in the Go and Python clients: tests/contract/addresses.yaml).
 * Throws a TypeError naming the address when it is none of those.
 */
export function parseAddress(address: string): Endpoint {
  const trimmed = address.trim();
  if (trimmed.startsWith("/")) {
    return { kind: "unix", path: trimmed };
  }
  if (trimmed.startsWith("unix:")) {
    const path = trimmed.startsWith("unix://") ? trimmed.slice("unix://".length) : trimmed.slice("unix:".length);
    if (!path.startsWith("/")) {
      throw new TypeError(`sidecar address ${JSON.stringify(address)}: a Unix socket path must be absolute`);
    }
    return { kind: "unix", path };
  }
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/]+)):(\d{1,5})$/.exec(trimmed);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new TypeError(`sidecar address ${JSON.stringify(address)}: expected host:port, unix:///path or an absolute path`);
  }
  return { kind: "tcp", host: match[1] ?? match[2] ?? "", port };
}

/** The address to use: the explicit one, else $ORCHESTRATOR_SIDECAR_ADDRESS, else 127.0.0.1:50051. */
export function resolveAddress(explicit: string | undefined, env: NodeJS.ProcessEnv): string {
  return explicit ?? (env[ADDRESS_ENV] || DEFAULT_ADDRESS);
}

/**
 * The token to send: the explicit one (`null` sends none), else $ORCHESTRATOR_SIDECAR_TOKEN, else none;
 * without surrounding whitespace (a secret file's newline). A token an HTTP header cannot carry is a
 * TypeError that does not show it.
 */
export function resolveToken(explicit: string | null | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (explicit === null) {
    return undefined;
  }
  const token = (explicit ?? env[TOKEN_ENV] ?? "").trim();
  if (/[^\x20-\x7e]/.test(token)) {
    throw new TypeError("the sidecar token has characters an HTTP header cannot carry (control or non-ASCII)");
  }
  return token || undefined; // "" sends none, as in the other clients, never "Bearer " alone
}
