"""The error hierarchy. Inner code raises these; only api/errors.py turns them into gRPC statuses.

Each class names its canonical status code (by name, so this module needs no grpc) and its
stable `reason`. The reason and the metadata keys are API; the message text is not.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar


class Code(enum.Enum):
    """The canonical gRPC status codes this sidecar returns."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    INTERNAL = "INTERNAL"
    ABORTED = "ABORTED"
    ALREADY_EXISTS = "ALREADY_EXISTS"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request, as google.rpc.BadRequest reports it."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class QuotaViolation:
    """One exhausted limit, as google.rpc.QuotaFailure reports it."""

    subject: str
    description: str


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """The resource an error is about, as google.rpc.ResourceInfo reports it."""

    resource_type: str
    resource_name: str
    description: str = ""


class SidecarError(Exception):
    code: ClassVar[Code] = Code.INTERNAL
    reason: ClassVar[str] = "INTERNAL"
    retryable: ClassVar[bool] = False
    quota_violations: tuple[QuotaViolation, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
        retry_after: float | None = None,
        resource: ResourceRef | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})
        self.violations = tuple(violations)
        self.retry_after = retry_after
        self.resource = resource
        if retry_after is not None:
            self.metadata.setdefault("retryAfterSeconds", f"{retry_after:g}")

    def nested_in(self, prefix: str) -> SidecarError:
        """The error with its field paths from the RPC's request root: an inner layer names the
        fields of the call (`persona_id`), a Generate request holds them under `input.`. Idempotent."""

        def full(field: str) -> str:
            return field if not field or field.startswith(prefix) else prefix + field

        self.violations = tuple(FieldViolation(full(v.field), v.description) for v in self.violations)
        if "field" in self.metadata:
            self.metadata["field"] = full(self.metadata["field"])
        return self


class InvalidRequestError(SidecarError):
    code = Code.INVALID_ARGUMENT
    reason = "INVALID_REQUEST"

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        super().__init__(
            f"invalid {first.field}: {first.description}{more}",
            metadata={"field": first.field},
            violations=violations,
        )


class ContextTooLongError(SidecarError):
    """No deployment of the route has a context window the prompt fits in."""

    code = Code.INVALID_ARGUMENT
    reason = "CONTEXT_TOO_LONG"

    def __init__(self, prompt_tokens: int, largest: int) -> None:
        super().__init__(
            f"the prompt has about {prompt_tokens} tokens; the route's largest context window is {largest}",
            metadata={"promptTokens": str(prompt_tokens), "maxContextTokens": str(largest)},
            violations=[FieldViolation("messages", "too long for every deployment of the route")],
        )


class UnauthenticatedError(SidecarError):
    code = Code.UNAUTHENTICATED
    reason = "MISSING_CREDENTIALS"


class InvalidCredentialsError(UnauthenticatedError):
    reason = "INVALID_CREDENTIALS"


class RouteNotFoundError(SidecarError):
    code = Code.NOT_FOUND
    reason = "MODEL_NOT_FOUND"

    def __init__(self, model: str, known: Sequence[str]) -> None:
        super().__init__(
            f"no route named {model!r}; known routes: {', '.join(sorted(known))}",
            metadata={"model": model},
            resource=ResourceRef("orchestrator.v1.ModelRoute", model, "see ListModels"),
        )


class DeadlineExceededError(SidecarError):
    code = Code.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class CallerNotReadingError(DeadlineExceededError):
    """A server stream's caller read nothing while one event waited to be sent (gRPC flow control)
    for settings.stream_write_timeout_seconds: the call is ended as the caller's doing, never the
    provider's (no breaker, no failover)."""

    reason = "CALLER_NOT_READING"


class ProvidersUnavailableError(SidecarError):
    """Every deployment of the route failed with a retryable error."""

    code = Code.UNAVAILABLE
    reason = "PROVIDERS_UNAVAILABLE"


class UpstreamBusyError(SidecarError):
    """Every connection this sidecar may open to an upstream (settings.http.max_connections and
    max_connections_per_host) is in use and none came free in time: the sidecar is overloaded.
    Not a ProviderError: the provider did nothing wrong, and its breaker and health are untouched."""

    code = Code.UNAVAILABLE
    reason = "OVERLOADED"
    retryable = True


class SidecarDrainingError(SidecarError):
    """The sidecar is shutting down: it takes no new generation or Embed call (another replica can)."""

    code = Code.UNAVAILABLE
    reason = "SIDECAR_DRAINING"


class StreamInterruptedError(SidecarError):
    """The upstream failed after the first chunk reached the caller: the answer is incomplete."""

    code = Code.UNAVAILABLE
    reason = "STREAM_INTERRUPTED"


# Key errors: raised by sidecar/keys (envelopes and key-encryption backends).


class KeyContextMismatchError(SidecarError):
    """An envelope presented for a tenant, user, provider or key name other than its own."""

    code = Code.PERMISSION_DENIED
    reason = "KEY_CONTEXT_MISMATCH"


class KeysDisabledError(SidecarError):
    """User keys were asked for, and no key backend is configured."""

    code = Code.FAILED_PRECONDITION
    reason = "KEYS_DISABLED"


class UserKeyRequiredError(SidecarError):
    """The route requires the user's own provider key, and there is none."""

    code = Code.FAILED_PRECONDITION
    reason = "USER_KEY_REQUIRED"


class UserKeyRejectedError(SidecarError):
    """The provider refused the caller's own key (revoked, wrong, no access to the model)."""

    code = Code.PERMISSION_DENIED
    reason = "USER_KEY_REJECTED"


class UserKeyRateLimitedError(SidecarError):
    """The provider rate-limited the caller's own key: the caller's own quota at the provider."""

    code = Code.RESOURCE_EXHAUSTED
    reason = "USER_KEY_RATE_LIMITED"


class KeyLimitReachedError(SidecarError):
    """The user already keeps settings.keys.max_keys_per_user keys: delete one, or replace one by name."""

    code = Code.RESOURCE_EXHAUSTED
    reason = "KEY_LIMIT_REACHED"


class InvalidEnvelopeError(SidecarError):
    """Not an envelope this sidecar can read (garbled, truncated, unknown version)."""

    code = Code.INVALID_ARGUMENT
    reason = "INVALID_KEY_ENVELOPE"


class KeyDecryptError(SidecarError):
    """The backend or the envelope refused to give up the key: tampering or our misconfiguration."""

    code = Code.INTERNAL
    reason = "KEY_UNAVAILABLE"


class KeyBackendUnavailableError(SidecarError):
    """The key-encryption backend cannot be reached or is throttling; retry later."""

    code = Code.UNAVAILABLE
    reason = "KEY_BACKEND_UNAVAILABLE"


# Provider errors: raised by adapters (statuses classified in providers/upstream_errors.py), read by routing.


class ProviderError(SidecarError):
    """A provider's failure. `retryable`: another attempt (here or on the next deployment) may
    answer. `deployment_fault`: the failure says the deployment is unhealthy, so it counts against
    its breaker and becomes its last error; False when the call itself caused it (a request the
    upstream refused, output the model wrote wrong), which one tenant can cause at will and must not
    take a deployment shared by every tenant out of service."""

    code = Code.UNAVAILABLE
    reason = "PROVIDER_UNAVAILABLE"
    retryable = True
    deployment_fault: ClassVar[bool] = True


class ProviderUnavailableError(ProviderError):
    """Connection refused or reset, 5xx, overloaded: try elsewhere."""


class CircuitOpenError(ProviderUnavailableError):
    """The deployment's circuit breaker is open: it was not tried."""

    reason = "CIRCUIT_OPEN"


class ProviderTimeoutError(ProviderError):
    reason = "PROVIDER_TIMEOUT"


class FirstTokenTimeoutError(ProviderTimeoutError):
    """No first chunk within the route's first_token_timeout_seconds: the route falls back to its
    next deployment at once (retrying the slow one would spend the latency the timeout protects)."""


class ProviderRateLimitedError(ProviderError):
    reason = "PROVIDER_RATE_LIMITED"


class ProviderMalformedError(ProviderError):
    """The upstream answered with something that is not its documented wire format."""

    reason = "PROVIDER_BAD_RESPONSE"


class ModelOutputError(ProviderMalformedError):
    """A well-formed answer whose content the model wrote wrong or past the sidecar's bounds: a
    function call the provider itself calls malformed (Gemini's MALFORMED_FUNCTION_CALL, Converse's
    malformed_tool_use), more tool calls or longer or deeper arguments than the sidecar takes. The
    call's prompt and tools caused it: the route falls back to its next deployment (not retried on
    this one), and neither the breaker nor the deployment's health counts it."""

    reason = "MODEL_OUTPUT_UNUSABLE"
    deployment_fault = False


class ProviderAuthError(ProviderError):
    """The upstream refused our credentials: our misconfiguration, so the next deployment is tried."""

    code = Code.INTERNAL
    reason = "PROVIDER_AUTH_FAILED"


class ProviderRejectedError(ProviderError):
    """The upstream rejected the request itself (HTTP 400/413/422): retrying elsewhere won't help."""

    code = Code.INVALID_ARGUMENT
    reason = "PROVIDER_REJECTED"
    retryable = False
    deployment_fault = False


# Persona and session errors: raised by sidecar/personas and sidecar/sessions.


class PersonaNotFoundError(SidecarError):
    """No persona has that id, name or alias; the message and metadata list the candidates."""

    code = Code.INVALID_ARGUMENT
    reason = "PERSONA_NOT_FOUND"


class AmbiguousPersonaError(SidecarError):
    """A Switch command matches more than one persona; the message and metadata list them."""

    code = Code.INVALID_ARGUMENT
    reason = "AMBIGUOUS_PERSONA"


class PersonaNotAllowedError(SidecarError):
    """The caller's tier may not use that persona."""

    code = Code.PERMISSION_DENIED
    reason = "PERSONA_NOT_ALLOWED"


class SwitchSupersededError(SidecarError):
    """A newer Switch of the same conversation arrived before this one was applied."""

    code = Code.ABORTED
    reason = "SWITCH_SUPERSEDED"


class SessionStoreUnavailableError(SidecarError):
    """The conversation store (Redis) cannot be reached; retry later."""

    code = Code.UNAVAILABLE
    reason = "SESSION_STORE_UNAVAILABLE"


# Quota errors: raised by sidecar/quota and the quota layer.


class QuotaExceededError(SidecarError):
    """The caller's own limit refused the call (reason by metric and window, set per instance)."""

    code = Code.RESOURCE_EXHAUSTED
    reason = "REQUEST_QUOTA_EXCEEDED"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        metadata: Mapping[str, str],
        violation: QuotaViolation,
        retry_after: float,
    ) -> None:
        super().__init__(message, metadata=metadata, retry_after=retry_after)
        self.reason = reason  # type: ignore[misc]  # one of QUOTA_REASONS
        self.quota_violations = (violation,)


QUOTA_REASONS = (
    "REQUEST_QUOTA_EXCEEDED",
    "TOKEN_QUOTA_EXCEEDED",
    "COST_QUOTA_EXCEEDED",
    "RATE_LIMITED",
    "CONCURRENCY_LIMITED",
)


class QuotaUnavailableError(SidecarError):
    """The quota store is unreachable and a fail_closed limit applies to the call."""

    code = Code.UNAVAILABLE
    reason = "QUOTA_UNAVAILABLE"


class ModelNotAllowedError(SidecarError):
    """The caller's tier may not use the route."""

    code = Code.PERMISSION_DENIED
    reason = "MODEL_NOT_ALLOWED"
