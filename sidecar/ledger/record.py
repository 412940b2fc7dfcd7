"""What the ledger stores per call, what GetUsage asks, and what it answers; the store protocol."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.core.errors import Code, SidecarError


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One finished call. `outcome` is OK or the error's reason; `time` is wall-clock seconds. A call
    refused as unauthenticated has an empty tenant, user and metadata: what it claims is not trusted."""

    request_id: str
    tenant: str
    user: str
    persona: str
    route: str
    provider: str
    model: str
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    cost_usd: float
    latency_seconds: float
    overhead_seconds: float
    outcome: str
    time: float
    stream: bool = False
    cache_hit: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)  # the request's labels (bounded at the edge)
    experiment: str = ""  # the experiment and variant that served the call ("" = none)
    variant: str = ""
    variant_overridden: bool = False  # the request chose the variant (testing), not the assignment


@dataclass(frozen=True, slots=True)
class ExperimentRow:
    """One call of an experiment, as its report reads it."""

    variant: str
    ok: bool
    latency_seconds: float
    tokens: int
    cost_usd: float
    feedback: float | None
    outcome: str = ""  # the call's reason ("OK", "CANCELLED", "PROVIDERS_UNAVAILABLE", ...)


class FeedbackStatus(enum.Enum):
    STORED = "stored"
    REPEATED = "repeated"  # the same score and label were stored before: nothing changed
    CONFLICT = "conflict"  # the call has another score: nothing changed
    NOT_FOUND = "not_found"  # the tenant has no finished call with that id


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    status: FeedbackStatus
    experiment: str = ""  # the experiment and variant that served the scored call
    variant: str = ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A change of an experiment (promoted, stopped, resumed), when and by what."""

    time: float
    experiment: str
    change: str
    source: str


class GroupBy(enum.Enum):
    USER = "user"
    MODEL = "model"
    ROUTE = "route"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """A tenant's records in [start, end), optionally of one user, grouped one way."""

    tenant: str
    start: float
    end: float
    group_by: GroupBy
    user: str | None = None


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """The aggregate of one group; latency percentiles are nearest-rank over the group's calls;
    `cost_micros` is the sum of the calls' own integer micro-dollars (as their summaries said)."""

    key: str
    cost_usd: float
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    requests: int
    errors: int
    latency_p50: float
    latency_p95: float
    latency_p99: float
    cost_micros: int


class LedgerStore(Protocol):
    """Where records live: SQLite (embedded) or PostgreSQL (shared by sidecars)."""

    async def open(self) -> None: ...

    async def write(self, records: Sequence[UsageRecord]) -> None: ...

    async def usage(self, query: UsageQuery) -> list[UsageGroup]: ...

    async def delete_before(self, cutoff: float, limit: int | None = None) -> int:
        """Delete records older than `cutoff`, at most `limit` of them (None: all), in one
        transaction; how many were deleted."""

    async def feedback(self, tenant: str, request_id: str, score: float, label: str) -> FeedbackResult:
        """Score the tenant's call once (a call with a score keeps it)."""

    async def experiment_rows(
        self, experiment: str, start: float, end: float, tenant: str | None = None, limit: int | None = None
    ) -> list[ExperimentRow]:
        """The experiment's calls in [start, end): of one tenant, or every tenant's (None); at most
        `limit` of them (None: all)."""

    async def audit(self, entries: Sequence[AuditEntry]) -> None: ...

    async def aclose(self) -> None: ...


class LedgerDisabledError(SidecarError):
    """GetUsage was asked of a sidecar whose ledger is off."""

    code = Code.FAILED_PRECONDITION
    reason = "LEDGER_DISABLED"


class LedgerUnavailableError(SidecarError):
    """The ledger database could not be read."""

    code = Code.UNAVAILABLE
    reason = "LEDGER_UNAVAILABLE"
