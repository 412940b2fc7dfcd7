export {
  SidecarClient,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_MAX_REPLY_BYTES,
  generationInput,
  messageText,
  messageToolCalls,
  textMessage,
  userMessage,
  type ExperimentReportQuery,
  type GenerationInputInit,
  type SidecarCallOptions,
  type SidecarClientOptions,
} from "./client.js";
export { ADDRESS_ENV, DEFAULT_ADDRESS, TOKEN_ENV, parseAddress, type Endpoint } from "./config.js";
export {
  AuthenticationError,
  CancelledError,
  ConflictError,
  DeadlineExceededError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  PermissionDeniedError,
  PreconditionError,
  QuotaExceededError,
  TransportLimitError,
  SidecarError,
  StreamInterruptedError,
  UnavailableError,
  codeName,
  decodeDetails,
  toSidecarError,
  type ErrorDetails,
  type FieldViolation,
  type PartialUsage,
  type QuotaViolation,
  type ResourceRef,
} from "./errors.js";
export { isRetryable, retryDelayMs, systemClock, withRetry, withStreamRetry, type AttemptOptions, type RetryClock, type RetryOptions } from "./retry.js";
export * from "./gen/orchestrator/v1/generate_pb.js";
export * from "./gen/orchestrator/v1/models_pb.js";
export * from "./gen/orchestrator/v1/personas_pb.js";
export * from "./gen/orchestrator/v1/quota_pb.js";
export * from "./gen/orchestrator/v1/keys_pb.js";
export * from "./gen/orchestrator/v1/usage_pb.js";
export * from "./gen/orchestrator/v1/cache_pb.js";
export * from "./gen/orchestrator/v1/embed_pb.js";
export * from "./gen/orchestrator/v1/priority_pb.js";
export * from "./gen/orchestrator/v1/experiments_pb.js";
export { ExperimentService } from "./gen/orchestrator/v1/experiment_service_pb.js";
export * from "./gen/orchestrator/v1/answers_pb.js";
export * from "./gen/orchestrator/v1/escalation_pb.js";
export { GenerationService } from "./gen/orchestrator/v1/generation_service_pb.js";
export { ConversationService } from "./gen/orchestrator/v1/conversation_service_pb.js";
export { QuotaService } from "./gen/orchestrator/v1/quota_service_pb.js";
export { KeyService } from "./gen/orchestrator/v1/key_service_pb.js";
export { AdminService } from "./gen/orchestrator/v1/admin_service_pb.js";
export { EscalationService } from "./gen/orchestrator/v1/escalation_service_pb.js";
