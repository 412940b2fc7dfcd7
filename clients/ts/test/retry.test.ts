/** The retry helper on a fake clock: RetryInfo honoured, the deadline bounds it, streams after a delta are not retried. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import {
  CancelledError,
  InvalidRequestError,
  QuotaExceededError,
  TransportLimitError,
  StreamInterruptedError,
  UnavailableError,
  retryDelayMs,
  toSidecarError,
  withRetry,
  withStreamRetry,
  type AttemptOptions,
  type RetryClock,
} from "../src/index.js";
import { REPO_ROOT } from "./sidecar-process.js";

class FakeClock implements RetryClock {
  t = 1_000_000;
  readonly sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
  }
}

function failure(code: Code, reason: string, retryMs?: number): ConnectError {
  const err = new ConnectError("no", code);
  err.details = [{ type: "google.rpc.ErrorInfo", value: toBinary(ErrorInfoSchema, create(ErrorInfoSchema, { reason })) }];
  if (retryMs !== undefined) {
    const delay = { seconds: BigInt(Math.floor(retryMs / 1000)), nanos: (retryMs % 1000) * 1e6 };
    err.details.push({ type: "google.rpc.RetryInfo", value: toBinary(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: delay })) });
  }
  return err;
}

describe("withRetry", () => {
  test("waits RetryInfo's delay on RESOURCE_EXHAUSTED, then succeeds", async () => {
    const clock = new FakeClock();
    let calls = 0;
    const result = await withRetry(async () => {
      if (calls++ === 0) throw failure(Code.ResourceExhausted, "RATE_LIMITED", 1500);
      return "ok";
    }, { clock, timeoutMs: 10_000 });
    assert.equal(result, "ok");
    assert.deepEqual(clock.sleeps, [1500]);
  });

  test("gives up when the RetryInfo delay would pass the deadline", async () => {
    const clock = new FakeClock();
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw failure(Code.ResourceExhausted, "RATE_LIMITED", 3000);
      }, { clock, timeoutMs: 2000 }),
      QuotaExceededError,
    );
    assert.equal(calls, 1);
    assert.deepEqual(clock.sleeps, []);
  });

  test("each attempt gets the time left of the deadline", async () => {
    const clock = new FakeClock();
    const seen: (number | undefined)[] = [];
    await assert.rejects(
      withRetry(async (attempt: AttemptOptions) => {
        seen.push(attempt.timeoutMs);
        clock.t += 100; // the attempt itself takes 100 ms
        throw failure(Code.Unavailable, "PROVIDERS_UNAVAILABLE", 200);
      }, { clock, timeoutMs: 1000, maxAttempts: 10 }),
      UnavailableError,
    );
    assert.deepEqual(seen, [1000, 700, 400, 100]);
  });

  test("a RetryInfo delay longer than maxRetryInfoDelayMs is not waited for", async () => {
    for (const [retryMs, options, sleeps] of [
      [20 * 3600_000, {}, []], // a daily quota's reset, hours away
      [31 * 86_400_000, {}, []], // a monthly one: more than setTimeout can wait (it would fire at once)
      [30_000, {}, [30_000]],
      [5_000, { maxRetryInfoDelayMs: 1_000 }, []],
    ] as const) {
      const clock = new FakeClock();
      let calls = 0;
      await assert.rejects(
        withRetry(async () => {
          calls++;
          throw failure(Code.ResourceExhausted, "TOKEN_QUOTA_EXCEEDED", retryMs);
        }, { clock, maxAttempts: 2, ...options }),
        QuotaExceededError,
      );
      assert.deepEqual(clock.sleeps, sleeps, `RetryInfo ${retryMs} ms`);
      assert.equal(calls, sleeps.length + 1);
    }
  });

  test("a negative RetryInfo delay is no delay at all: the backoff applies", async () => {
    const clock = new FakeClock();
    const err = failure(Code.Unavailable, "PROVIDERS_UNAVAILABLE");
    const negative = { seconds: -5n, nanos: 0 };
    err.details.push({ type: "google.rpc.RetryInfo", value: toBinary(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: negative })) });
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw err;
      }, { clock, maxAttempts: 2, baseDelayMs: 100, random: () => 0 }),
      UnavailableError,
    );
    assert.deepEqual(clock.sleeps, [50]);
  });

  test("RESOURCE_EXHAUSTED without RetryInfo is not retried (a quota with no known reset, an oversized message)", async () => {
    const clock = new FakeClock();
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw new ConnectError("grpc: received message larger than max", Code.ResourceExhausted);
      }, { clock }),
      TransportLimitError,
    );
    assert.equal(calls, 1);
    assert.deepEqual(clock.sleeps, []);
  });

  test("the caller's own error (a bug in the retried function) is thrown as it is, neither retried nor typed as the sidecar's", async () => {
    const clock = new FakeClock();
    let calls = 0;
    const bug = new TypeError("cannot read properties of undefined");
    for (const open of [
      () => withRetry(async () => { calls++; throw bug; }, { clock }),
      async () => { for await (const _ of withStreamRetry(async function* () { calls++; throw bug; }, { clock })) { /* nothing */ } },
    ]) {
      await assert.rejects(open(), (err: unknown) => err === bug);
    }
    assert.equal(calls, 2);
    assert.deepEqual(clock.sleeps, []);
  });

  test("the caller's signal aborting the wait ends it with a CancelledError", async () => {
    const controller = new AbortController();
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        setTimeout(() => controller.abort(), 5);
        throw failure(Code.Unavailable, "PROVIDERS_UNAVAILABLE", 10_000);
      }, { signal: controller.signal }),
      CancelledError,
    );
    assert.equal(calls, 1);
  });

  test("never retries a non-retryable error", async () => {
    const clock = new FakeClock();
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw failure(Code.InvalidArgument, "INVALID_REQUEST");
      }, { clock }),
      InvalidRequestError,
    );
    assert.equal(calls, 1);
  });

  test("bounded by maxAttempts, with capped backoff when there is no RetryInfo", async () => {
    const clock = new FakeClock();
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw failure(Code.Unavailable, "PROVIDERS_UNAVAILABLE");
      }, { clock, maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 300, random: () => 0 }),
      UnavailableError,
    );
    assert.equal(calls, 5);
    assert.deepEqual(clock.sleeps, [50, 100, 150, 150]);
  });

  test("the defaults: 4 attempts, backoff from 100 ms doubling, each wait within [b/2, b]", async () => {
    for (let run = 0; run < 50; run++) {
      const clock = new FakeClock();
      let calls = 0;
      await assert.rejects(
        withRetry(async () => {
          calls++;
          throw failure(Code.Unavailable, "PROVIDERS_UNAVAILABLE");
        }, { clock }),
        UnavailableError,
      );
      assert.equal(calls, 4);
      [100, 200, 400].forEach((ceiling, i) => assert.ok(clock.sleeps[i]! >= ceiling / 2 && clock.sleeps[i]! <= ceiling, `${clock.sleeps}`));
    }
  });
});

interface RetryCase {
  readonly name: string;
  readonly attempt: number;
  readonly max_attempts?: number;
  readonly code: string;
  readonly reason?: string;
  readonly retry_info_ms?: number;
  readonly retry_info?: { readonly seconds: number; readonly nanos: number };
  readonly deadline_left_ms?: number;
  readonly random: number;
  readonly wait_ms: number | null;
}

const CODES: Record<string, Code> = {
  UNAVAILABLE: Code.Unavailable,
  RESOURCE_EXHAUSTED: Code.ResourceExhausted,
  INVALID_ARGUMENT: Code.InvalidArgument,
  DEADLINE_EXCEEDED: Code.DeadlineExceeded,
  INTERNAL: Code.Internal,
};

describe("the shared decision table (tests/contract/retry.yaml)", () => {
  const table = parse(readFileSync(path.join(REPO_ROOT, "tests/contract/retry.yaml"), "utf8")) as { cases: RetryCase[] };
  test("has its cases", () => assert.ok(table.cases.length >= 20));
  for (const c of table.cases) {
    test(c.name, () => {
      const code = CODES[c.code];
      assert.ok(code !== undefined, c.code);
      const sent = failure(code, c.reason ?? "", c.retry_info_ms);
      if (c.retry_info !== undefined) {
        // the Duration as sent, well-formed or not
        const delay = { seconds: BigInt(c.retry_info.seconds), nanos: c.retry_info.nanos };
        sent.details.push({ type: "google.rpc.RetryInfo", value: toBinary(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: delay })) });
      }
      const err = toSidecarError(sent);
      const wait = retryDelayMs(err, c.attempt, c.deadline_left_ms, { maxAttempts: c.max_attempts, random: () => c.random });
      if (c.wait_ms === null) {
        assert.equal(wait, undefined);
      } else {
        assert.ok(wait !== undefined, "gave up");
        assert.equal(Math.round(wait * 1000), Math.round(c.wait_ms * 1000));
      }
    });
  }
});

describe("withStreamRetry", () => {
  test("retries a stream that failed before its first message", async () => {
    const clock = new FakeClock();
    let opens = 0;
    const got: string[] = [];
    for await (const m of withStreamRetry(async function* () {
      if (opens++ === 0) throw failure(Code.Unavailable, "PROVIDERS_UNAVAILABLE", 10);
      yield "a";
      yield "b";
    }, { clock })) {
      got.push(m);
    }
    assert.deepEqual(got, ["a", "b"]);
    assert.equal(opens, 2);
  });

  test("never retries after the first delta", async () => {
    const clock = new FakeClock();
    let opens = 0;
    const got: string[] = [];
    await assert.rejects(async () => {
      for await (const m of withStreamRetry(async function* () {
        opens++;
        yield "a";
        throw failure(Code.Unavailable, "PROVIDERS_UNAVAILABLE", 10);
      }, { clock })) {
        got.push(m);
      }
    }, UnavailableError);
    assert.equal(opens, 1);
    assert.deepEqual(got, ["a"]);
  });

  test("STREAM_INTERRUPTED is never retried", async () => {
    let opens = 0;
    await assert.rejects(async () => {
      for await (const _ of withStreamRetry(async function* (): AsyncGenerator<string> {
        opens++;
        throw failure(Code.Unavailable, "STREAM_INTERRUPTED");
      }, { clock: new FakeClock() })) {
        // nothing arrives
      }
    }, StreamInterruptedError);
    assert.equal(opens, 1);
  });
});
