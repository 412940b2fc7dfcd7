"""Cancellation, deadlines and graceful shutdown: nothing leaks, nothing is cut silently."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


async def eventually(predicate: Callable[[], bool], within: float = 3.0) -> None:
    """Wait for something another task does (a disconnect to propagate); bounded."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the state lives in tasks we do not own
            await asyncio.sleep(0.01)


async def read_rest(call: Any) -> list[gen.StreamGenerateResponse]:
    out = []
    while (event := await call.read()) is not grpc.aio.EOF:
        out.append(event)
    return out


def openai_policy(upstream: Upstream, **extra: Any) -> dict[str, Any]:
    return {
        "routing": {"probes": {"enabled": False}},  # so the task count is the calls' alone
        "default_route": "r",
        "deployments": {"d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1", **extra}},
        "routes": {"r": {"deployments": ["d"]}},
    }


def slow_echo(chunks: int, delay: float) -> dict[str, Any]:
    options = {"tokens_per_chunk": 1, "chunk_delay_seconds": delay}
    return echo_policy(deployments={"echo": {"provider": "echo", "model": "echo-1", "echo": options}})


async def test_cancel_mid_stream_cancels_the_upstream_request(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.sse("openai/stream.sse", chunk_delay=0.2))
    s = await serve({"policy": openai_policy(upstream)})
    baseline = len(asyncio.all_tasks())
    call = s.stub.StreamGenerate(stream_request(messages=[user("Hi")]))
    first = await call.read()
    assert first.delta.text == "Hello"
    call.cancel()
    await eventually(lambda: upstream.disconnects == 1)
    assert upstream.completed == 0
    await eventually(lambda: len(asyncio.all_tasks()) <= baseline)


async def test_client_deadline_becomes_the_upstream_timeout(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply(hang=True))
    s = await serve({"policy": openai_policy(upstream, read_timeout_seconds=30)})
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("Hi")]), timeout=0.3)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert loop.time() - started < 2.0
    await eventually(lambda: upstream.disconnects == 1)


async def test_deadline_reported_by_the_sidecar_carries_its_reason(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply(hang=True))
    s = await serve({"policy": openai_policy(upstream)})
    call = s.stub.Generate(generate_request(messages=[user("Hi")]), timeout=0.5)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The sidecar's own timer fires a hair before the transport's; when it wins, the reason is set.
    if info.value.trailing_metadata():
        assert (await rich(info.value)).reason == "DEADLINE_EXCEEDED"


async def test_graceful_shutdown_lets_streams_finish(serve: Any) -> None:
    s = await serve({"policy": slow_echo(10, 0.05)})
    call = s.stub.StreamGenerate(stream_request(messages=[user("a b c d e f g h i j")]))
    first = await call.read()
    stopping = asyncio.create_task(s.sidecar.stop(5.0))
    rest = await read_rest(call)
    await stopping
    assert first.delta.text == "a"
    assert rest[-1].HasField("result")
    assert "".join([first.delta.text, *(e.delta.text for e in rest[:-1])]) == "a b c d e f g h i j"


async def test_shutdown_after_grace_cancels_and_says_so(serve: Any) -> None:
    s = await serve({"policy": slow_echo(10, 0.5)})
    call = s.stub.StreamGenerate(stream_request(messages=[user("a b c d e f g h i j")]))
    await call.read()
    await s.sidecar.stop(0.1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        for event in await read_rest(call):
            assert not event.HasField("result")
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


async def test_no_new_calls_once_stopping(serve: Any) -> None:
    s = await serve({"policy": echo_policy()})
    await s.sidecar.stop(0)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("late")]), timeout=2)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_stream_cut_by_the_grace_ends_with_error_info_and_partial_usage(serve: Any) -> None:
    """Defect 12: not a bare CANCELLED, but STREAM_INTERRUPTED with the cause and what was used."""
    s = await serve({"policy": slow_echo(10, 0.5)})
    call = s.stub.StreamGenerate(stream_request(messages=[user("a b c d e f g h i j")]))
    first = await call.read()
    await s.sidecar.stop(0.1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await read_rest(call)
    assert first.delta.text == "a"
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    err = await rich(info.value)
    assert err.reason == "STREAM_INTERRUPTED"
    meta = err.info.metadata
    assert meta["cause"] == "SIDECAR_SHUTDOWN" and meta["usageEstimated"] == "true"
    assert int(meta["completionTokens"]) >= 1 and int(meta["promptTokens"]) >= 1


async def test_a_stream_cut_by_the_grace_is_counted_as_the_caller_was_told(
    serve: Any, tmp_path: Path
) -> None:
    """The metrics and the usage record say STREAM_INTERRUPTED (UNAVAILABLE), as the caller was told,
    not CANCELLED: the docs read CANCELLED as the caller going away, which a rolling restart is not."""
    s = await serve({"policy": slow_echo(10, 0.5)})
    registry = s.sidecar.deps.telemetry.metrics.registry
    call = s.stub.StreamGenerate(stream_request(messages=[user("a b c d e f g h i j")]))
    await call.read()
    await s.sidecar.stop(0.1)
    with pytest.raises(grpc.aio.AioRpcError):
        await read_rest(call)
    errors = {"route": "echo", "code": "UNAVAILABLE", "reason": "STREAM_INTERRUPTED"}
    assert registry.get_sample_value("sidecar_errors_total", errors) == 1
    assert registry.get_sample_value("sidecar_errors_total", {**errors, "code": "CANCELLED"}) is None
    with sqlite3.connect(tmp_path / "usage.db") as db:  # the ledger was flushed at stop
        [(outcome, tokens_out)] = db.execute("SELECT outcome, tokens_out FROM usage_records").fetchall()
    assert outcome == "STREAM_INTERRUPTED" and tokens_out >= 1


async def test_during_the_drain_health_says_not_serving_and_new_calls_are_refused(serve: Any) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    s = await serve({"policy": slow_echo(5, 0.2)})
    health = health_pb2_grpc.HealthStub(s.channel)
    running = s.stub.StreamGenerate(stream_request(messages=[user("a b c d e")]))
    await running.read()
    stopping = asyncio.create_task(s.sidecar.stop(5.0))
    await eventually(lambda: s.sidecar.drain.draining)
    check = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
    assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("late")]), timeout=2)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (await rich(info.value)).reason == "SIDECAR_DRAINING"
    rest = await read_rest(running)  # the running stream still finishes
    assert rest[-1].HasField("result")
    await stopping


async def test_an_open_health_watch_does_not_hold_the_shutdown(serve: Any) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    s = await serve({"policy": echo_policy()})
    watch = health_pb2_grpc.HealthStub(s.channel).Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    loop = asyncio.get_running_loop()
    started = loop.time()
    await s.sidecar.stop(30.0)
    assert loop.time() - started < 3.0
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_shutdown_says_what_it_waits_for_and_what_it_cut(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator reading the logs of a pod that took its whole grace to go sees why: how many calls
    were running when the stop began, how many the grace's end cut, and when it was done."""
    s = await serve({"policy": slow_echo(10, 0.5)})
    call = s.stub.StreamGenerate(stream_request(messages=[user("a b c d e f g h i j")]))
    await call.read()
    caplog.clear()
    with caplog.at_level("INFO", logger="sidecar"):
        await s.sidecar.stop(0.1)
    lines = {r.getMessage(): r for r in caplog.records if r.name == "sidecar"}
    assert lines["sidecar stopping"].running_calls == 1
    assert lines["sidecar stopping"].grace_seconds == 0.1
    cut = lines["calls still running at the end of the grace were cut"]
    assert (cut.levelname, cut.cut_calls) == ("WARNING", 1)
    assert "sidecar stopped" in lines
    with pytest.raises(grpc.aio.AioRpcError):
        await read_rest(call)


async def test_a_clean_shutdown_cuts_nothing_and_says_so_once(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    s = await serve({"policy": echo_policy()})
    await s.stub.Generate(generate_request(messages=[user("hi")]))
    caplog.clear()  # what the start said ("sidecar serving") is captured too when INFO was on already
    with caplog.at_level("INFO", logger="sidecar"):
        await s.sidecar.stop(1.0)
        await s.sidecar.stop(1.0)  # a second stop has nothing to say
    said = [r.getMessage() for r in caplog.records if r.name == "sidecar"]
    assert said == ["sidecar stopping", "sidecar stopped"]
