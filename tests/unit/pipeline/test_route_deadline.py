"""Defect 1 in the route layer: the caller's deadline is the caller's, whichever timer fires first.

Every case runs on virtual time: an upstream timer that fires at (or a hair before) the deadline,
a first-chunk timeout longer than the time left, a cancellation that an HTTP client turned into a
connection error, and a retry backoff the deadline cannot cover. None of them may record a breaker
failure, spend retry budget, or fall back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator

import pytest

from sidecar.config.schema import Policy
from sidecar.core.clock import FakeClock
from sidecar.core.errors import DeadlineExceededError, ProviderTimeoutError, ProviderUnavailableError
from sidecar.core.types import Call, Chunk, FinishReason, Usage
from sidecar.pipeline.route import RouteLayer
from sidecar.routing.breaker import BreakerPolicy, Breakers, BreakerState
from sidecar.routing.plan import Routing
from sidecar.routing.retry import BudgetPolicy, RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.table import RouteTable
from tests.support.calls import make_call

FINAL = Chunk(finish_reason=FinishReason.STOP, usage=Usage(3, 2))
TRIP_AT_ONCE = BreakerPolicy(min_requests=1, failure_ratio=0.01, cooldown_seconds=30)


def policy(**route: object) -> Policy:
    return Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {n: {"provider": "echo", "model": f"m-{n}"} for n in ("a", "b")},
            "routes": {"main": {"deployments": ["a", "b"], "retry": {"max_attempts": 3}, **route}},
        }
    )


def routing(clock: FakeClock, p: Policy) -> Routing:
    return Routing(
        table=RouteTable.from_policy(p),
        breakers=Breakers(TRIP_AT_ONCE, clock),
        budgets=RetryBudgets(BudgetPolicy(), clock),
        stats=Stats(),
        rng=random.Random(7),
    )


class Slow:
    """Each attempt waits `wait` virtual seconds, then fails with what a lower timer would raise."""

    def __init__(self, clock: FakeClock, wait: float, error: Exception | None) -> None:
        self.clock, self.wait, self.error, self.called = clock, wait, error, 0

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.called += 1
        await self.clock.sleep(self.wait)
        if self.error is not None:
            raise self.error
        yield FINAL


def assert_nothing_counted(r: Routing, call: Call) -> None:
    for name in ("a", "b"):
        snap = r.breakers.get(name).snapshot()
        assert snap.state is BreakerState.CLOSED and snap.failures == 0, name
        assert r.stats.get(name).snapshot().last_error is None, name
    assert [a.outcome for a in call.record.attempts] == ["DEADLINE_EXCEEDED"]


@pytest.mark.parametrize("early", [0.0, 0.001, 0.015])
async def test_an_upstream_timeout_at_the_deadline_is_the_callers(early: float) -> None:
    """An HTTP read timeout bounded by the time left fires at the deadline (asyncio may run it a
    hair early): DEADLINE_EXCEEDED, no fallback, no breaker failure, no retry."""
    clock = FakeClock(auto_advance=True)
    r = routing(clock, policy())
    call = make_call(clock, timeout=0.3)
    script = Slow(clock, 0.3 - early, ProviderTimeoutError("upstream did not answer within the read timeout"))
    with pytest.raises(DeadlineExceededError):
        [c async for c in RouteLayer(script, routing=r, clock=clock)(call)]
    assert script.called == 1
    assert_nothing_counted(r, call)


async def test_a_first_chunk_timeout_longer_than_the_deadline_fires_at_the_deadline() -> None:
    clock = FakeClock(auto_advance=True)
    r = routing(clock, policy(first_token_timeout_seconds=10))
    call = make_call(clock, timeout=0.3)
    script = Slow(clock, 100, None)
    with pytest.raises(DeadlineExceededError):
        [c async for c in RouteLayer(script, routing=r, clock=clock)(call)]
    assert clock.monotonic() == pytest.approx(1000.3)  # not 10 s: bounded by the time left
    assert_nothing_counted(r, call)


async def test_a_connection_error_at_the_deadline_is_the_callers() -> None:
    """gRPC cancelling the handler at the deadline can surface from an HTTP client as a broken
    connection: at the deadline, that is not the deployment's failure either."""
    clock = FakeClock(auto_advance=True)
    r = routing(clock, policy())
    call = make_call(clock, timeout=0.3)
    script = Slow(
        clock, 0.299, ProviderUnavailableError("upstream connection failed (ServerDisconnectedError)")
    )
    with pytest.raises(DeadlineExceededError):
        [c async for c in RouteLayer(script, routing=r, clock=clock)(call)]
    assert_nothing_counted(r, call)


async def test_a_swallowed_cancellation_stays_a_cancellation() -> None:
    """An HTTP client that turns the task's cancellation into its own error must not make the route
    layer retry or count a failure: the attempt ends CANCELLED and the cancellation goes on."""
    clock = FakeClock(auto_advance=True)
    r = routing(clock, policy())
    call = make_call(clock, timeout=60)
    entered = asyncio.Event()

    async def swallowing(c: Call) -> AsyncGenerator[Chunk, None]:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ProviderUnavailableError("upstream connection failed (ClientOSError)") from None
        yield FINAL

    async def consume() -> None:
        async for _ in RouteLayer(swallowing, routing=r, clock=clock)(call):
            pass

    task = asyncio.create_task(consume())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [a.outcome for a in call.record.attempts] == ["CANCELLED"]
    assert r.breakers.get("a").snapshot().failures == 0


async def test_a_backoff_the_deadline_cannot_cover_spends_no_retry_budget() -> None:
    clock = FakeClock(auto_advance=True)
    r = routing(clock, policy(retry={"max_attempts": 3, "base_delay_seconds": 5, "max_delay_seconds": 5}))
    call = make_call(clock, timeout=0.5)
    script = Slow(clock, 0.01, ProviderUnavailableError("503"))
    budget_before = r.budgets.get("a").snapshot()
    with pytest.raises(Exception):  # noqa: B017 (the deployment's own 503s; what matters is below)
        [c async for c in RouteLayer(script, routing=r, clock=clock)(call)]
    assert r.budgets.get("a").snapshot().retries == budget_before.retries
