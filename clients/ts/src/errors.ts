/**
 * Typed errors: a failed call's google.rpc.Status (from `grpc-status-details-bin`) decoded once into
 * one class per ErrorInfo.reason family, matched with `instanceof`. A missing or malformed details
 * payload gives the family of the gRPC code with empty details, never an exception of its own.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  QuotaFailureSchema,
  RequestInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

/** One bad request field, from google.rpc.BadRequest. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** One exhausted limit, from google.rpc.QuotaFailure. */
export interface QuotaViolation {
  readonly subject: string;
  readonly description: string;
}

/** What a broken stream had used when it failed (STREAM_INTERRUPTED), counted by the sidecar. */
export interface PartialUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly estimated: boolean;
}

/** The resource an error is about, from google.rpc.ResourceInfo. */
export interface ResourceRef {
  readonly resourceType: string;
  readonly resourceName: string;
  readonly description: string;
}

/** The decoded parts of a failed call. */
export interface ErrorDetails {
  readonly code: Code;
  readonly message: string;
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly retryDelayMs: number | undefined;
  readonly fieldViolations: readonly FieldViolation[];
  readonly quotaViolations: readonly QuotaViolation[];
  readonly resource: ResourceRef | undefined;
  readonly requestId: string | undefined;
}

/** Base class of every error the client raises for a failed call. */
export class SidecarError extends Error {
  /** The gRPC status code (connect's `Code`, numerically the gRPC code). */
  readonly code: Code;
  /** The gRPC status code's canonical name, e.g. `UNAVAILABLE`. */
  readonly codeName: string;
  /** The stable ErrorInfo.reason (empty when the status had no ErrorInfo). */
  readonly reason: string;
  readonly domain: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** RetryInfo.retry_delay in milliseconds, when the sidecar sent one. */
  readonly retryDelayMs: number | undefined;
  readonly fieldViolations: readonly FieldViolation[];
  readonly quotaViolations: readonly QuotaViolation[];
  readonly resource: ResourceRef | undefined;
  readonly requestId: string | undefined;

  constructor(details: ErrorDetails, options?: { cause?: unknown }) {
    super(`${codeName(details.code)}${details.reason ? `/${details.reason}` : ""}: ${details.message}`, options);
    this.name = new.target.name;
    this.code = details.code;
    this.codeName = codeName(details.code);
    this.reason = details.reason;
    this.domain = details.domain;
    this.metadata = details.metadata;
    this.retryDelayMs = details.retryDelayMs;
    this.fieldViolations = details.fieldViolations;
    this.quotaViolations = details.quotaViolations;
    this.resource = details.resource;
    this.requestId = details.requestId;
  }
}

/** Marks the failure of a call no retry may repeat (see `isRetryable`); not exported from the package. */
const NEVER_RETRIED = Symbol("orchestrator.neverRetried");

/** `err`, marked so that `isRetryable` is false for it (the client's `switch` marks its failures). */
export function markNeverRetried(err: SidecarError): SidecarError {
  Object.defineProperty(err, NEVER_RETRIED, { value: true });
  return err;
}

export function isNeverRetried(err: SidecarError): boolean {
  return (err as unknown as Record<symbol, unknown>)[NEVER_RETRIED] === true;
}

/** INVALID_ARGUMENT: the request itself is wrong (INVALID_REQUEST, CONTEXT_TOO_LONG, PERSONA_NOT_FOUND, ...). */
export class InvalidRequestError extends SidecarError {}
/** NOT_FOUND: MODEL_NOT_FOUND and other unknown resources. */
export class NotFoundError extends SidecarError {}
/** UNAUTHENTICATED: MISSING_CREDENTIALS / INVALID_CREDENTIALS. */
export class AuthenticationError extends SidecarError {}
/** PERMISSION_DENIED: MODEL_NOT_ALLOWED, TENANT_NOT_ALLOWED, PERSONA_NOT_ALLOWED, key mismatches. */
export class PermissionDeniedError extends SidecarError {}
/** RESOURCE_EXHAUSTED with the sidecar's reason: the caller's own quota (RATE_LIMITED, *_QUOTA_EXCEEDED, ...), with QuotaFailure and RetryInfo. */
export class QuotaExceededError extends SidecarError {}
/**
 * RESOURCE_EXHAUSTED from gRPC itself, without the sidecar's ErrorInfo: a message over a size limit (a
 * reply over this client's `maxReplyBytes`, a request over the sidecar's `settings.max_receive_message_bytes`)
 * or the sidecar's limit of concurrent calls. Not the caller's quota; never retried (no RetryInfo).
 */
export class TransportLimitError extends SidecarError {}
/** FAILED_PRECONDITION: USER_KEY_REQUIRED, KEYS_DISABLED, LEDGER_DISABLED. */
export class PreconditionError extends SidecarError {}
/** ABORTED: SWITCH_SUPERSEDED, a conflicting concurrent change. */
export class ConflictError extends SidecarError {}
/** UNAVAILABLE: PROVIDERS_UNAVAILABLE and unreachable stores; retryable, often with RetryInfo. */
export class UnavailableError extends SidecarError {}
/**
 * UNAVAILABLE / STREAM_INTERRUPTED, or the connection broken after a delta: a stream failed after its
 * first delta; carries the partial usage (undefined when the sidecar could not send it).
 */
export class StreamInterruptedError extends UnavailableError {
  readonly partialUsage: PartialUsage | undefined;

  constructor(details: ErrorDetails, options?: { cause?: unknown }) {
    super(details, options);
    this.partialUsage = partialUsage(details.metadata);
  }
}
/** DEADLINE_EXCEEDED: the caller's deadline passed. */
export class DeadlineExceededError extends SidecarError {}
/** CANCELLED: the caller aborted the call. */
export class CancelledError extends SidecarError {}
/** INTERNAL, UNKNOWN, DATA_LOSS and anything else: a bug or a misconfiguration; quote requestId. */
export class InternalError extends SidecarError {}

type ErrorClass = new (details: ErrorDetails, options?: { cause?: unknown }) => SidecarError;

const BY_REASON: Readonly<Record<string, ErrorClass>> = { STREAM_INTERRUPTED: StreamInterruptedError };

const BY_CODE: ReadonlyMap<Code, ErrorClass> = new Map<Code, ErrorClass>([
  [Code.InvalidArgument, InvalidRequestError],
  [Code.OutOfRange, InvalidRequestError],
  [Code.NotFound, NotFoundError],
  [Code.Unauthenticated, AuthenticationError],
  [Code.PermissionDenied, PermissionDeniedError],
  [Code.ResourceExhausted, QuotaExceededError],
  [Code.FailedPrecondition, PreconditionError],
  [Code.Aborted, ConflictError],
  [Code.AlreadyExists, ConflictError],
  [Code.Unavailable, UnavailableError],
  [Code.DeadlineExceeded, DeadlineExceededError],
  [Code.Canceled, CancelledError],
]);

const CODE_NAMES: Readonly<Record<number, string>> = {
  0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
  6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
  10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
  15: "DATA_LOSS", 16: "UNAUTHENTICATED",
};

/** The canonical name of a gRPC code, e.g. `NOT_FOUND`. */
export function codeName(code: Code): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}

/**
 * Turns anything a call threw into a SidecarError (the same object when it already is one).
 * Decodes the details once; never throws. `deltasBefore` is how many deltas a stream had yielded:
 * an UNAVAILABLE after one, without a reason (the connection broken, the sidecar killed), is a
 * StreamInterruptedError like the one the sidecar reports, since the caller has seen part of the answer.
 */
export function toSidecarError(thrown: unknown, deltasBefore = 0): SidecarError {
  if (thrown instanceof SidecarError) {
    return thrown;
  }
  const err = ConnectError.from(thrown);
  const details = decodeDetails(err);
  const broken = deltasBefore > 0 && details.code === Code.Unavailable && details.reason === "";
  let cls = broken ? StreamInterruptedError : (BY_REASON[details.reason] ?? BY_CODE.get(details.code) ?? InternalError);
  if (cls === QuotaExceededError && details.reason === "") {
    cls = TransportLimitError; // gRPC's own refusal: the sidecar's quota errors always say which limit
  }
  return new cls(details, { cause: thrown });
}

/** Decodes the google.rpc details a ConnectError carries; malformed entries are skipped. */
export function decodeDetails(err: ConnectError): ErrorDetails {
  const info = first(err, ErrorInfoSchema);
  const retry = first(err, RetryInfoSchema);
  const resource = first(err, ResourceInfoSchema);
  const delay = retry?.retryDelay;
  return {
    code: err.code,
    message: err.rawMessage,
    reason: info?.reason ?? "",
    domain: info?.domain ?? "",
    metadata: { ...(info?.metadata ?? {}) },
    // to the nanosecond, as the other clients: a delay rounded up to the millisecond could pass the deadline
    retryDelayMs: delay && delay.seconds >= 0n && delay.nanos >= 0 ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : undefined,
    fieldViolations: safeFind(err, BadRequestSchema).flatMap((b) =>
      b.fieldViolations.map((v) => ({ field: v.field, description: v.description })),
    ),
    quotaViolations: safeFind(err, QuotaFailureSchema).flatMap((q) =>
      q.violations.map((v) => ({ subject: v.subject, description: v.description })),
    ),
    resource: resource && {
      resourceType: resource.resourceType,
      resourceName: resource.resourceName,
      description: resource.description,
    },
    requestId: first(err, RequestInfoSchema)?.requestId,
  };
}

function partialUsage(metadata: Readonly<Record<string, string>>): PartialUsage | undefined {
  const prompt = tokenCount(metadata["promptTokens"]);
  const completion = tokenCount(metadata["completionTokens"]);
  if (prompt === undefined || completion === undefined) {
    return undefined;
  }
  return { promptTokens: prompt, completionTokens: completion, estimated: metadata["usageEstimated"] === "true" };
}

/**
 * A count read the way every client does: ASCII digits only (no sign, blank, fraction, exponent, hex
 * or other script's digits, all of which `Number` would take), within a safe integer.
 */
function tokenCount(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]+$/.test(value)) {
    return undefined;
  }
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

function first<Desc extends DescMessage>(err: ConnectError, schema: Desc): MessageShape<Desc> | undefined {
  return safeFind(err, schema)[0];
}

function safeFind<Desc extends DescMessage>(err: ConnectError, schema: Desc): MessageShape<Desc>[] {
  try {
    return err.findDetails(schema);
  } catch {
    return []; // a detail that does not decode is reported as absent
  }
}
