/**
 * Opt-in retries, the clients' one policy (clients/README.md, "Retries"; the same in Go, Java and
 * Python). A unary call is retried on UNAVAILABLE and RESOURCE_EXHAUSTED, after the server's
 * RetryInfo delay when it sent one, never jittered (else, on UNAVAILABLE only, a backoff doubling
 * from 100 ms, capped at 5 s, jittered to between half of it and all of it), never past the caller's
 * overall deadline; a Switch never. A stream is retried only while nothing has been yielded to the caller.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { SidecarError, StreamInterruptedError, isNeverRetried, toSidecarError } from "./errors.js";

/** The time source and sleep of the retry loop (injected so tests never sleep). */
export interface RetryClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  readonly maxAttempts?: number;
  /** Overall deadline of every attempt and wait together, in milliseconds from now. */
  readonly timeoutMs?: number;
  /** Aborts the current attempt and any wait. */
  readonly signal?: AbortSignal;
  /** First backoff when the server gave no RetryInfo (default 100 ms, doubling). */
  readonly baseDelayMs?: number;
  /** Cap of the backoff when the server gave no RetryInfo (default 5 s). */
  readonly maxDelayMs?: number;
  /** A longer RetryInfo delay is not waited for: the error is thrown (default 30 s). */
  readonly maxRetryInfoDelayMs?: number;
  readonly clock?: RetryClock;
  /** A number in [0, 1) for the jitter (clamped to [0, 1]; default Math.random): inject it for deterministic tests. */
  readonly random?: () => number;
}

/**
 * What each attempt gets: the time left of the overall deadline, the caller's signal, and the
 * retry's first request id, the same in every attempt (SidecarClient's `generate` and `embed` handed
 * these options send the retry's ids, one per call in call order, as the request's `requestId` when
 * it has none, so a retried call is replayed by the sidecar, not charged twice).
 */
export interface AttemptOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly requestId: string;
}

export const systemClock: RetryClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

/**
 * True for the failures a retry may fix: UNAVAILABLE (but not a broken stream), and
 * RESOURCE_EXHAUSTED with a RetryInfo (the sidecar sends one when waiting helps; gRPC's own
 * RESOURCE_EXHAUSTED, a message over the size limit, has none and fails the same way again). Never a
 * Switch's failure: an UNAVAILABLE Switch may have been applied, and a repeat would take a newer
 * version than, and so undo, any Switch of the conversation made in between.
 */
export function isRetryable(err: SidecarError): boolean {
  if (err instanceof StreamInterruptedError || isNeverRetried(err)) {
    return false;
  }
  return err.code === Code.Unavailable || (err.code === Code.ResourceExhausted && err.retryDelayMs !== undefined);
}

/**
 * The wait in milliseconds before the attempt after `attempt` (1 = the first) failed with `err`, or
 * undefined to give up: not retryable, no attempt left, a RetryInfo delay over
 * `maxRetryInfoDelayMs`, or a wait ending at or past the deadline (`remainingMs` left; undefined: none).
 */
export function retryDelayMs(err: SidecarError, attempt: number, remainingMs: number | undefined, options: RetryOptions = {}): number | undefined {
  if (!isRetryable(err) || attempt >= (options.maxAttempts ?? 4)) {
    return undefined;
  }
  if (err.retryDelayMs !== undefined && err.retryDelayMs > (options.maxRetryInfoDelayMs ?? 30_000)) {
    return undefined; // e.g. a daily quota: waiting hours inside one call helps no caller
  }
  const delay = err.retryDelayMs ?? backoffMs(attempt, options);
  if (remainingMs !== undefined && delay >= remainingMs) {
    return undefined; // the next attempt could not start before the deadline
  }
  return delay;
}

/**
 * floor(b * (0.5 + 0.5 r)) in whole microseconds, b = min(maxDelayMs, baseDelayMs * 2^(attempt-1)):
 * the same double-precision operations as the other clients, equal to the microsecond.
 */
function backoffMs(attempt: number, options: RetryOptions): number {
  const limit = Math.round((options.maxDelayMs ?? 5000) * 1000);
  let ceiling = Math.round((options.baseDelayMs ?? 100) * 1000);
  for (let i = 1; i < attempt && ceiling < limit; i++) {
    ceiling *= 2;
  }
  ceiling = Math.min(ceiling, limit);
  const drawn = (options.random ?? Math.random)();
  const r = drawn >= 0 ? Math.min(drawn, 1) : 0; // NaN too
  return Math.floor(ceiling * (0.5 + 0.5 * r)) / 1000;
}

/**
 * The request ids of one `withRetry`, seen by the calls its attempts make: one per Generate or Embed
 * sent without a request id of its own, in call order, the same ids in every attempt. SidecarClient
 * sends them (its `generate` and `embed`, and its generated clients' Generate and Embed), so a retried
 * call is replayed by the sidecar, never generated and charged again, even when the retried function
 * does not hand the call its `attempt` (`withRetry(() => client.generate(input))`).
 */
class RequestIds {
  private readonly ids: string[];
  private next = 0;

  /** `first` is the attempts' `requestId`: the first call of each attempt sends it. */
  constructor(readonly first: string) {
    this.ids = [first];
  }

  restart(): void {
    this.next = 0;
  }

  take(): string {
    if (this.next === this.ids.length) this.ids.push(newRequestId());
    return this.ids[this.next++]!;
  }
}

const retried = new AsyncLocalStorage<RequestIds>();

/** The next request id of the `withRetry` the current call runs in, or undefined outside one. */
export function retryRequestId(): string | undefined {
  return retried.getStore()?.take();
}

/**
 * The request id a call handed `options` sends when its request has none: inside the `withRetry` whose
 * attempt `options` is, the retry's next one (a second call handed the same attempt gets an id of its
 * own, the same in every attempt, never the first call's), else `options.requestId`.
 */
export function requestIdFor(options: { readonly requestId?: string } | undefined): string | undefined {
  const store = retried.getStore();
  if (options?.requestId !== undefined && store !== undefined && options.requestId === store.first) {
    return store.take();
  }
  return options?.requestId;
}

function newRequestId(): string {
  return randomUUID().replaceAll("-", "");
}

/** Runs `call` until it succeeds, fails for good, runs out of attempts, or the next wait would pass the deadline. */
export async function withRetry<T>(call: (attempt: AttemptOptions) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const plan = new RetryPlan(options);
  const ids = new RequestIds(plan.requestId);
  for (let attempt = 1; ; attempt++) {
    ids.restart();
    try {
      return await retried.run(ids, () => call(plan.attemptOptions()));
    } catch (thrown) {
      await plan.waitBeforeRetry(callFailure(thrown), attempt);
    }
  }
}

/**
 * A failed call's typed error: a SidecarError, or a ConnectError of the generated clients. Anything
 * else is the caller's own (a bug in the retried function): thrown as it is, never typed as the
 * sidecar's nor retried.
 */
function callFailure(thrown: unknown): SidecarError {
  if (thrown instanceof SidecarError || thrown instanceof ConnectError) {
    return toSidecarError(thrown);
  }
  throw thrown;
}

/**
 * Opens a stream through `open` and yields its messages; a failure before the first message is
 * retried like a unary call, a failure after it is thrown as is (the caller has seen part of the answer).
 */
export async function* withStreamRetry<T>(
  open: (attempt: AttemptOptions) => AsyncIterable<T>,
  options: RetryOptions = {},
): AsyncGenerator<T, void, undefined> {
  const plan = new RetryPlan(options);
  for (let attempt = 1; ; attempt++) {
    let yielded = false;
    try {
      for await (const message of open(plan.attemptOptions())) {
        yielded = true;
        yield message;
      }
      return;
    } catch (thrown) {
      const err = callFailure(thrown);
      if (yielded) {
        throw err;
      }
      await plan.waitBeforeRetry(err, attempt);
    }
  }
}

class RetryPlan {
  private readonly clock: RetryClock;
  private readonly deadline: number | undefined;
  readonly requestId = newRequestId();

  constructor(private readonly options: RetryOptions) {
    this.clock = options.clock ?? systemClock;
    this.deadline = options.timeoutMs === undefined ? undefined : this.clock.now() + options.timeoutMs;
  }

  attemptOptions(): AttemptOptions {
    const remaining = this.deadline === undefined ? undefined : Math.max(1, this.deadline - this.clock.now());
    return { timeoutMs: remaining, signal: this.options.signal, requestId: this.requestId };
  }

  /** Waits the delay before the next attempt, or throws `err` when there must be none. */
  async waitBeforeRetry(err: SidecarError, attempt: number): Promise<void> {
    if (this.options.signal?.aborted) {
      throw err;
    }
    const remaining = this.deadline === undefined ? undefined : this.deadline - this.clock.now();
    const delay = retryDelayMs(err, attempt, remaining, this.options);
    if (delay === undefined) {
      throw err;
    }
    try {
      await this.clock.sleep(delay, this.options.signal);
    } catch (aborted) {
      throw toSidecarError(aborted); // the caller's signal, during the wait: a CancelledError
    }
  }
}
