/** The contract scenario format (tests/contract/scenarios.yaml, see CONTRACT.md) and its matchers. */
import { codeName, QuotaExceededError, SidecarError, StreamInterruptedError } from "../src/index.js";

export interface Expectation {
  readonly ok?: boolean;
  readonly text?: string;
  readonly events?: readonly string[];
  readonly response?: unknown;
  readonly code?: string;
  readonly reason?: string;
  readonly metadata_keys?: readonly string[];
  readonly field_violations?: readonly string[];
  readonly retry_info?: boolean;
  readonly quota_failure?: boolean;
  readonly deltas_before_error?: number;
  readonly partial_usage?: boolean;
  readonly cancelled?: boolean;
}

export interface Scenario {
  readonly id: string;
  readonly rpc: string;
  readonly auth?: boolean;
  readonly deadline_ms?: number;
  readonly cancel_after_deltas?: number;
  readonly request?: Record<string, unknown>;
  readonly expect: Expectation;
}

export interface ScenarioFile {
  readonly version: number;
  readonly token: string;
  readonly scenarios: readonly Scenario[];
}

/** What a scenario's call produced, in the terms of the expectations. */
export interface Outcome {
  readonly error?: unknown;
  readonly response?: unknown; // proto3 JSON of the (final) response
  readonly text?: string;
  readonly events?: readonly string[];
  readonly deltas: number;
  readonly cancelledByClient: boolean;
}

/** Every way the outcome differs from the expectation; empty when it matches. */
export function mismatches(expect: Expectation, outcome: Outcome): string[] {
  const wantsError = expect.code !== undefined || expect.reason !== undefined || expect.cancelled === true;
  if (!wantsError) {
    return outcome.error === undefined ? successMismatches(expect, outcome) : [`expected success, got ${String(outcome.error)}`];
  }
  if (!(outcome.error instanceof SidecarError)) {
    return [`expected an error (${expect.code ?? ""}/${expect.reason ?? ""}), got ${outcome.error === undefined ? "success" : String(outcome.error)}`];
  }
  return errorMismatches(expect, outcome.error, outcome);
}

function successMismatches(expect: Expectation, outcome: Outcome): string[] {
  const problems: string[] = [];
  if (expect.text !== undefined && outcome.text !== expect.text) {
    problems.push(`text: want ${JSON.stringify(expect.text)}, got ${JSON.stringify(outcome.text)}`);
  }
  if (expect.events !== undefined && !eventsMatch(expect.events, outcome.events ?? [])) {
    problems.push(`events: want ${expect.events.join(",")}, got ${(outcome.events ?? []).join(",")}`);
  }
  if (expect.response !== undefined) {
    problems.push(...subsetMismatches(expect.response, outcome.response, "response"));
  }
  return problems;
}

function errorMismatches(expect: Expectation, err: SidecarError, outcome: Outcome): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, what: string): void => {
    if (!ok) problems.push(`${what} (got ${err.message}, metadata ${JSON.stringify(err.metadata)})`);
  };
  if (expect.code !== undefined) check(codeName(err.code) === expect.code, `code: want ${expect.code}`);
  if (expect.reason !== undefined) check(err.reason === expect.reason, `reason: want ${expect.reason}, got ${err.reason}`);
  for (const key of expect.metadata_keys ?? []) check(key in err.metadata, `metadata key ${key} missing`);
  const fields = err.fieldViolations.map((v) => v.field);
  for (const field of expect.field_violations ?? []) check(fields.includes(field), `field violation ${field} missing from [${fields.join(", ")}]`);
  if (expect.retry_info !== undefined) check((err.retryDelayMs !== undefined) === expect.retry_info, `retry_info: want ${expect.retry_info}`);
  if (expect.quota_failure !== undefined) check((err.quotaViolations.length > 0) === expect.quota_failure, `quota_failure: want ${expect.quota_failure}`);
  if (expect.quota_failure === true) check(err instanceof QuotaExceededError, `the caller's quota is not a QuotaExceededError: ${err.name}`);
  if (expect.deltas_before_error !== undefined) check(outcome.deltas >= expect.deltas_before_error, `deltas before error: want >= ${expect.deltas_before_error}, got ${outcome.deltas}`);
  if (expect.partial_usage !== undefined) {
    const has = err instanceof StreamInterruptedError && err.partialUsage !== undefined;
    check(has === expect.partial_usage, `partial_usage: want ${expect.partial_usage}`);
  }
  if (expect.cancelled !== undefined) check(outcome.cancelledByClient === expect.cancelled && codeName(err.code) === "CANCELLED", `cancelled: want ${expect.cancelled}`);
  return problems;
}

/** `delta+` matches one or more consecutive deltas; every other kind matches itself once. */
export function eventsMatch(pattern: readonly string[], actual: readonly string[]): boolean {
  let i = 0;
  for (const want of pattern) {
    if (want.endsWith("+")) {
      const kind = want.slice(0, -1);
      if (actual[i] !== kind) return false;
      while (actual[i] === kind) i++;
    } else {
      if (actual[i] !== want) return false;
      i++;
    }
  }
  return i === actual.length;
}

/**
 * Subset match of proto3 JSON: every key given must be present and equal; a list must have at least
 * the given elements, each matched at its index; scalars compare by their string form (int64 is a
 * JSON string).
 */
export function subsetMismatches(want: unknown, got: unknown, at: string): string[] {
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length < want.length) {
      return [`${at}: want a list of at least ${want.length}, got ${JSON.stringify(got)}`];
    }
    return want.flatMap((w, i) => subsetMismatches(w, got[i], `${at}[${i}]`));
  }
  if (want !== null && typeof want === "object") {
    if (got === null || typeof got !== "object" || Array.isArray(got)) {
      return [`${at}: want an object, got ${JSON.stringify(got)}`];
    }
    const obj = got as Record<string, unknown>;
    return Object.entries(want).flatMap(([k, w]) =>
      k in obj ? subsetMismatches(w, obj[k], `${at}.${k}`) : [`${at}.${k}: missing`],
    );
  }
  return String(want) === String(got) ? [] : [`${at}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`];
}
