"""Per-deployment capacity in the route layer, on virtual time: a full deployment is skipped for the
next one; when every deployment is full the call waits by priority for the first full one (shed
lowest first, bounded by its deadline); slots are held until the stream ends and given back at once
by deployments that failed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator

import pytest

from sidecar.admission.deployments import DeploymentSlots
from sidecar.admission.queue import AdmissionQueue, OverloadedError
from sidecar.core.errors import DeadlineExceededError, ProvidersUnavailableError, ProviderUnavailableError
from sidecar.core.priority import Priority
from sidecar.core.types import Call, Chunk
from sidecar.pipeline.route import RouteLayer
from tests.conftest import FakeClock
from tests.support.calls import make_call
from tests.unit.pipeline.test_route import FINAL, Delayed, Script, hedged, routing


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(auto_advance=True)


def slots(clock: FakeClock, queue_size: int = 1, **capacity: int) -> DeploymentSlots:
    return DeploymentSlots(
        {
            name: AdmissionQueue(
                capacity=n, queue_size=queue_size, retry_after=2.0, clock=clock, deployment=name
            )
            for name, n in capacity.items()
        },
        clock=clock,
    )


def layer(script: Script, clock: FakeClock, s: DeploymentSlots) -> RouteLayer:
    return RouteLayer(script, routing=routing(clock), clock=clock, slots=s)


def call(clock: FakeClock, priority: Priority = Priority.NORMAL, timeout: float | None = 60) -> Call:
    return dataclasses.replace(make_call(clock, timeout=timeout), priority=priority)


async def opened(handler: RouteLayer, c: Call) -> AsyncGenerator[Chunk, None]:
    """A call that got its first chunk and holds its deployment's slot until closed."""
    stream = handler(c)
    assert await anext(stream) == FINAL
    return stream


def running(s: DeploymentSlots) -> dict[str, int]:
    return {name: q.running for name in "abc" if (q := s.queue(name)) is not None}


async def test_a_full_deployment_is_skipped_for_the_next(clock: FakeClock) -> None:
    s = slots(clock, a=1)
    script = Script({}, clock)
    handler = layer(script, clock, s)
    first = await opened(handler, call(clock))
    second = call(clock)
    assert [c async for c in handler(second)] == [FINAL]
    assert script.called == ["a", "b"]
    assert second.record.target is not None and second.record.target.deployment == "b"
    await first.aclose()
    assert running(s) == {"a": 0}
    assert [c async for c in handler(call(clock))] == [FINAL]
    assert script.called == ["a", "b", "a"]


async def test_a_failed_deployment_gives_its_slot_back_at_once(clock: FakeClock) -> None:
    s = slots(clock, a=1, b=1)
    script = Script({"a": ([], ProviderUnavailableError("503"))}, clock)
    stream = await opened(layer(script, clock, s), call(clock))
    assert running(s) == {"a": 0, "b": 1}  # b serves and holds its slot; a's is back
    await stream.aclose()
    assert running(s) == {"a": 0, "b": 0}


async def test_when_all_are_full_the_call_waits_for_the_first_by_priority(clock: FakeClock) -> None:
    s = slots(clock, queue_size=1, a=1, b=1, c=1)
    script = Script({}, clock)
    handler = layer(script, clock, s)
    streams = [await opened(handler, call(clock)) for _ in range(3)]
    assert running(s) == {"a": 1, "b": 1, "c": 1}
    low = asyncio.ensure_future(anext(handler(call(clock, Priority.LOW))))
    for _ in range(10):
        await asyncio.sleep(0)
    assert s.queue("a").depth() == 1  # type: ignore[union-attr]
    critical = asyncio.ensure_future(anext(handler(call(clock, Priority.CRITICAL))))
    with pytest.raises(OverloadedError) as shed:  # displaced from a's queue by the critical call
        await low
    assert shed.value.metadata == {"priority": "LOW", "deployment": "a", "retryAfterSeconds": "2"}
    assert not critical.done()  # running calls are never interrupted
    await streams[0].aclose()  # a's slot passes to the critical call
    assert await critical == FINAL
    assert script.called == ["a", "b", "c", "a"]
    for stream in streams[1:]:
        await stream.aclose()


async def test_a_queued_call_past_its_deadline_is_deadline_exceeded(clock: FakeClock) -> None:
    s = slots(clock, a=1, b=1, c=1)
    handler = layer(Script({}, clock), clock, s)
    streams = [await opened(handler, call(clock)) for _ in range(3)]
    late = call(clock, timeout=5)
    with pytest.raises(DeadlineExceededError):
        await anext(handler(late))
    assert s.queue("a").depth() == 0  # type: ignore[union-attr]
    for stream in streams:
        await stream.aclose()
    assert running(s) == {"a": 0, "b": 0, "c": 0}


async def test_a_deployment_without_a_capacity_is_unlimited(clock: FakeClock) -> None:
    s = slots(clock, b=1)
    script = Script({}, clock)
    handler = layer(script, clock, s)
    streams = [await opened(handler, call(clock)) for _ in range(4)]
    assert script.called == ["a", "a", "a", "a"] and running(s) == {"b": 0}
    for stream in streams:
        await stream.aclose()


async def test_a_waiting_call_takes_the_first_deployment_to_free_up(clock: FakeClock) -> None:
    s = slots(clock, queue_size=1, a=1, b=1, c=1)
    script = Script({}, clock)
    handler = layer(script, clock, s)
    streams = [await opened(handler, call(clock)) for _ in range(3)]
    waiting = call(clock)
    served = asyncio.ensure_future(anext(handler(waiting)))
    for _ in range(10):
        await asyncio.sleep(0)
    await streams[2].aclose()  # c frees first
    assert await served == FINAL
    assert waiting.record.target is not None and waiting.record.target.deployment == "c"
    assert [s.queue(n).depth() for n in "abc"] == [0, 0, 0]  # type: ignore[union-attr]
    for stream in streams[:2]:
        await stream.aclose()
    assert running(s) == {"a": 0, "b": 0, "c": 1}  # the waiting call's stream still holds c


async def test_a_hedge_backup_whose_breaker_is_open_takes_no_slot() -> None:
    """The hedge asked the backup's breaker after taking its slot: with the breaker open the backup
    was not raced, yet its slot stayed taken while the primary waited for its first chunk."""
    clock = FakeClock()
    s = slots(clock, b=1)
    r = routing(clock, hedged())
    r.breakers.get("b").record_failure(retry_after=60)  # b paused by its upstream
    handler = RouteLayer(Delayed({}, clock, delays={"a": 5.0}), routing=r, clock=clock, slots=s)
    served = asyncio.ensure_future(anext(handler(call(clock))))
    for _ in range(10):
        await asyncio.sleep(0)
    clock.advance(0.05)  # past the hedge delay: b is not raced (its breaker is open)
    for _ in range(10):
        await asyncio.sleep(0)
    assert running(s) == {"b": 0}  # nor is its only slot held while a is slow
    clock.advance(5)
    assert await served == FINAL


async def test_a_full_deployment_whose_breaker_is_open_is_not_waited_for(clock: FakeClock) -> None:
    """Every other deployment failed and b is full: the call waited in b's queue (taking a place
    others could have) only to be refused by b's open breaker once a slot came."""
    s = slots(clock, b=1)
    script = Script({"a": ([], ProviderUnavailableError("503"))}, clock)
    r = routing(clock)
    handler = RouteLayer(script, routing=r, clock=clock, slots=s)
    holder = await opened(handler, call(clock))  # a fails, b serves and keeps its slot
    assert running(s) == {"b": 1}
    r.breakers.get("b").record_failure(retry_after=60)  # now b's upstream says wait
    script.plans["c"] = ([], ProviderUnavailableError("503"))
    with pytest.raises(ProvidersUnavailableError) as info:
        await anext(handler(call(clock)))
    assert "b: CIRCUIT_OPEN" in info.value.message
    assert s.queue("b").depth() == 0  # type: ignore[union-attr]
    await holder.aclose()
