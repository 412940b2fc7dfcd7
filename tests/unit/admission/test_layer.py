"""The admission layer: the tier's cap, the slot held for the stream and given back however it ends."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

import pytest

from sidecar.admission.queue import AdmissionQueue
from sidecar.core.clock import FakeClock
from sidecar.core.errors import ProvidersUnavailableError
from sidecar.core.layer import collect, inner_stream
from sidecar.core.priority import Priority
from sidecar.core.types import Call, Chunk, FinishReason
from sidecar.pipeline.admission import AdmissionLayer
from tests.support.calls import make_call


class Inner:
    def __init__(self, queue: AdmissionQueue | None = None, fail: bool = False) -> None:
        self.queue, self.fail = queue, fail
        self.seen: list[tuple[Priority, int]] = []

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.seen.append((call.priority, self.queue.running if self.queue is not None else -1))
        yield Chunk("a")
        if self.fail:
            raise ProvidersUnavailableError("down")
        yield Chunk("b", FinishReason.STOP)


def call(clock: FakeClock, priority: Priority, tier: str = "free") -> Call:
    return dataclasses.replace(make_call(clock, timeout=30), priority=priority, tier=tier)


async def test_the_tier_caps_the_priority_and_the_slot_is_held_while_streaming() -> None:
    clock = FakeClock()
    queue = AdmissionQueue(capacity=2, queue_size=0, retry_after=1, clock=clock)
    inner = Inner(queue)
    layer = AdmissionLayer(inner, queue=queue, caps={"free": Priority.NORMAL, "gold": None})
    await collect(layer, call(clock, Priority.CRITICAL))
    await collect(layer, call(clock, Priority.CRITICAL, tier="gold"))
    assert inner.seen == [(Priority.NORMAL, 1), (Priority.CRITICAL, 1)]
    assert queue.running == 0


async def test_the_slot_is_given_back_on_failure_and_when_the_consumer_stops() -> None:
    clock = FakeClock()
    queue = AdmissionQueue(capacity=1, queue_size=0, retry_after=1, clock=clock)
    layer = AdmissionLayer(Inner(queue, fail=True), queue=queue, caps={})
    with pytest.raises(ProvidersUnavailableError):
        await collect(layer, call(clock, Priority.LOW))
    assert queue.running == 0
    async with inner_stream(
        AdmissionLayer(Inner(queue), queue=queue, caps={}), call(clock, Priority.LOW)
    ) as s:
        async for _ in s:
            assert queue.running == 1
            break  # the consumer goes away after the first chunk
    assert queue.running == 0


async def test_without_admission_the_call_passes_with_no_hop() -> None:
    clock = FakeClock()
    inner = Inner()
    layer = AdmissionLayer(inner, queue=None, caps={})
    c = call(clock, Priority.HIGH)
    assert layer(c).ag_code is inner(c).ag_code  # the inner handler's own generator
