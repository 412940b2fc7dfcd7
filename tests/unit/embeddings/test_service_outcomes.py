"""How an Embed call that did not finish is recorded: the metrics, the usage record and (with
tracing on) the span tell a caller's deadline from a caller that went away, as a Generate's do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sidecar.config.embeddings import EmbeddingsPolicy
from sidecar.core.clock import Deadline, FakeClock
from sidecar.embeddings.service import EmbeddingService, EmbedRequest
from sidecar.ledger.record import UsageRecord
from sidecar.telemetry.metrics import Metrics


class Waiting:
    """A router whose one deployment never answers (the caller's side ends the call)."""

    def __init__(self, policy: EmbeddingsPolicy) -> None:
        self._policy = policy
        self.started = asyncio.Event()

    def alias(self, requested: str) -> str:
        return requested or self._policy.default_route

    def candidates(self, alias: str) -> list[tuple[str, Any]]:
        return [(n, self._policy.deployments[n]) for n in self._policy.routes[alias].deployments]

    async def attempt(self, name: str, texts: list[str], deadline: Deadline) -> Any:
        self.started.set()
        await asyncio.Event().wait()


class Records:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def submit(self, record: UsageRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(("past_deadline", "outcome"), [(True, "DEADLINE_EXCEEDED"), (False, "CANCELLED")])
async def test_a_call_cancelled_by_grpc_is_the_callers_deadline_when_it_passed(
    clock: FakeClock, past_deadline: bool, outcome: str
) -> None:
    """gRPC cancels the handler when the caller's deadline passes, or when the caller leaves."""
    policy = EmbeddingsPolicy()
    router, metrics, ledger = Waiting(policy), Metrics(), Records()
    service = EmbeddingService(
        policy,
        router,
        clock=clock,
        metrics=metrics,
        ledger=ledger,  # type: ignore[arg-type]
    )
    req = EmbedRequest("r1", "t", "u", ("a text",), Deadline.after(1.0, clock))
    task = asyncio.ensure_future(service.embed(req))
    await router.started.wait()
    if past_deadline:
        clock.advance(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [r.outcome for r in ledger.records] == [outcome]
    code = {"route": policy.default_route, "deployment": "none", "code": outcome}
    assert metrics.registry.get_sample_value("sidecar_embed_requests_total", code) == 1
