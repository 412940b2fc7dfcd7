"""The edge of the answer policy: the request's audience_layer in, the decision out (GenerationSummary
field 23), and the escalation messages of EscalationService."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.answers.model import Decision, Escalation, Path, State
from sidecar.config.answers import LAYERS
from sidecar.core.outcome import Outcome

PATHS: dict[Path, int] = {
    Path.AUTO_ANSWER: ans.ANSWER_PATH_AUTO_ANSWER,
    Path.CLARIFY: ans.ANSWER_PATH_CLARIFY,
    Path.CANONICAL: ans.ANSWER_PATH_CANONICAL,
    Path.OFFER_ESCALATION: ans.ANSWER_PATH_OFFER_ESCALATION,
    Path.QUEUED: ans.ANSWER_PATH_QUEUED,
    Path.REFUSE: ans.ANSWER_PATH_REFUSE,
}
STATES: dict[State, int] = {
    State.OFFERED: esc.ESCALATION_STATE_OFFERED,
    State.QUEUED: esc.ESCALATION_STATE_QUEUED,
    State.ANSWERED: esc.ESCALATION_STATE_ANSWERED,
    State.DECLINED: esc.ESCALATION_STATE_DECLINED,
    State.EXPIRED: esc.ESCALATION_STATE_EXPIRED,
}
STATE_OF = {v: k for k, v in STATES.items()}


def audience_layer(value: str, bad: Callable[[str, str], None]) -> str:
    """The request's layer ("" is public); anything else is a violation of `audience_layer`."""
    if not value:
        return "public"
    if value not in LAYERS:
        bad("audience_layer", "public, friends or intimate")
        return "public"
    return value


def timestamp(wall: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    if wall > 0:
        ts.FromNanoseconds(int(wall * 1e9))
    return ts


def to_decision(d: Decision) -> ans.AnswerDecision:
    s = d.signals
    out = ans.AnswerDecision(
        path=PATHS[d.path],  # type: ignore[arg-type]
        reason=d.reason,
        signals=ans.AnswerSignals(
            similarity=s.similarity,
            novelty=s.novelty,
            complexity=s.complexity,
            vagueness=s.vagueness,
            confidence=s.confidence,
        ),
        canonical_answer_id=d.canonical_id,
        escalation_id=d.escalation_id,
        alternatives=list(d.alternatives),
    )
    if d.offer_expires_at:
        out.offer_expire_time.CopyFrom(timestamp(d.offer_expires_at))
    if d.available_from:
        out.available_time.CopyFrom(timestamp(d.available_from))
    return out


def add_summary_fields(summary: gen.GenerationSummary, record: Outcome) -> None:
    if record.answer is not None:
        summary.answer_decision.CopyFrom(to_decision(record.answer))


CONTEXT_KINDS = {
    "verbatim": esc.ESCALATION_CONTEXT_KIND_VERBATIM,
    "summary": esc.ESCALATION_CONTEXT_KIND_SUMMARY,
}


def to_creator(e: Escalation) -> esc.Escalation:
    """An escalation as its agent's creator may see it: an offer the user never accepted (still
    OFFERED, or EXPIRED before it was) was never sent, so the user's words, their conversation and
    who they are stay out; its state and times remain."""
    if e.sent:
        return to_escalation(e)
    unsent = replace(e, user="", conversation="", question="", context=(), context_summary="")
    return to_escalation(unsent)


def to_escalation(e: Escalation) -> esc.Escalation:
    out = esc.Escalation(
        id=e.id,
        tenant_id=e.tenant,
        agent_id=e.agent,
        user_id=e.user,
        conversation_id=e.conversation,
        question=e.question,
        layer=e.layer,
        state=STATES[e.state],  # type: ignore[arg-type]
        reason=e.reason,
        context=[esc.ContextMessage(role=r, text=t) for r, t in e.context],
        answer=e.answer,
        canonical_answer_id=e.canonical_id,
        decline_reason=e.decline_reason,
        context_kind=CONTEXT_KINDS[e.context_kind],
        context_summary=e.context_summary,
    )
    for field, wall in (
        ("create_time", e.created_at),
        ("offer_expire_time", e.offer_expires_at),
        ("queue_time", e.queued_at),
        ("expire_time", e.expires_at),
        ("close_time", e.closed_at),
    ):
        if wall:
            getattr(out, field).CopyFrom(timestamp(wall))
    return out
