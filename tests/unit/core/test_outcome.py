"""The call outcome: facts reported once each, upstream time as the union of waits, sealed at the end."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator

import pytest

from sidecar.config.schema import Policy
from sidecar.core.clock import Deadline, FakeClock
from sidecar.core.outcome import Outcome
from sidecar.core.types import Attempt, Chunk, FinishReason, Price, Target, Usage
from sidecar.pipeline.route import RouteLayer
from sidecar.pipeline.upstream import UpstreamCall
from sidecar.providers.base import Capabilities, ProviderRequest
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.routing.plan import Routing
from sidecar.routing.retry import BudgetPolicy, RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.table import RouteTable
from tests.support.calls import make_call

TARGET = Target("r", "d", "openai", "m", Price(1.0, 1.0))


def test_overlapping_waits_count_once() -> None:
    o = Outcome(started_at=0.0)
    o.upstream_wait_started(1.0)  # attempt a waits from 1 to 4
    o.upstream_wait_started(2.0)  # attempt b (a hedge) waits from 2 to 3
    o.upstream_wait_ended(3.0)
    o.upstream_wait_ended(4.0)
    o.upstream_wait_started(5.0)
    o.upstream_wait_ended(5.5)
    assert o.upstream_seconds == pytest.approx(3.5)


def test_reports_after_the_seal_are_dropped() -> None:
    o = Outcome(started_at=0.0)
    o.served_by(TARGET)
    o.upstream_finished(FinishReason.STOP, Usage(3, 2))
    o.seal()
    o.attempt_ended(Attempt("late", "openai", "HEDGE_LOST", 1.0))
    o.usage_estimated(Usage(99, 99))
    o.served_by(Target("r", "other", "openai", "m", Price()))
    assert o.sealed and o.attempts == () and o.usage == Usage(3, 2) and o.target == TARGET
    assert o.cost_usd == pytest.approx(5 / 1_000_000)


def test_a_cache_hit_costs_nothing_and_its_prompt_is_cached() -> None:
    o = Outcome(started_at=0.0)
    o.answered_from_cache(TARGET, FinishReason.STOP, Usage(10, 4))
    assert o.cache_hit and o.cost_usd == 0.0 and o.usage == Usage(10, 4, cached_tokens=10)


class Sleepy:
    """A provider that answers after `seconds` of virtual time."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds
        self.capabilities = Capabilities(
            streaming=True, tools=False, json_schema=False, max_context_tokens=1000
        )

    async def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        assert req.waits is not None  # the call's outcome: providers report their waits to it
        req.waits.upstream_wait_started(self.clock.monotonic())
        try:
            await self.clock.sleep(self.seconds)
        finally:
            req.waits.upstream_wait_ended(self.clock.monotonic())
        yield Chunk(text="hi")
        yield Chunk(finish_reason=FinishReason.STOP, usage=Usage(2, 1))

    async def probe(self, *, deadline: Deadline) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_a_hedged_call_counts_its_upstream_time_once() -> None:
    """Defect 12: the primary waits 2 s before the hedge wins 1 s after it started; the caller waited
    2 s for upstreams, not 3 s (which left an overhead of 0)."""
    clock = FakeClock(auto_advance=True)
    policy = Policy.model_validate(
        {
            "default_route": "r",
            "deployments": {n: {"provider": "echo", "model": n} for n in ("a", "b")},
            "routes": {
                "r": {
                    "deployments": ["a", "b"],
                    "hedging": {"enabled": True, "min_delay_seconds": 1.0, "default_delay_seconds": 1.0},
                }
            },
        }
    )
    routing = Routing(
        table=RouteTable.from_policy(policy),
        breakers=Breakers(BreakerPolicy(), clock),
        budgets=RetryBudgets(BudgetPolicy(), clock),
        stats=Stats(),
        rng=random.Random(1),
    )
    upstream = UpstreamCall({"a": Sleepy(clock, 100.0), "b": Sleepy(clock, 1.0)})
    call = make_call(clock)
    chunks = [c async for c in RouteLayer(upstream, routing=routing, clock=clock)(call)]
    assert "".join(c.text for c in chunks) == "hi"
    assert sorted(a.outcome for a in call.record.attempts) == ["HEDGE_LOST", "OK"]
    assert clock.monotonic() - call.record.started_at == pytest.approx(2.0)
    assert call.record.upstream_seconds == pytest.approx(2.0)


def test_a_call_the_answer_policy_answers_itself_has_no_experiment_variant() -> None:
    from sidecar.answers.model import Decision, Path

    for path, kept in [(Path.AUTO_ANSWER, True), *((p, False) for p in Path if p is not Path.AUTO_ANSWER)]:
        o = Outcome(started_at=0.0)
        o.experiment_assigned("tone", "b", overridden=True)
        o.answer_decided(Decision(path, "why"))
        assert (o.experiment, o.variant, o.variant_overridden) == (
            ("tone", "b", True) if kept else ("", "", False)
        )
