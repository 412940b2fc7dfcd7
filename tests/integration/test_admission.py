"""Admission control through the real server: capacity, priority queue, shedding with RetryInfo,
the caller's priority from metadata, the tier's cap, and the metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, text_of

pytestmark = pytest.mark.integration
Serve = Callable[..., Any]


def config(**policy: Any) -> dict[str, Any]:
    # a running call lasts 1 s: room under load to queue and displace calls before it ends
    slow = {"provider": "echo", "model": "echo-1", "echo": {"first_token_delay_seconds": 1.0}}
    return {
        "policy": {
            **echo_policy(),
            "deployments": {"echo": slow},
            "admission": {"capacity": 1, "queue_size": 1, "retry_after_seconds": 3},
            **policy,
        }
    }


def request(priority: str | None = None, **kw: Any) -> gen.GenerateRequest:
    metadata = {"priority": priority} if priority is not None else {}
    return generate_request(
        messages=[user("hello there")], tenant_id="acme", user_id="bob", metadata=metadata, **kw
    )


async def until(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_critical_call_displaces_a_queued_low_one_and_never_a_running_one(serve: Serve) -> None:
    running = await serve(config())
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request("LOW"), timeout=10))
    await until(lambda: queue.running == 1)
    low = asyncio.ensure_future(running.stub.Generate(request("low"), timeout=10))
    await until(lambda: queue.depth() == 1)
    critical = asyncio.ensure_future(running.stub.Generate(request("CRITICAL"), timeout=10))
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await low
    err = await rich(shed.value)
    assert err.code is grpc.StatusCode.UNAVAILABLE and err.reason == "OVERLOADED"
    assert err.retry is not None and err.retry.retry_delay.seconds == 3
    assert text_of(await first) and text_of(await critical)  # the running call finished untouched
    metrics = running.sidecar.deps.telemetry.metrics.registry
    assert metrics.get_sample_value("sidecar_admission_shed_total", {"priority": "low"}) == 1
    assert metrics.get_sample_value("sidecar_admission_wait_seconds_count", {"priority": "critical"}) == 1
    assert metrics.get_sample_value("sidecar_admission_queue_depth", {"priority": "critical"}) == 0
    assert metrics.get_sample_value("sidecar_admission_running_calls") == 0


async def test_a_full_queue_sheds_the_newcomer_of_no_higher_priority(serve: Serve) -> None:
    running = await serve(config())
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.running == 1)
    waiting = asyncio.ensure_future(running.stub.Generate(request("HIGH"), timeout=10))
    await until(lambda: queue.depth() == 1)
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await running.stub.Generate(request("HIGH"), timeout=10)
    assert shed.value.code() is grpc.StatusCode.UNAVAILABLE
    await first
    await waiting


async def test_a_waiter_past_its_deadline_gets_deadline_exceeded_and_is_not_charged(serve: Serve) -> None:
    running = await serve(config())
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.running == 1)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await running.stub.Generate(request("URGENT"), timeout=0.1)
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await first
    await until(lambda: queue.depth() == 0 and queue.running == 0)


async def test_bad_priority_is_invalid_argument(serve: Serve) -> None:
    running = await serve(config())
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await running.stub.Generate(request("highest"), timeout=10)
    err = await rich(bad.value)
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT and err.fields == ["input.metadata[priority]"]


async def test_the_tier_caps_the_priority(serve: Serve) -> None:
    tiers = {"free": {"max_priority": "LOW"}, "enterprise": {}}
    running = await serve(config(tiers=tiers, tier_assignment={"default": "free"}))
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.running == 1)
    queued = asyncio.ensure_future(running.stub.Generate(request("LOW"), timeout=10))
    await until(lambda: queue.depth() == 1)
    with pytest.raises(grpc.aio.AioRpcError) as shed:  # CRITICAL asked, LOW given: no displacing
        await running.stub.Generate(request("CRITICAL"), timeout=10)
    assert shed.value.code() is grpc.StatusCode.UNAVAILABLE
    await first
    await queued
