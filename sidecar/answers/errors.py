"""The escalation RPCs' errors: each names the request field it is about (google.rpc.BadRequest)."""

from __future__ import annotations

import sqlite3

from sidecar.core.errors import Code, FieldViolation, SidecarError
from sidecar.stores.errors import StoreError


class _FieldError(SidecarError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, metadata={"field": field}, violations=(FieldViolation(field, message),))


class EscalationNotFoundError(_FieldError):
    """No escalation of this id for this tenant (and agent): another tenant's is not found either."""

    code = Code.NOT_FOUND
    reason = "ESCALATION_NOT_FOUND"


class EscalationStateError(_FieldError):
    """The escalation is not in a state this action applies to (answered twice, accepted late)."""

    code = Code.FAILED_PRECONDITION
    reason = "ESCALATION_WRONG_STATE"


class CreatorNotAllowedError(_FieldError):
    """The credential does not act for this agent's creator."""

    code = Code.PERMISSION_DENIED
    reason = "CREATOR_NOT_ALLOWED"


class AgentNotFoundError(_FieldError):
    """The agent has no answer policy."""

    code = Code.NOT_FOUND
    reason = "AGENT_NOT_FOUND"


class EscalationLimitError(_FieldError):
    """The agent's creator takes no more escalations today or this week."""

    code = Code.RESOURCE_EXHAUSTED
    reason = "ESCALATION_LIMIT_REACHED"


class EscalationNotAllowedError(_FieldError):
    """The agent's policy no longer takes this offer's message (a reload took its tier out of
    `allowed_tiers` or blocked its topic): accepting it is refused, as a new message would be."""

    code = Code.FAILED_PRECONDITION
    reason = "ESCALATION_NOT_ALLOWED"


class AnswerStoreUnavailableError(SidecarError):
    """The answer store (SQLite or Redis) failed or timed out: nothing was changed by this call."""

    code = Code.UNAVAILABLE
    reason = "ANSWER_STORE_UNAVAILABLE"
    retryable = True


class EmbeddingModelError(SidecarError):
    """The embedding route answered with another model than the one the canonical answers were
    embedded with (a fallback while the first fails): its vector cannot be compared with theirs."""

    code = Code.UNAVAILABLE
    reason = "EMBEDDING_MODEL_UNAVAILABLE"
    retryable = True


STORE_FAILURES: tuple[type[Exception], ...] = (StoreError, sqlite3.Error, OSError, TimeoutError)
RECOVERABLE: tuple[type[Exception], ...] = (SidecarError, *STORE_FAILURES)  # an embedding or store failure


def classified(exc: BaseException) -> BaseException:
    """A store failure as ANSWER_STORE_UNAVAILABLE (retryable); anything else as it is."""
    if isinstance(exc, STORE_FAILURES) and not isinstance(exc, SidecarError):
        return AnswerStoreUnavailableError(f"the answer store failed: {type(exc).__name__}")
    return exc
