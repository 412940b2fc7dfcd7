"""The answer policy's values: the paths, a decision with its signals, canonical answers, escalations."""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

ContextKind = Literal["verbatim", "summary"]


class Path(enum.Enum):
    """The six ways a message to an agent is answered (docs/answer-policy.md)."""

    AUTO_ANSWER = "A"  # the model answers
    CLARIFY = "B"  # one or two clarifying questions, from the agent's templates
    CANONICAL = "C"  # the creator's own stored answer
    OFFER_ESCALATION = "D"  # the user is offered to send the message to the creator
    QUEUED = "E"  # the user accepted: the message waits in the creator's queue
    REFUSE = "F"  # refused politely, with the reason and alternatives

    @property
    def label(self) -> str:
        return self.name.lower()


class State(enum.Enum):
    """An escalation's lifecycle: OFFERED -> QUEUED -> ANSWERED | DECLINED; OFFERED or QUEUED ->
    EXPIRED when its time runs out."""

    OFFERED = "offered"
    QUEUED = "queued"
    ANSWERED = "answered"
    DECLINED = "declined"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Signals:
    similarity: float = 0.0  # best cosine similarity to the agent's canonical answers (0 when none)
    novelty: float = 1.0  # 1 - similarity
    complexity: float = 0.0
    vagueness: float = 0.0
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy chose for one message, before any model was called."""

    path: Path
    reason: str  # a short machine label: high_confidence, vague, canonical_match, novel, complex, ...
    signals: Signals = Signals()
    text: str = ""  # the answer for B, C, D and F ("" for A: the model answers)
    canonical_id: str = ""
    escalation_id: str = ""
    offer_expires_at: float = 0.0
    alternatives: tuple[str, ...] = ()
    available_from: float = 0.0  # the next availability window, when the creator is away now

    @property
    def answered_by_policy(self) -> bool:
        """B, C, D or F: the policy's own text answers the call, no model (nor experiment variant)."""
        return self.path is not Path.AUTO_ANSWER


@dataclass(frozen=True, slots=True)
class CanonicalAnswer:
    id: str
    tenant: str
    agent: str
    layer: str
    question: str
    answer: str
    created_at: float
    source: str = "config"  # config, escalation or api
    reuse_count: int = 0


@dataclass(frozen=True, slots=True)
class Escalation:
    id: str
    tenant: str
    agent: str
    user: str
    conversation: str
    question: str
    layer: str
    state: State
    created_at: float
    offer_expires_at: float
    context: tuple[tuple[str, str], ...] = ()  # (role, text) of the last messages before the question
    context_kind: ContextKind = "verbatim"  # summary: a model's `context_summary` replaces `context`
    context_summary: str = ""
    tier: str = ""  # the user's tier when the offer was made (a context summary is the user's call)
    reason: str = ""  # novel or complex
    queued_at: float = 0.0
    expires_at: float = 0.0  # a queued escalation's expiry
    closed_at: float = 0.0  # answered, declined or expired
    answer: str = ""
    canonical_id: str = ""
    decline_reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        doc: dict[str, Any] = asdict(self)
        doc["state"] = self.state.value
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | str) -> Escalation:
        doc = json.loads(data)
        doc = {k: v for k, v in doc.items() if k in _FIELDS}  # a newer sidecar's fields (shared Redis)
        doc["state"] = State(doc["state"])
        doc["context"] = tuple((str(r), str(t)) for r, t in doc["context"])
        return cls(**doc)

    def due(self, now: float) -> bool:
        """Its time ran out: an offer not accepted in time, or a queued message not answered."""
        if self.state is State.OFFERED:
            return now >= self.offer_expires_at
        return self.state is State.QUEUED and now >= self.expires_at

    @property
    def deadline(self) -> float | None:
        """When it falls due (the offer's or the queued message's expiry); None once closed."""
        if self.state is State.OFFERED:
            return self.offer_expires_at
        return self.expires_at if self.state is State.QUEUED else None

    @property
    def sent(self) -> bool:
        """The user accepted the offer: the message went to the creator. An offer never accepted
        (OFFERED, or EXPIRED before it was) holds words the user did not send."""
        return self.queued_at > 0 or self.state not in (State.OFFERED, State.EXPIRED)

    @property
    def retained_from(self) -> float | None:
        """When the retention of a closed escalation starts: its closing time; 0 for an offer that
        expired never accepted (the user sent nothing: it is deleted at the first sweep after, not
        kept `closed_retention_days`); None while it is open."""
        closed = self.closed
        if closed is not None and self.state is State.EXPIRED and not self.sent:
            return 0.0
        return closed

    @property
    def closed(self) -> float | None:
        """When it was closed (answered, declined or expired); None while it is open."""
        open_ = self.state in (State.OFFERED, State.QUEUED)
        return None if open_ else self.closed_at

    def expired(self, now: float) -> Escalation:
        return replace(self, state=State.EXPIRED, closed_at=now)


_FIELDS = frozenset(Escalation.__dataclass_fields__)
MAX_QUESTION_CHARS = 20_000  # as much as a creator's answer may hold
MAX_CONTEXT_MESSAGE_CHARS = 4_000
MAX_CONTEXT_CHARS = 24_000


def clipped(text: str, limit: int) -> str:
    """`text` cut to its first `limit` characters, saying how many more there were."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... {len(text) - limit} more characters not kept]"


def kept_context(messages: tuple[tuple[str, str], ...], count: int) -> tuple[tuple[str, str], ...]:
    """The last `count` messages an escalation keeps for its creator, each cut to
    MAX_CONTEXT_MESSAGE_CHARS, newest first until MAX_CONTEXT_CHARS: offers cost the user nothing,
    and 50 messages of 200,000 characters were stored whole with each one."""
    kept: list[tuple[str, str]] = []
    room = MAX_CONTEXT_CHARS
    for role, text in reversed(messages[-count:] if count else ()):
        text = clipped(text, min(MAX_CONTEXT_MESSAGE_CHARS, room))
        room -= len(text)
        kept.append((role, text))
        if room <= 0:
            break
    return tuple(reversed(kept))


def new_id(prefix: str) -> str:
    """An opaque id: the prefix and 22 url-safe random characters (128 bits)."""
    return prefix + secrets.token_urlsafe(16)
