"""The decision among the six paths, from the policy and the signals: pure, and in this order.

1. the caller's tier is not allowed -> F (tier_not_allowed)
2. the message mentions a blocked topic -> F (blocked_topic)
3. similarity >= similarity_threshold -> C (canonical_match)
4. clarification on and confidence < confidence_threshold -> B (vague)
5. novelty >= novelty_threshold (novel) or complexity >= complexity_threshold (complex):
   escalations off, or no user to accept an offer (answers/service.py) -> F (escalations_disabled);
   no escalation left today or this week -> F
   (escalation_limit); outside every availability window -> A or F (creator_unavailable, as
   `outside_availability` says, with the next window's start); else -> D (offer escalation), unless
   the user or the tenant already holds as many open offers as the agent allows (the store counts
   them as it stores the offer: answers/service.py) -> F (offer_limit)
6. otherwise -> A (high_confidence)
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.answers import signals as sig
from sidecar.answers.model import CanonicalAnswer, Decision, Path, Signals
from sidecar.config.answers import AgentPolicy

_REFUSALS = {
    "tier_not_allowed": "this agent does not take messages from your plan",
    "blocked_topic": "this is a topic the creator does not discuss here",
    "escalations_disabled": "this needs the creator personally, and they are not taking questions",
    "escalation_limit": "the creator has taken all the questions they can for now",
    "offer_limit": "there are already questions waiting to be sent to the creator; please try later",
    "creator_unavailable": "the creator is away right now",
}


@dataclass(frozen=True, slots=True)
class Escalate:
    """The message needs the creator (step 5): why, with its signals."""

    reason: str  # novel or complex
    signals: Signals


def measure(text: str, similarity: float) -> Signals:
    vague = sig.vagueness(text)
    s = round(max(0.0, min(1.0, similarity)), 4)
    return Signals(
        similarity=s,
        novelty=round(1.0 - s, 4),
        complexity=sig.complexity(text),
        vagueness=round(vague, 4),
        confidence=sig.confidence(vague, s),
    )


def gate(policy: AgentPolicy, text: str, tier: str) -> Decision | None:
    """Steps 1 and 2, which need no embedding."""
    if policy.allowed_tiers and tier not in policy.allowed_tiers:
        return refuse(policy, "tier_not_allowed", Signals())
    if sig.blocked_topic(text, policy.blocked_topics) is not None:
        return refuse(policy, "blocked_topic", Signals())
    return None


def classify(policy: AgentPolicy, signals: Signals, canonical: CanonicalAnswer | None) -> Decision | Escalate:
    """Steps 3, 4, 5 (up to the need of an escalation) and 6."""
    if canonical is not None and signals.similarity >= policy.similarity_threshold:
        return Decision(
            Path.CANONICAL, "canonical_match", signals, canonical.answer, canonical_id=canonical.id
        )
    if policy.clarification and signals.confidence < policy.confidence_threshold:
        return Decision(Path.CLARIFY, "vague", signals, "\n".join(policy.clarifying_questions))
    if signals.novelty >= policy.novelty_threshold:
        return Escalate("novel", signals)
    if signals.complexity >= policy.complexity_threshold:
        return Escalate("complex", signals)
    return Decision(Path.AUTO_ANSWER, "high_confidence", signals)


def escalation(
    policy: AgentPolicy, want: Escalate, *, over_limit: bool, available_from: float, now: float
) -> Decision:
    """Step 5: refuse, answer with the model, or offer (the offer's id and text are the caller's)."""
    if not policy.escalations:
        return refuse(policy, "escalations_disabled", want.signals)
    if over_limit:
        return refuse(policy, "escalation_limit", want.signals)
    if available_from > now or available_from == 0.0:
        if policy.outside_availability == "refuse":
            return refuse(policy, "creator_unavailable", want.signals, available_from)
        return Decision(Path.AUTO_ANSWER, "creator_unavailable", want.signals, available_from=available_from)
    return Decision(Path.OFFER_ESCALATION, want.reason, want.signals)


def refuse(policy: AgentPolicy, reason: str, signals: Signals, available_from: float = 0.0) -> Decision:
    text = f"Sorry, I can't help with this one: {_REFUSALS[reason]}."
    if policy.alternatives:
        text += " You could: " + " ".join(policy.alternatives)
    return Decision(
        Path.REFUSE,
        reason,
        signals,
        text,
        alternatives=tuple(policy.alternatives),
        available_from=available_from,
    )


def offer_text(agent_name: str, reason: str) -> str:
    why = "is new to me" if reason == "novel" else "deserves a careful answer"
    return (
        f"This question {why}, so {agent_name} may want to answer it personally. "
        "Would you like me to send it to them? Accept the offer to queue it."
    )
