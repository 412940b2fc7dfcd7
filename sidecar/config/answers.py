"""The answer policy of creator agents (policy.answers): per persona, how a message is answered before
any model is called (docs/answer-policy.md), and where canonical answers and escalations are kept.

Every agent named here must be a configured persona; its tiers must be configured tiers; its creators
must be configured credentials (checked against the whole Config by `problems`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from sidecar.config.model import ConfigModel
from sidecar.config.redis import REDIS_URL, RedisConnectionConfig, check_redis
from sidecar.config.yaml_text import YamlProblem, parse_yaml

LAYERS = ("public", "friends", "intimate")  # each layer sees its own answers and those before it
Layer = Literal["public", "friends", "intimate"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALL_DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


class Window(ConfigModel):
    """When the creator takes escalations: these days, from `start` to `end` (local time of the
    agent's timezone; end after start, 24:00 is the end of the day)."""

    days: list[Day] = Field(default_factory=lambda: list(_ALL_DAYS), min_length=1)
    start: str = Field(default="00:00", pattern=_HHMM)
    end: str = Field(default="24:00", pattern=_HHMM)

    @model_validator(mode="after")
    def _order(self) -> Window:
        if minutes(self.end) <= minutes(self.start):
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


class CanonicalSeed(ConfigModel):
    """A canonical answer the creator wrote in advance (loaded into every configured tenant)."""

    question: str = Field(min_length=1, max_length=4000)
    answer: str = Field(min_length=1, max_length=20_000)
    layer: Layer = "public"


DEFAULT_CONTEXT_PROMPT = (
    "These are the last messages of a conversation, then the question a user sent to the creator. "
    "In two or three sentences, tell the creator what the user wants and what was already said. "
    "Leave out pleasantries."
)


class ContextSummary(ConfigModel):
    """Opt-in: when an escalation is queued, a model route writes a short summary of its last
    messages for the creator; a failure, a timeout or a summary over `max_chars` keeps the verbatim
    messages instead. The call is the user's (tier, quota, metrics, usage ledger)."""

    route: str = Field(min_length=1, description="the route alias that writes the summary")
    max_tokens: int = Field(default=160, ge=16, le=2048, description="asked of the model")
    max_chars: int = Field(default=2000, ge=100, le=20_000, description="a longer summary is not kept")
    max_input_chars: int = Field(default=8000, ge=100, le=200_000, description="transcript sent, newest kept")
    timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="then the verbatim messages")
    prompt: str = Field(default=DEFAULT_CONTEXT_PROMPT, min_length=1, max_length=4000)


class AgentPolicy(ConfigModel):
    """How messages to one agent (a persona) are answered. Thresholds are in [0, 1]."""

    confidence_threshold: float = Field(default=0.35, ge=0, le=1, description="below: clarify (B)")
    clarification: bool = Field(default=True, description="ask clarifying questions when vague (B)")
    similarity_threshold: float = Field(default=0.85, ge=0, le=1, description="at or above: canonical (C)")
    novelty_threshold: float = Field(default=0.7, ge=0, le=1, description="at or above: offer escalation (D)")
    complexity_threshold: float = Field(default=0.6, ge=0, le=1, description="at or above: offer escalation")
    escalations: bool = Field(default=True, description="escalations enabled; off: refuse (F) instead")
    escalations_per_day: int | None = Field(default=20, ge=0, description="accepted per day; None = no limit")
    escalations_per_week: int | None = Field(default=100, ge=0, description="accepted per ISO week")
    blocked_topics: list[str] = Field(default_factory=list, max_length=500)
    allowed_tiers: list[str] = Field(default_factory=list, description="empty = every tier")
    timezone: str = Field(default="UTC", description="IANA zone of the windows and the day/week limits")
    availability: list[Window] = Field(default_factory=list, description="empty = always available")
    outside_availability: Literal["auto_answer", "refuse"] = Field(
        default="auto_answer", description="what replaces an escalation offer outside the windows"
    )
    offer_expiry_seconds: float = Field(default=3600.0, gt=0, le=30 * 86_400)
    max_open_offers_per_user: int = Field(
        default=3, ge=1, le=1000, description="offers neither accepted nor expired, per user (F offer_limit)"
    )
    max_open_offers: int = Field(
        default=500, ge=1, le=1_000_000, description="offers not yet accepted nor expired, per tenant"
    )
    escalation_expiry_seconds: float = Field(default=7 * 86_400.0, gt=0, le=365 * 86_400)
    context_messages: int = Field(
        default=6, ge=0, le=50, description="last messages attached to an escalation"
    )
    context_summary: ContextSummary | None = Field(
        default=None, description="a model's summary instead of the verbatim messages (opt-in)"
    )
    creators: list[str] = Field(default_factory=list, description="credential names that act for the creator")
    clarifying_questions: list[str] = Field(
        default_factory=lambda: [
            "Could you say a little more about what you mean?",
            "What exactly would you like to know, and what have you tried so far?",
        ],
        min_length=1,
        max_length=2,
    )
    alternatives: list[str] = Field(
        default_factory=lambda: ["Browse the answers I have already written.", "Ask me something else."],
        max_length=10,
    )
    canonical: list[CanonicalSeed] = Field(default_factory=list, max_length=10_000)
    canonical_file: Path | None = Field(default=None, description="a YAML list of canonical answers")
    _from_file: tuple[CanonicalSeed, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _load_file(self) -> AgentPolicy:
        if self.canonical_file is not None:
            self._from_file = tuple(load_canonical_file(self.canonical_file))
        return self

    def seeds(self) -> tuple[CanonicalSeed, ...]:
        """The inline canonical answers, then those of canonical_file."""
        return (*self.canonical, *self._from_file)

    @field_validator("blocked_topics")
    @classmethod
    def _topics(cls, topics: list[str]) -> list[str]:
        for topic in topics:
            if not topic.strip() or len(topic) > 200:
                raise ValueError("each blocked topic is 1 to 200 characters, not only spaces")
        return [t.strip().lower() for t in topics]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as Europe/Paris)") from None
        return zone

    @model_validator(mode="after")
    def _limits(self) -> AgentPolicy:
        day, week = self.escalations_per_day, self.escalations_per_week
        if day is not None and week is not None and day > week:
            raise ValueError(f"escalations_per_day ({day}) is more than escalations_per_week ({week})")
        return self


class AnswersPolicy(ConfigModel):
    """Agents with an answer policy, and the store of canonical answers and escalations."""

    agents: dict[str, AgentPolicy] = Field(default_factory=dict, description="persona id -> policy")
    store: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: str = Field(default=":memory:", min_length=1)
    redis_url: str | None = Field(default=None, pattern=REDIS_URL)
    redis: RedisConnectionConfig = RedisConnectionConfig()
    key_prefix: str = Field(default="orch:answers", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")
    embedding_route: str | None = Field(default=None, description="default: embeddings.default_route")
    seed_tenants: list[str] = Field(default_factory=list, description="tenants the canonical seeds go to")
    timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    sweep_interval_seconds: float = Field(
        default=30.0, ge=1, le=3600, description="how often due escalations are expired in the background"
    )
    sweep_batch: int = Field(default=500, ge=1, le=10_000, description="expired per sweep, at most")
    closed_retention_days: float = Field(
        default=30.0,
        gt=0,
        le=3650,
        description="answered, declined and expired escalations are deleted this long after they closed",
    )

    @model_validator(mode="after")
    def _redis_needs_url(self) -> AnswersPolicy:
        if self.store == "redis" and self.redis_url is None:
            raise ValueError("store 'redis' needs `redis_url` (redis://HOST:PORT/DB)")
        check_redis(self.redis_url, self.redis)
        for tenant in self.seed_tenants:
            if not re.fullmatch(r"^[A-Za-z0-9._:@-]{1,128}$", tenant):
                raise ValueError(f"seed_tenants: {tenant!r} is not a tenant id")
        return self

    def problems(
        self,
        personas: Collection[str],
        tiers: Collection[str],
        credentials: Collection[str],
        embedding_routes: Collection[str],
        routes: Collection[str],
    ) -> list[str]:
        """References to personas, tiers, credentials, embedding routes and routes that do not exist."""
        found: list[str] = []
        for agent, policy in self.agents.items():
            where = f"answers.agents.{agent}"
            if agent not in personas:
                found.append(f"{where}: unknown persona {agent!r}")
            found += [
                f"{where}.allowed_tiers: unknown tier {t!r}" for t in policy.allowed_tiers if t not in tiers
            ]
            found += [
                f"{where}.creators: unknown credential {c!r}" for c in policy.creators if c not in credentials
            ]
            summary = policy.context_summary
            if summary is not None and summary.route not in routes:
                found.append(f"{where}.context_summary.route: unknown route {summary.route!r}")
        if self.embedding_route is not None and self.embedding_route not in embedding_routes:
            found.append(f"answers.embedding_route: unknown embedding route {self.embedding_route!r}")
        return found


def load_canonical_file(path: Path) -> list[CanonicalSeed]:
    """A YAML list of {question, answer, layer}, or ValueError naming the file and each bad entry."""
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YamlProblem) as exc:
        raise ValueError(f"canonical_file {str(path)!r}: cannot read: {exc}") from None
    if not isinstance(data, list):
        raise ValueError(f"canonical_file {str(path)!r}: a YAML list of {{question, answer, layer}}")
    seeds: list[CanonicalSeed] = []
    errors: list[str] = []
    for i, entry in enumerate(data):
        try:
            seeds.append(CanonicalSeed.model_validate(entry))
        except ValidationError as exc:
            errors += [f"[{i}].{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    if errors:
        raise ValueError(f"canonical_file {str(path)!r}: " + "; ".join(errors))
    return seeds
