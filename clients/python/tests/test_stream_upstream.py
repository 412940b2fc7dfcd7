"""Every way a Python caller stops a stream ends the upstream attempt, seen from the sidecar's side
(ListModels: the echo deployment has no attempt in flight soon after, long before the 4 s the
stream would take), and the sidecar counts it as the caller's, not as a provider failure (no
last_error on the deployment, its breaker closed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

import orchestrator_client as oc
from orchestrator_client._gen.orchestrator.v1 import models_pb2

# 400 words, 2 tokens a chunk every 20 ms on the contract's echo deployment: about 4 s of stream
LONG = " ".join(f"w{i}" for i in range(400))


def _input() -> Any:
    return oc.generation_input(LONG, tenant_id="acme", user_id="py-upstream")


def echo_status(client: oc.Client) -> models_pb2.DeploymentStatus:
    for route in client.list_models().routes:
        if route.alias == "echo":
            return route.deployments[0].status
    raise AssertionError("no echo route")


def wait_in_flight(client: oc.Client) -> None:
    started = time.monotonic()
    while echo_status(client).in_flight != 1:
        assert time.monotonic() - started < 5, "the call never reached the deployment"
        time.sleep(0.02)


def last_failure(client: oc.Client) -> tuple[str, int, int]:
    """The deployment's last failed attempt (the session's sidecar has seen the contract's faults)."""
    status = echo_status(client)
    return status.last_error, status.last_error_time.seconds, status.last_error_time.nanos


def assert_upstream_ended(client: oc.Client, failure_before: tuple[str, int, int]) -> None:
    started = time.monotonic()
    while echo_status(client).in_flight != 0:
        assert time.monotonic() - started < 2, "the upstream attempt still runs 2 s after the stop"
        time.sleep(0.02)
    assert last_failure(client) == failure_before, "the caller's stop counted as a provider failure"
    assert echo_status(client).breaker_state == models_pb2.BREAKER_STATE_CLOSED


async def _break(stream: oc.AsyncStream) -> None:
    async for _ in stream:
        break


async def _cancel(stream: oc.AsyncStream) -> None:
    async for _ in stream:
        stream.cancel()
    raise AssertionError("a cancelled stream ended without an error")


async def _task_cancelled(stream: oc.AsyncStream) -> None:
    started = asyncio.Event()

    async def read() -> None:
        async for _ in stream:
            started.set()

    task = asyncio.create_task(read())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("stop", [_break, _cancel, _task_cancelled], ids=["break", "cancel", "task"])
def test_an_async_stream_stopped_early_ends_upstream(
    sidecar: str, contract: dict[str, Any], stop: Callable[[oc.AsyncStream], Any]
) -> None:
    async def run() -> None:
        with oc.Client(sidecar, token=contract["token"]) as observer:
            before = last_failure(observer)
            async with oc.AsyncClient(sidecar, token=contract["token"]) as client:
                stream = client.stream(_input(), timeout=30)
                with contextlib.suppress(oc.CancelledError):
                    await stop(stream)
                # checked while the client is still open: the stop alone ended the call
                await asyncio.to_thread(assert_upstream_ended, observer, before)
        observer.close()

    asyncio.run(run())


def test_a_sync_stream_stopped_early_ends_upstream(sidecar: str, contract: dict[str, Any]) -> None:
    with oc.Client(sidecar, token=contract["token"]) as client:
        before = last_failure(client)
        for _ in client.stream(_input(), timeout=30):
            assert echo_status(client).in_flight == 1
            break
        assert_upstream_ended(client, before)
        stream = client.stream(_input(), timeout=30)
        with pytest.raises(oc.CancelledError):
            for _ in stream:
                stream.cancel()
        assert_upstream_ended(client, before)


def test_a_unary_call_past_its_deadline_or_cancelled_ends_upstream(
    sidecar: str, contract: dict[str, Any]
) -> None:
    slow = oc.generation_input("[[fault:delay_ms=3000]] slow", tenant_id="acme", user_id="py-upstream")

    async def run(observer: oc.Client, before: tuple[str, int, int]) -> None:
        async with oc.AsyncClient(sidecar, token=contract["token"]) as client:
            with pytest.raises(oc.DeadlineExceededError):
                await client.generate(slow, timeout=0.3)
            await asyncio.to_thread(assert_upstream_ended, observer, before)
            task = asyncio.create_task(client.generate(slow, timeout=10))
            await asyncio.to_thread(wait_in_flight, observer)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.to_thread(assert_upstream_ended, observer, before)

    with oc.Client(sidecar, token=contract["token"]) as observer:
        asyncio.run(run(observer, last_failure(observer)))
