"""Where canonical answers, escalations, the escalation limits and the path counts live.

Two stores pass one conformance suite (tests/integration/answers/test_store.py): `SqliteAnswerStore`
(the embedded default: SQLite, with each agent's vectors kept in memory) and `RedisAnswerStore` (many
sidecars sharing one Redis). Every read and write names the tenant and the agent: an answer is never
found across agents or tenants. `accept` is one atomic step (state check, both limits, the new
state), so the limits are exact under concurrency and across sidecars. `due` finds the escalations
whose time ran out over every tenant (the expiry sweep, sidecar/answers/sweeper.py), `forget` deletes
those closed longer than the retention (the same sweep) and `backlog`
counts the queued ones per agent; every transition, an expiry included, is `replace`'s
compare-and-set.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sidecar.answers.errors import EmbeddingModelError
from sidecar.answers.model import CanonicalAnswer, Escalation, State

_log = logging.getLogger("sidecar.answers")

if TYPE_CHECKING:  # numpy (~15 MB, ~0.1 s) is imported by the stores that hold vectors, not at start
    import numpy as np
    import numpy.typing as npt

    Vector = npt.NDArray[np.float32]


class Accepted(enum.Enum):
    OK = "ok"
    NOT_FOUND = "not_found"
    WRONG_STATE = "wrong_state"
    DAY_LIMIT = "day_limit"
    WEEK_LIMIT = "week_limit"


@dataclass(frozen=True, slots=True)
class Limits:
    """The buckets the acceptance falls in and their limits (None = no limit)."""

    day: str
    week: str
    per_day: int | None
    per_week: int | None


@dataclass(frozen=True, slots=True)
class OfferCaps:
    """The most open offers (OFFERED, not yet due) an agent may hold per user and per tenant."""

    per_user: int
    per_tenant: int


@dataclass(frozen=True, slots=True)
class PathCounts:
    """Messages per path (A..F) and distinct users, for the report."""

    paths: dict[str, int] = field(default_factory=dict)
    users: int = 0


class AnswerStore(Protocol):
    async def add_canonical(self, answer: CanonicalAnswer, vector: Vector) -> None: ...

    async def nearest(
        self, tenant: str, agent: str, layers: Sequence[str], vector: Vector
    ) -> tuple[CanonicalAnswer, float] | None:
        """The most similar canonical answer of the agent in one of `layers`; None when there is none."""
        ...

    async def reused(self, tenant: str, agent: str, answer_id: str) -> None:
        """Count one more serving of a canonical answer."""
        ...

    async def canonical(self, tenant: str, agent: str) -> list[CanonicalAnswer]:
        """The agent's canonical answers, oldest first."""
        ...

    async def has_canonical(self, tenant: str, agent: str, answer_id: str) -> bool:
        """Whether the canonical answer is stored (with its vector): one cheap read, so the sweeper
        can tell that a Redis lost its data and the configured answers must be stored again."""
        ...

    async def put(self, escalation: Escalation) -> None:
        """Store a new escalation (an offer)."""
        ...

    async def offer(self, escalation: Escalation, caps: OfferCaps) -> bool:
        """Store a new offer unless its user, or its tenant, already holds `caps` open offers of the
        agent (OFFERED and not due at the offer's `created_at`): the count and the write are one
        atomic step. False (nothing stored) when a cap is reached."""
        ...

    async def get(self, tenant: str, escalation_id: str) -> Escalation | None: ...

    async def replace(self, expect: State, new: Escalation) -> bool:
        """Store `new` only if the stored escalation is still in state `expect` (compare and set, one
        atomic step): of two racing moves from one state (a sweep and an answer, two sweepers) exactly
        one succeeds."""
        ...

    async def due(self, now: float, limit: int) -> list[Escalation]:
        """At most `limit` escalations of any tenant and agent whose time ran out at `now` (OFFERED or
        QUEUED past their deadline), the longest overdue first. Moving them is `replace`'s job."""
        ...

    async def forget(self, before: float, limit: int) -> int:
        """Delete at most `limit` escalations of any tenant closed before `before` (the retention's
        end), the longest closed first; how many were deleted. An open escalation is never deleted."""
        ...

    async def backlog(self, agents: Collection[str]) -> dict[str, int]:
        """Escalations in QUEUED per agent of `agents`, over every tenant."""
        ...

    async def accept(self, expect: State, new: Escalation, limits: Limits) -> Accepted:
        """OFFERED -> QUEUED and one escalation counted in both buckets, atomically, or why not."""
        ...

    async def used(self, tenant: str, agent: str, limits: Limits) -> tuple[int, int]:
        """Escalations counted in the day and week buckets."""
        ...

    async def escalations(self, tenant: str, agent: str) -> list[Escalation]:
        """The agent's escalations, oldest first (ties by id)."""
        ...

    async def count_path(self, tenant: str, agent: str, path: str, user: str) -> None: ...

    async def path_counts(self, tenant: str, agent: str) -> PathCounts: ...

    async def aclose(self) -> None: ...


def readable(doc: bytes | str) -> Escalation | None:
    """The stored escalation, or None (logged) when this sidecar cannot read it: a newer sidecar's
    state on a shared store, a record edited by hand. Left out of a sweep or a list, it stops
    neither for the others."""
    try:
        return Escalation.decode(doc)
    except (ValueError, KeyError, TypeError) as exc:
        _log.warning("an escalation record cannot be read; left out", extra={"error": type(exc).__name__})
        return None


def unit(vector: Vector) -> Vector:
    import numpy as np

    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def best(vectors: Vector, query: Vector) -> tuple[int, float]:
    """The row of `vectors` most similar to `query` (both unit length) and its cosine similarity."""
    import numpy as np

    scores = vectors @ unit(query)
    i = int(np.argmax(scores))
    return i, float(scores[i])


def comparable(sizes: Sequence[int], query: Vector) -> list[int]:
    """The indexes of the vectors of the query's size: the others were made by another embedding
    model (the route's model changed, on a store that kept them). EmbeddingModelError when there are
    vectors but none of that size: the search cannot say how near the question is."""
    size = int(query.shape[0])
    keep = [i for i, n in enumerate(sizes) if n == size]
    if sizes and not keep:
        raise EmbeddingModelError(
            f"the canonical answers were embedded by another model ({sizes[0]} dimensions, "
            f"the question {size}): embed them again with the route's model"
        )
    return keep
