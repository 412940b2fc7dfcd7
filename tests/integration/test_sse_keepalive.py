"""An SSE upstream that sends only keep-alive comments (`: ping`) once the stream is open: the
read timeout counts complete lines (comments too: a slow model behind a proxy that pings is still
alive), so nothing bounded it but the caller's deadline. The time between events that carry data is
bounded by the deployment's stream_idle_timeout_seconds: before the first chunk the route falls
over, after it the stream ends STREAM_INTERRUPTED with the partial usage."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tests.conftest import user
from tests.integration.helpers import rich
from tests.integration.test_failures import ENV, two_deployments
from tests.support.api import stream_request
from tests.support.upstream import Reply, Upstream, fixture, sse_events

pytestmark = pytest.mark.integration
PINGS = [b": ping\n\n"] * 600  # 60 s of keep-alive comments, one every 0.1 s


def policy(upstream: Upstream, upstream2: Upstream) -> dict[str, Any]:
    return two_deployments(upstream.url, upstream2.url, stream_idle_timeout_seconds=1.0)


async def test_only_keep_alives_before_the_first_chunk_fall_over(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply(chunks=PINGS, chunk_delay=0.1))
    upstream2.push(Reply.sse("openai/stream.sse"))
    s = await serve({"policy": policy(upstream, upstream2)}, ENV)
    events = [e async for e in s.stub.StreamGenerate(stream_request(messages=[user("Hi")]), timeout=15)]
    attempts = events[-1].result.summary.attempts
    assert [(a.deployment, a.outcome) for a in attempts] == [("first", "PROVIDER_TIMEOUT"), ("second", "OK")]


async def test_only_keep_alives_after_the_first_chunk_interrupt_the_stream(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    events = sse_events(fixture("openai/stream.sse"))
    upstream.push(Reply(chunks=[*events[:3], *PINGS], chunk_delay=0.1))
    s = await serve({"policy": policy(upstream, upstream2)}, ENV)
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in s.stub.StreamGenerate(stream_request(messages=[user("Hi")]), timeout=15):
            received.append(event)
    assert received and all(e.HasField("delta") for e in received)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "STREAM_INTERRUPTED")
    assert err.info.metadata["cause"] == "PROVIDER_TIMEOUT"
    assert int(err.info.metadata["completionTokens"]) > 0
    assert upstream2.seen == []


ANTHROPIC_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message",'
    b'"role":"assistant","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
)
ANTHROPIC_PINGS = [b'event: ping\ndata: {"type": "ping"}\n\n'] * 600  # Anthropic's own keep-alive


async def test_anthropic_ping_events_are_keep_alives_too(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """Anthropic's keep-alive is an event (`event: ping`) with a data line: it carries no answer."""
    upstream.push(Reply(chunks=[ANTHROPIC_START, *ANTHROPIC_PINGS], chunk_delay=0.1))
    upstream2.push(Reply.sse("anthropic/stream.sse"))
    policy = two_deployments(
        upstream.url, upstream2.url, provider="anthropic", stream_idle_timeout_seconds=1.0
    )
    s = await serve({"policy": policy}, ENV)
    events = [e async for e in s.stub.StreamGenerate(stream_request(messages=[user("Hi")]), timeout=15)]
    attempts = events[-1].result.summary.attempts
    assert [(a.deployment, a.outcome) for a in attempts] == [("first", "PROVIDER_TIMEOUT"), ("second", "OK")]
