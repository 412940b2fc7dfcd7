/**
 * SidecarClient: one HTTP/2 connection to the sidecar (TCP or Unix socket), the token on every call,
 * `generate` / `stream` / `embed` / `switch` / `getQuota` / `feedback` / `getExperimentReport` with
 * typed errors, and the generated clients of every service for the other RPCs. A call's priority is
 * the input's `priority` field (`Priority.HIGH`, ...).
 */
import * as net from "node:net";
import { clone, create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type CallOptions, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { parseAddress, resolveAddress, resolveToken, type Endpoint } from "./config.js";
import { SidecarError, markNeverRetried, toSidecarError } from "./errors.js";
import { requestIdFor, retryRequestId } from "./retry.js";
import { AdminService } from "./gen/orchestrator/v1/admin_service_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConversationService } from "./gen/orchestrator/v1/conversation_service_pb.js";
import { EmbedRequestSchema, type EmbedRequest, type EmbedResponse } from "./gen/orchestrator/v1/embed_pb.js";
import { ExperimentService } from "./gen/orchestrator/v1/experiment_service_pb.js";
import type { FeedbackRequestSchema, FeedbackResponse, GetExperimentReportResponse } from "./gen/orchestrator/v1/experiments_pb.js";
import {
  GenerateRequestSchema,
  GenerationInputSchema,
  Role,
  type GenerateRequest,
  type GenerateResponse,
  type Message,
  type MessageSchema,
  type StreamGenerateResponse,
  type ToolCall,
} from "./gen/orchestrator/v1/generate_pb.js";
import type {
  AcceptEscalationResponse,
  AnswerEscalationRequestSchema,
  AnswerEscalationResponse,
  DeclineEscalationRequestSchema,
  DeclineEscalationResponse,
  GetAnswerReportResponse,
  ListEscalationsRequestSchema,
  ListEscalationsResponse,
} from "./gen/orchestrator/v1/escalation_pb.js";
import { EscalationService } from "./gen/orchestrator/v1/escalation_service_pb.js";
import { GenerationService } from "./gen/orchestrator/v1/generation_service_pb.js";
import { KeyService } from "./gen/orchestrator/v1/key_service_pb.js";
import type { ListModelsRequestSchema, ListModelsResponse } from "./gen/orchestrator/v1/models_pb.js";
import type { SwitchRequestSchema, SwitchResponse } from "./gen/orchestrator/v1/personas_pb.js";
import type { GetQuotaRequestSchema, GetQuotaResponse } from "./gen/orchestrator/v1/quota_pb.js";
import { QuotaService } from "./gen/orchestrator/v1/quota_service_pb.js";

/**
 * HTTP/2 PING every 5 minutes while a call is open, none on an idle connection: a localhost peer
 * needs no liveness probing, and grpc servers refuse pings more frequent than 5 minutes by default
 * (GOAWAY too_many_pings).
 */
export const DEFAULT_KEEPALIVE_MS = 300_000;

/**
 * The largest reply a call accepts unless `maxReplyBytes` says otherwise, the same in every client:
 * the largest the sidecar may be set to send (embeddings.max_reply_bytes goes up to 256 MiB; an
 * upstream's answer is relayed up to 64 MiB).
 */
export const DEFAULT_MAX_REPLY_BYTES = 256 * 1024 * 1024;

export interface SidecarClientOptions {
  /** `host:port` or `unix:///path`; default $ORCHESTRATOR_SIDECAR_ADDRESS, else 127.0.0.1:50051. */
  readonly address?: string;
  /** Bearer token for every call; default $ORCHESTRATOR_SIDECAR_TOKEN; `null` or `""` sends none. */
  readonly token?: string | null;
  /** Deadline of every call that sets none itself, in milliseconds. */
  readonly timeoutMs?: number;
  /** HTTP/2 PING interval while calls are open (default 5 minutes). */
  readonly keepAliveMs?: number;
  /**
   * The largest reply a call accepts, in bytes (default DEFAULT_MAX_REPLY_BYTES, 256 MiB); a larger
   * one fails RESOURCE_EXHAUSTED (a TransportLimitError naming both sizes).
   */
  readonly maxReplyBytes?: number;
  /** Extra interceptors, run after the one adding the token. */
  readonly interceptors?: readonly Interceptor[];
  /** The environment to read the defaults from (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Per-call options: a deadline, an AbortSignal, extra headers, and for `generate` and `embed` the
 * request id to send when the request has none (`withRetry` gives every attempt the same one).
 */
export type SidecarCallOptions = Pick<CallOptions, "timeoutMs" | "signal" | "headers"> & { readonly requestId?: string };

export type GenerationInputInit = MessageInitShape<typeof GenerationInputSchema>;

/** What GetExperimentReport reports: one tenant's calls of an experiment in [start, end). */
export interface ExperimentReportQuery {
  readonly tenantId: string;
  readonly experiment: string;
  readonly start: Date;
  readonly end: Date;
}

export class SidecarClient {
  readonly endpoint: Endpoint;
  /** The generated clients: every RPC of every service, errors as connect's ConnectError. */
  readonly generation: Client<typeof GenerationService>;
  readonly conversation: Client<typeof ConversationService>;
  readonly quota: Client<typeof QuotaService>;
  readonly keys: Client<typeof KeyService>;
  readonly admin: Client<typeof AdminService>;
  readonly experiments: Client<typeof ExperimentService>;
  readonly escalations: Client<typeof EscalationService>;
  private readonly sessions: Http2SessionManager;
  private readonly timeoutMs: number | undefined;
  private closed = false;

  constructor(options: SidecarClientOptions = {}) {
    const env = options.env ?? process.env;
    const readMaxBytes = maxReplyBytes(options.maxReplyBytes);
    this.endpoint = parseAddress(resolveAddress(options.address, env));
    this.timeoutMs = options.timeoutMs;
    const baseUrl = this.endpoint.kind === "tcp" ? `http://${hostPort(this.endpoint)}` : "http://localhost";
    const unixPath = this.endpoint.kind === "unix" ? this.endpoint.path : undefined;
    this.sessions = new Http2SessionManager(
      baseUrl,
      { pingIntervalMs: options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS, pingIdleConnection: false },
      unixPath === undefined ? {} : { createConnection: () => net.connect(unixPath) },
    );
    const token = resolveToken(options.token, env);
    const transport: Transport = createGrpcTransport({
      baseUrl,
      sessionManager: this.sessions,
      readMaxBytes,
      interceptors: [keyedInRetry, ...(token === undefined ? [] : [bearer(token)]), ...(options.interceptors ?? [])],
    });
    this.generation = createClient(GenerationService, transport);
    this.conversation = createClient(ConversationService, transport);
    this.quota = createClient(QuotaService, transport);
    this.keys = createClient(KeyService, transport);
    this.admin = createClient(AdminService, transport);
    this.experiments = createClient(ExperimentService, transport);
    this.escalations = createClient(EscalationService, transport);
  }

  /** Unary Generate: the whole answer, or a typed SidecarError. */
  async generate(input: GenerationInputInit, options?: SidecarCallOptions): Promise<GenerateResponse> {
    try {
      return await this.generation.generate({ input: keyed(input, options) }, this.callOptions(options));
    } catch (thrown) {
      throw this.failure(thrown, options?.signal);
    }
  }

  /**
   * StreamGenerate as an async iterable: content deltas, then one `result` (the same GenerateResponse
   * Generate returns). Breaking out of the loop or aborting the signal cancels the call.
   */
  async *stream(input: GenerationInputInit, options?: SidecarCallOptions): AsyncGenerator<StreamGenerateResponse, void, undefined> {
    // connect ends a server stream on the wire only through its signal: returning from its
    // iterator (a `break` in the caller's loop) leaves the call generating on the sidecar
    const call = new AbortController();
    const outer = options?.signal;
    const forward = (): void => call.abort(outer?.reason);
    if (outer?.aborted) forward();
    outer?.addEventListener("abort", forward, { once: true });
    let ended = false;
    let deltas = 0;
    try {
      let result = false;
      for await (const message of this.generation.streamGenerate({ input }, { ...this.callOptions(options), signal: call.signal })) {
        deltas += message.event.case === "delta" ? 1 : 0;
        result ||= message.event.case === "result";
        yield message;
      }
      ended = true;
      if (!result) {
        // a stream always ends with its result: a clean end without one is a failure, never a silent end
        throw toSidecarError(new ConnectError("the stream ended without a result", Code.Unavailable), deltas);
      }
    } catch (thrown) {
      ended = true;
      throw this.failure(thrown, call.signal, deltas);
    } finally {
      outer?.removeEventListener("abort", forward);
      if (!ended) call.abort(); // the loop was left early
    }
  }

  /**
   * Embed: one vector per text, in order (`response.embeddings[i].values`), or a typed SidecarError.
   * Retry it like generate, with `withRetry((attempt) => client.embed(request, attempt))`: every
   * attempt carries the same request id, so the sidecar charges a retried request once.
   */
  async embed(request: MessageInitShape<typeof EmbedRequestSchema>, options?: SidecarCallOptions): Promise<EmbedResponse> {
    try {
      return await this.generation.embed(keyed(request, options), this.callOptions(options));
    } catch (thrown) {
      throw this.failure(thrown, options?.signal);
    }
  }

  /**
   * Switch the conversation's persona with a natural-language command. Never retried, even inside
   * `withRetry`: an UNAVAILABLE Switch may have been applied (the sidecar applies it, then records
   * it), and a repeat would take a newer version and undo any Switch made in between. Read
   * `client.conversation.listSwitchHistory` before switching again.
   */
  async switch(request: MessageInitShape<typeof SwitchRequestSchema>, options?: SidecarCallOptions): Promise<SwitchResponse> {
    try {
      return await this.conversation.switch(request, this.callOptions(options));
    } catch (thrown) {
      throw markNeverRetried(this.failure(thrown, options?.signal));
    }
  }

  /** The caller's limits and what is left of them. */
  async getQuota(request: MessageInitShape<typeof GetQuotaRequestSchema>, options?: SidecarCallOptions): Promise<GetQuotaResponse> {
    try {
      return await this.quota.getQuota(request, this.callOptions(options));
    } catch (thrown) {
      throw this.failure(thrown, options?.signal);
    }
  }

  /** The routes this sidecar serves. */
  async listModels(request: MessageInitShape<typeof ListModelsRequestSchema> = {}, options?: SidecarCallOptions): Promise<ListModelsResponse> {
    try {
      return await this.generation.listModels(request, this.callOptions(options));
    } catch (thrown) {
      throw this.failure(thrown, options?.signal);
    }
  }

  /**
   * Scores a finished call of the tenant (by request id) once: the same score and label again
   * resolve with `alreadyRecorded`; a different score rejects with a ConflictError (FEEDBACK_EXISTS).
   */
  async feedback(request: MessageInitShape<typeof FeedbackRequestSchema>, options?: SidecarCallOptions): Promise<FeedbackResponse> {
    try {
      return await this.experiments.feedback(request, this.callOptions(options));
    } catch (thrown) {
      throw this.failure(thrown, options?.signal);
    }
  }

  /**
   * An experiment's report over the tenant's calls: per variant statistics, the tests against the
   * control and a verdict. A statistic with no finite value is left unset (`undefined`).
   */
  async getExperimentReport(query: ExperimentReportQuery, options?: SidecarCallOptions): Promise<GetExperimentReportResponse> {
    const request = {
      tenantId: query.tenantId,
      experiment: query.experiment,
      startTime: timestampFromDate(query.start),
      endTime: timestampFromDate(query.end),
    };
    try {
      return await this.experiments.getExperimentReport(request, this.callOptions(options));
    } catch (thrown) {
      throw this.failure(thrown, options?.signal);
    }
  }

  /** Accepts an escalation offer made to the user (`summary.answerDecision.escalationId`): queued. */
  async acceptEscalation(tenantId: string, userId: string, escalationId: string, options?: SidecarCallOptions): Promise<AcceptEscalationResponse> {
    return this.typed(() => this.escalations.acceptEscalation({ tenantId, userId, escalationId }, this.callOptions(options)), options);
  }

  /** One page of an agent's escalations (the creator's queue: QUEUED unless `states` says). */
  async listEscalations(request: MessageInitShape<typeof ListEscalationsRequestSchema>, options?: SidecarCallOptions): Promise<ListEscalationsResponse> {
    return this.typed(() => this.escalations.listEscalations(request, this.callOptions(options)), options);
  }

  /** The creator answers: the answer becomes a canonical answer and joins the conversation. */
  async answerEscalation(request: MessageInitShape<typeof AnswerEscalationRequestSchema>, options?: SidecarCallOptions): Promise<AnswerEscalationResponse> {
    return this.typed(() => this.escalations.answerEscalation(request, this.callOptions(options)), options);
  }

  /** The creator declines a queued escalation. */
  async declineEscalation(request: MessageInitShape<typeof DeclineEscalationRequestSchema>, options?: SidecarCallOptions): Promise<DeclineEscalationResponse> {
    return this.typed(() => this.escalations.declineEscalation(request, this.callOptions(options)), options);
  }

  /** An agent's answer-policy figures: auto-answer and reuse rates, backlog, declines, time to answer. */
  async getAnswerReport(tenantId: string, agentId: string, options?: SidecarCallOptions): Promise<GetAnswerReportResponse> {
    return this.typed(() => this.escalations.getAnswerReport({ tenantId, agentId }, this.callOptions(options)), options);
  }

  private async typed<T>(call: () => Promise<T>, options: SidecarCallOptions | undefined): Promise<T> {
    try {
      return await call();
    } catch (thrown) {
      throw this.failure(thrown, options?.signal);
    }
  }

  /**
   * The typed error of a failed call. connect reports a call whose HTTP/2 connection went away (the
   * sidecar killed or restarted under it) as CANCELLED (the stream reset) or ABORTED (ECONNRESET),
   * the codes of a caller's own cancellation and of a conflict; without an ErrorInfo (the sidecar
   * sends one with every status of its own), and when neither the caller's signal nor close() ended
   * the call, it is UNAVAILABLE.
   */
  private failure(thrown: unknown, signal: AbortSignal | undefined, deltas = 0): SidecarError {
    const err = toSidecarError(thrown, deltas);
    if (notConnected(thrown) && !(thrown instanceof SidecarError)) {
      return toSidecarError(new ConnectError(`the sidecar is not reachable (${err.message})`, Code.Unavailable, undefined, undefined, thrown));
    }
    const transport = (err.code === Code.Canceled || err.code === Code.Aborted) && err.reason === "";
    if (!transport || signal?.aborted || this.closed || thrown instanceof SidecarError) {
      return err;
    }
    const lost = new ConnectError(`the connection to the sidecar was lost (${err.message})`, Code.Unavailable, undefined, undefined, thrown);
    return toSidecarError(lost, deltas);
  }

  /** Closes the connection; calls still open fail (CANCELLED), and so does every call made after. */
  close(): void {
    this.closed = true;
    this.sessions.abort();
  }

  private callOptions(options: SidecarCallOptions | undefined): CallOptions {
    if (this.closed) {
      // every call asks for its options first: one on a closed client fails here, before connecting
      throw new ConnectError("the client is closed", Code.Canceled);
    }
    // an option given as `undefined` (withRetry's attempt without an overall deadline) is not set
    return { timeoutMs: this.timeoutMs, signal: options?.signal, headers: options?.headers, ...definedTimeout(options) };
  }
}

function definedTimeout(options: SidecarCallOptions | undefined): Pick<CallOptions, "timeoutMs"> {
  return options?.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
}

/**
 * True when the connection to the sidecar could not be made (a failed `connect`: no socket file yet,
 * as when the application starts before its sidecar, or nothing listening). connect reports ENOENT
 * as INTERNAL; like ECONNREFUSED, it is UNAVAILABLE: the sidecar is not up yet, a retry can help.
 */
function notConnected(thrown: unknown): boolean {
  for (let e = thrown, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if ((e as { syscall?: unknown }).syscall === "connect") return true;
  }
  return false;
}

/** The request with its idempotency key (`requestIdFor(options)`) when it has none of its own. */
function keyed<T extends { readonly requestId?: string }>(request: T, options: SidecarCallOptions | undefined): T {
  if (request.requestId) return request;
  const id = requestIdFor(options);
  return id ? { ...request, requestId: id } : request;
}

/**
 * Inside `withRetry`, a Generate or Embed sent without a request id gets the retry's next one (the
 * same in every attempt), so the sidecar replays a retried call instead of generating and charging it
 * again: also when the retried function leaves out its `attempt`, or calls the generated client.
 */
const keyedInRetry: Interceptor = (next) => (req) => {
  if (req.stream || req.service.typeName !== GenerationService.typeName) return next(req);
  if (req.method.name === "Generate") {
    const message = req.message as GenerateRequest;
    if (message.input === undefined || message.input.requestId !== "") return next(req);
    const id = retryRequestId();
    if (id === undefined) return next(req);
    const keyedMessage = clone(GenerateRequestSchema, message);
    keyedMessage.input!.requestId = id;
    return next({ ...req, message: keyedMessage as typeof req.message });
  }
  if (req.method.name === "Embed") {
    const message = req.message as EmbedRequest;
    const id = message.requestId === "" ? retryRequestId() : undefined;
    if (id === undefined) return next(req);
    const keyedMessage = clone(EmbedRequestSchema, message);
    keyedMessage.requestId = id;
    return next({ ...req, message: keyedMessage as typeof req.message });
  }
  return next(req);
};

/** A message with one text part. */
export function textMessage(role: Role, text: string): MessageInitShape<typeof MessageSchema> {
  return { role, content: [{ kind: { case: "text", value: text } }] };
}

/** A user message with one text part. */
export function userMessage(text: string): MessageInitShape<typeof MessageSchema> {
  return textMessage(Role.USER, text);
}

/** The text parts of a message (e.g. `GenerateResponse.message`), joined. */
export function messageText(message: Message | undefined): string {
  return (message?.content ?? []).map((part) => (part.kind.case === "text" ? part.kind.value : "")).join("");
}

/** The tool calls the model asked for in a message (e.g. `GenerateResponse.message`), in order. */
export function messageToolCalls(message: Message | undefined): ToolCall[] {
  return (message?.content ?? []).flatMap((part) => (part.kind.case === "toolCall" ? [part.kind.value] : []));
}

/** Builds a GenerationInput message (for the generated clients). */
export function generationInput(init: GenerationInputInit) {
  return create(GenerationInputSchema, init);
}

function bearer(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

function hostPort(endpoint: { host: string; port: number }): string {
  return endpoint.host.includes(":") ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/** The reply limit a client was given: a whole number of bytes, 1 to 2^31 - 1 as in every client (a RangeError otherwise). */
function maxReplyBytes(given: number | undefined): number {
  const bytes = given ?? DEFAULT_MAX_REPLY_BYTES;
  if (!Number.isSafeInteger(bytes) || bytes < 1 || bytes > 2 ** 31 - 1) {
    throw new RangeError(`maxReplyBytes must be a whole number of bytes from 1 to ${2 ** 31 - 1}, not ${String(given)}`);
  }
  return bytes;
}
