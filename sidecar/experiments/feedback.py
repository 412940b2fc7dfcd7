"""Feedback: a score (and an optional label) for a tenant's finished call, by request id, stored on
the call's usage record in the ledger, where experiment reports read it.

A call is scored once. The same score and label again change nothing and succeed (a retried
Feedback is harmless); a different score for a scored call is ALREADY_EXISTS / FEEDBACK_EXISTS."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sidecar.core.errors import Code, FieldViolation, InvalidRequestError, SidecarError
from sidecar.ledger.record import FeedbackResult, FeedbackStatus, LedgerStore

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}")  # the edge's rule (api/convert.py)
LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_ABS_SCORE = 1e9


class FeedbackTargetNotFoundError(SidecarError):
    """The tenant has no finished call with that request id (yet: records are written in batches)."""

    code = Code.NOT_FOUND
    reason = "CALL_NOT_FOUND"


class FeedbackExistsError(SidecarError):
    """The call has another score already: the first score stands."""

    code = Code.ALREADY_EXISTS
    reason = "FEEDBACK_EXISTS"


@dataclass(frozen=True, slots=True)
class Feedback:
    tenant: str
    request_id: str
    score: float
    label: str = ""


def validated(f: Feedback) -> Feedback:
    """The feedback, or InvalidRequestError naming every bad field."""
    bad: list[FieldViolation] = []
    for field, value in (("tenant_id", f.tenant), ("request_id", f.request_id)):
        if not ID.fullmatch(value):
            bad.append(
                FieldViolation(
                    field,
                    "required: at most 128 of letters, digits and ._:@- starting with a letter or digit",
                )
            )
    if not math.isfinite(f.score) or abs(f.score) > MAX_ABS_SCORE:
        bad.append(FieldViolation("score", f"a finite number within ±{MAX_ABS_SCORE:g}"))
    if f.label and not LABEL.fullmatch(f.label):
        bad.append(FieldViolation("label", "at most 64 of letters, digits and _.:-"))
    if bad:
        raise InvalidRequestError(bad)
    return f


async def record_feedback(store: LedgerStore, f: Feedback) -> FeedbackResult:
    """Validate and store: STORED or REPEATED; NOT_FOUND when the tenant has no such finished call,
    FEEDBACK_EXISTS when it has another score."""
    f = validated(f)
    result = await store.feedback(f.tenant, f.request_id, f.score, f.label)
    if result.status is FeedbackStatus.NOT_FOUND:
        raise FeedbackTargetNotFoundError(
            f"tenant {f.tenant!r} has no finished call {f.request_id!r}",
            metadata={"requestId": f.request_id},
            violations=[FieldViolation("request_id", "no finished call of this tenant has this id")],
        )
    if result.status is FeedbackStatus.CONFLICT:
        raise FeedbackExistsError(
            f"call {f.request_id!r} already has another score; the first score stands",
            metadata={"requestId": f.request_id},
            violations=[FieldViolation("score", "the call has another score already; it is scored once")],
        )
    return result
