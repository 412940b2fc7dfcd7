"""Upstream faults as an outside tester injects them, seen through a real server and gRPC client."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.helpers import rich
from tests.integration.test_failures import ENV, two_deployments
from tests.support.api import stream_request
from tests.support.upstream import Reply, Upstream, fixture, sse_events

pytestmark = pytest.mark.integration

ANTHROPIC_START_OF_WRONG_SHAPE = b'event: message_start\ndata: {"type":"message_start","message":"oops"}\n\n'
OPENAI_FINISH_OF_WRONG_SHAPE = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":["stop"]}]}\n\n'


async def stream(s: Any) -> tuple[list[gen.StreamGenerateResponse], grpc.aio.AioRpcError | None]:
    received: list[gen.StreamGenerateResponse] = []
    try:
        async for event in s.stub.StreamGenerate(stream_request(messages=[user("Hi")])):
            received.append(event)
    except grpc.aio.AioRpcError as err:
        return received, err
    return received, None


async def test_an_event_of_the_wrong_shape_before_the_first_chunk_falls_over(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply(chunks=[ANTHROPIC_START_OF_WRONG_SHAPE]))
    upstream2.push(Reply.sse("anthropic/stream.sse"))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url, provider="anthropic")}, ENV)
    received, err = await stream(s)
    assert err is None
    summary = received[-1].result.summary
    assert [(a.deployment, a.outcome) for a in summary.attempts] == [
        ("first", "PROVIDER_BAD_RESPONSE"),
        ("second", "OK"),
    ]


async def test_an_event_of_the_wrong_shape_after_the_first_chunk_interrupts_the_stream(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    events = sse_events(fixture("openai/stream.sse"))
    upstream.push(Reply(chunks=[*events[:3], OPENAI_FINISH_OF_WRONG_SHAPE], chunk_delay=0.02))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    received, err = await stream(s)
    assert received and all(e.HasField("delta") for e in received)
    assert err is not None
    info = await rich(err)
    assert (info.code, info.reason) == (grpc.StatusCode.UNAVAILABLE, "STREAM_INTERRUPTED")
    assert info.info.metadata["cause"] == "PROVIDER_BAD_RESPONSE"
    assert int(info.info.metadata["completionTokens"]) > 0
    assert upstream2.seen == []
