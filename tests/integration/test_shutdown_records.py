"""Calls in flight at shutdown. A generation the shutdown cuts is recorded as the sidecar's own
interruption: its ledger row and its metrics say UNAVAILABLE / STREAM_INTERRUPTED, as the caller
was told, never CANCELLED, which is a caller that hung up (an operator sizing drainSeconds counts
these). An Embed call, a provider call too, gets the grace and is refused while draining."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest

from sidecar._gen.orchestrator.v1 import embed_pb2
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


def slow_echo(delay: float, first: float = 0.0) -> dict[str, Any]:
    options = {"tokens_per_chunk": 1, "chunk_delay_seconds": delay, "first_token_delay_seconds": first}
    return echo_policy(deployments={"echo": {"provider": "echo", "model": "echo-1", "echo": options}})


def series(text: str, name: str, label: str) -> set[str]:
    """The values of `label` on the samples of `name` that count something."""
    out = set()
    for line in text.splitlines():
        if line.startswith(name + "{") and float(line.rsplit(" ", 1)[1]) > 0:
            for pair in line[len(name) + 1 : line.rindex("}")].split(","):
                key, _, value = pair.partition("=")
                if key == label:
                    out.add(value.strip('"'))
    return out


async def test_a_stream_cut_by_the_shutdown_is_recorded_as_interrupted_not_cancelled(
    serve: Any, tmp_path: Path
) -> None:
    s = await serve({"policy": slow_echo(0.5)})
    call = s.stub.StreamGenerate(
        stream_request(messages=[user("a b c d e f g h i j")], tenant_id="t", request_id="cut-stream")
    )
    await call.read()
    registry = s.sidecar.deps.telemetry.metrics.registry
    await s.sidecar.stop(0.1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        while await call.read() is not grpc.aio.EOF:
            pass
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (await rich(info.value)).reason == "STREAM_INTERRUPTED"
    db = sqlite3.connect(tmp_path / "usage.db")
    rows = db.execute("SELECT outcome FROM usage_records WHERE request_id = 'cut-stream'").fetchall()
    assert rows == [("STREAM_INTERRUPTED",)]
    text = generate_latest(registry).decode()
    assert series(text, "sidecar_requests_total", "code") == {"UNAVAILABLE"}


async def test_a_unary_call_cut_by_the_shutdown_is_recorded_as_interrupted(
    serve: Any, tmp_path: Path
) -> None:
    import asyncio

    s = await serve({"policy": slow_echo(0.5, first=10)})
    pending = asyncio.ensure_future(
        s.stub.Generate(
            generate_request(messages=[user("a b c d e f")], tenant_id="t", request_id="cut-unary")
        )
    )
    async with asyncio.timeout(5):
        while not s.sidecar.drain.running:  # noqa: ASYNC110 - the call runs in the server's tasks
            await asyncio.sleep(0.01)
    registry = s.sidecar.deps.telemetry.metrics.registry
    await s.sidecar.stop(0.1)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await pending
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    db = sqlite3.connect(tmp_path / "usage.db")
    rows = db.execute("SELECT outcome FROM usage_records WHERE request_id = 'cut-unary'").fetchall()
    assert rows == [("STREAM_INTERRUPTED",)]
    assert series(generate_latest(registry).decode(), "sidecar_requests_total", "code") == {"UNAVAILABLE"}


def remote_embeddings(upstream: Upstream) -> dict[str, Any]:
    deployment = {
        "kind": "openai",
        "model": "text-embedding-3-small",
        "base_url": f"{upstream.url}/v1",
        "api_key": {"env": "EMBED_KEY"},
        "dimensions": 4,  # the fixture's
    }
    return {"default_route": "e", "deployments": {"oe": deployment}, "routes": {"e": {"deployments": ["oe"]}}}


async def test_an_embed_call_in_flight_gets_the_grace_and_new_ones_are_refused(
    serve: Any, upstream: Upstream
) -> None:
    """Embed is a provider call like Generate: the drain waited only for generation calls, so with
    none running the server stopped at once and an Embed still waiting for its upstream was cut
    after a second (gRPC's bare 'Cancelling all calls'), whatever the grace."""
    s = await serve({"policy": echo_policy(embeddings=remote_embeddings(upstream))}, {"EMBED_KEY": "sk-e"})
    upstream.push(Reply.json("openai/embeddings.json", delay=2.0))
    running = asyncio.ensure_future(
        s.stub.Embed(embed_pb2.EmbedRequest(tenant_id="t", texts=["hi", "there"]), timeout=20)
    )
    async with asyncio.timeout(5):
        while not upstream.seen:  # noqa: ASYNC110 - the request reaches the upstream's own task
            await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(s.sidecar.stop(10.0))
    async with asyncio.timeout(5):
        while not s.sidecar.drain.draining:  # noqa: ASYNC110 - stop() runs in its own task
            await asyncio.sleep(0.01)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await s.stub.Embed(embed_pb2.EmbedRequest(tenant_id="t", texts=["late"]), timeout=5)
    assert late.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (await rich(late.value)).reason == "SIDECAR_DRAINING"
    answer = await running
    assert len(answer.embeddings) == 2
    await stopping


async def test_an_embed_call_cut_by_the_grace_is_told_to_retry(serve: Any, upstream: Upstream) -> None:
    s = await serve({"policy": echo_policy(embeddings=remote_embeddings(upstream))}, {"EMBED_KEY": "sk-e"})
    upstream.push(Reply.json("openai/embeddings.json", delay=5.0))
    running = asyncio.ensure_future(
        s.stub.Embed(embed_pb2.EmbedRequest(tenant_id="t", texts=["hi", "there"]), timeout=20)
    )
    async with asyncio.timeout(5):
        while not upstream.seen:  # noqa: ASYNC110 - the request reaches the upstream's own task
            await asyncio.sleep(0.01)
    await s.sidecar.stop(0.2)
    with pytest.raises(grpc.aio.AioRpcError) as cut:
        await running
    assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (await rich(cut.value)).reason == "SIDECAR_DRAINING"
    assert "shutdown grace ran out" in (cut.value.details() or "")
