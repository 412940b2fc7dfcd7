"""An agent's answer-policy figures, read from the store (the same for every sidecar sharing it):
auto-answer rate, escalations per 100 users, canonical reuse rate, queue backlog, decline rate and
the median time from acceptance to the creator's answer."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from sidecar.answers.model import Path, State
from sidecar.answers.queue import EscalationQueue
from sidecar.answers.store import AnswerStore


@dataclass(frozen=True, slots=True)
class Report:
    messages: int = 0
    paths: dict[str, int] = field(default_factory=dict)
    users: int = 0
    auto_answer_rate: float = 0.0
    escalations_per_100_users: float = 0.0
    reuse_rate: float = 0.0
    queue_backlog: int = 0
    decline_rate: float = 0.0
    median_seconds_to_answer: float = 0.0
    canonical_answers: int = 0
    canonical_reuses: int = 0


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def build_report(store: AnswerStore, queue: EscalationQueue, tenant: str, agent: str) -> Report:
    counts = await store.path_counts(tenant, agent)
    escalations = await queue.list(tenant, agent, ())  # expires what is due, so the backlog is honest
    canonical = await store.canonical(tenant, agent)
    messages = sum(counts.paths.values())
    accepted = [e for e in escalations if e.queued_at]
    answered = [e for e in escalations if e.state is State.ANSWERED]
    declined = sum(1 for e in escalations if e.state is State.DECLINED)
    waits = [e.closed_at - e.queued_at for e in answered]
    return Report(
        messages=messages,
        paths=dict(sorted(counts.paths.items())),
        users=counts.users,
        auto_answer_rate=_share(counts.paths.get(Path.AUTO_ANSWER.value, 0), messages),
        escalations_per_100_users=round(100 * len(accepted) / counts.users, 2) if counts.users else 0.0,
        reuse_rate=_share(counts.paths.get(Path.CANONICAL.value, 0), messages),
        queue_backlog=sum(1 for e in escalations if e.state is State.QUEUED),
        decline_rate=_share(declined, len(answered) + declined),
        median_seconds_to_answer=round(statistics.median(waits), 3) if waits else 0.0,
        canonical_answers=len(canonical),
        canonical_reuses=sum(c.reuse_count for c in canonical),
    )
