"""Label values of the sidecar's metrics: a fixed, low-cardinality set whatever callers send (the
error reasons, identifiers from code, opt-in tenant and user values under a cap)."""

from __future__ import annotations

from collections.abc import Iterable

OTHER = "other"
UNKNOWN = "unknown"

# The `reason` label of sidecar_errors_total: the ErrorInfo reasons the sidecar emits (each a
# SidecarError class's `reason`, the quota reasons, and the observe layer's CANCELLED and
# DEADLINE_EXCEEDED). A fixed set: anything else is `other`. tests/unit/telemetry/test_metrics.py checks that
# every SidecarError subclass's reason is listed here.
ERROR_REASONS = frozenset(
    (
        "AGENT_NOT_FOUND", "AMBIGUOUS_PERSONA", "ANSWERS_DISABLED", "ANSWER_STORE_UNAVAILABLE",
        "CALL_NOT_FOUND", "CALLER_NOT_READING", "CANCELLED", "CIRCUIT_OPEN", "CONCURRENCY_LIMITED",
        "CONTEXT_TOO_LONG",
        "COST_QUOTA_EXCEEDED", "CREATOR_NOT_ALLOWED", "DEADLINE_EXCEEDED", "EMBEDDING_MODEL_UNAVAILABLE",
        "ESCALATION_LIMIT_REACHED", "ESCALATION_NOT_ALLOWED",
        "ESCALATION_NOT_FOUND", "ESCALATION_WRONG_STATE", "EXPERIMENT_NOT_FOUND", "FEEDBACK_EXISTS",
        "IDEMPOTENCY_KEY_REUSED",
        "IDEMPOTENCY_STORE_UNAVAILABLE", "INTERNAL", "INVALID_CREDENTIALS", "INVALID_KEY_ENVELOPE",
        "INVALID_REQUEST", "KEYS_DISABLED", "KEY_BACKEND_UNAVAILABLE", "KEY_CONTEXT_MISMATCH",
        "KEY_FAILURE_LIMIT_REACHED", "KEY_LIMIT_REACHED", "KEY_RECORD_CORRUPT",
        "KEY_REGISTRATION_LIMIT_REACHED", "KEY_UNAVAILABLE",
        "LEDGER_DISABLED",
        "LEDGER_UNAVAILABLE",
        "MALFORMED_REQUEST", "METHOD_NOT_ALLOWED", "MISSING_CREDENTIALS", "MODEL_NOT_ALLOWED",
        "MODEL_NOT_FOUND", "MODEL_OUTPUT_UNUSABLE", "NO_CAPABLE_DEPLOYMENT", "OVERLOADED",
        "PERSONA_NOT_ALLOWED",
        "PERSONA_NOT_FOUND", "PROVIDERS_UNAVAILABLE", "PROVIDER_AUTH_FAILED", "PROVIDER_BAD_RESPONSE",
        "PROVIDER_RATE_LIMITED", "PROVIDER_REJECTED", "PROVIDER_TIMEOUT", "PROVIDER_UNAVAILABLE",
        "QUOTA_UNAVAILABLE", "RATE_LIMITED", "REQUEST_QUOTA_EXCEEDED", "REQUEST_TOO_COMPLEX",
        "ROTATION_IN_PROGRESS",
        "SCHEMA_VALIDATION_FAILED", "SESSION_STORE_UNAVAILABLE", "SIDECAR_DRAINING", "STATS_UNAVAILABLE",
        "STREAM_INTERRUPTED",
        "SWITCH_SUPERSEDED", "TENANT_NOT_ALLOWED", "TOKEN_QUOTA_EXCEEDED", "USER_KEY_RATE_LIMITED",
        "USER_KEY_REJECTED", "USER_KEY_REQUIRED",
    )
)  # fmt: skip


def error_reason(reason: str) -> str:
    """The `reason` label: one of ERROR_REASONS, else `other` (never free text)."""
    return reason if reason in ERROR_REASONS else OTHER


def bounded_label(value: str) -> str:
    """Label values other modules pass are identifiers from code; anything else is `other`."""
    if 0 < len(value) <= 64 and value.replace("_", "").replace("-", "").replace(".", "").isalnum():
        return value
    return OTHER


class LabelCap:
    """Opt-in label values: allow-listed ones pass while fewer than `cap` distinct ones were seen."""

    def __init__(self, allowed: Iterable[str], cap: int) -> None:
        self._allowed = frozenset(allowed)
        self._cap = cap
        self._seen: set[tuple[str, ...]] = set()

    def __bool__(self) -> bool:
        return bool(self._allowed)

    def value(self, raw: str) -> str:
        return raw if raw in self._allowed else OTHER

    def admit(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """The values as labelled, or all OTHER once the cap on distinct combinations is reached."""
        if values in self._seen:
            return values
        if len(self._seen) >= self._cap:
            return tuple(OTHER for _ in values)
        self._seen.add(values)
        return values
