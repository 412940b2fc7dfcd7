"""A StreamGenerate caller that stops reading: gRPC flow control blocks the sidecar's write of the
next event. One write may wait settings.stream_write_timeout_seconds; then the call ends as the
caller's doing (no failover, no breaker), its slots are released and the upstream is closed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.conftest import user
from tests.integration.helpers import rich
from tests.integration.test_failures import ENV, two_deployments
from tests.support.api import stream_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


def big_stream(events: int, size: int) -> list[bytes]:
    """An OpenAI stream far larger than any flow-control window (`events` events of `size` chars)."""
    text = "x" * size
    event = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return [b"data: " + json.dumps(event).encode() + b"\n\n"] * events + [b"data: [DONE]\n\n"]


async def until(condition: Any, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not within the time allowed")


async def test_a_caller_that_never_reads_is_ended_and_its_slots_released(
    serve: Any, upstream: Upstream, upstream2: Upstream, tmp_path: Path
) -> None:
    upstream.push(Reply(chunks=big_stream(20_000, 1_000)), Reply.sse("openai/stream.sse"))
    policy = two_deployments(upstream.url, upstream2.url)
    policy["quota"] = {"limits": [{"name": "one-at-a-time", "metric": "concurrency", "limit": 1}]}
    s = await serve({"policy": policy, "settings": {"stream_write_timeout_seconds": 0.5}}, ENV)
    first = stream_request(tenant_id="acme", user_id="ann", request_id="stalled", messages=[user("Hi")])
    stalled = s.stub.StreamGenerate(first, timeout=60)
    await until(lambda: upstream.disconnects == 1, 15)  # the upstream closed long before the deadline
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stalled:
            pass
    got = await rich(info.value)
    assert (got.code, got.reason) == (grpc.StatusCode.DEADLINE_EXCEEDED, "CALLER_NOT_READING")
    # the concurrency slot is free, the deployment was not blamed (no breaker, no failover)
    again = stream_request(tenant_id="acme", user_id="ann", messages=[user("Hi")])
    events = [e async for e in s.stub.StreamGenerate(again, timeout=10)]
    assert events[-1].HasField("result")
    assert [a.deployment for a in events[-1].result.summary.attempts] == ["first"]
    assert upstream2.seen == []
    # recorded as the caller's doing, on the output produced before it stopped reading
    await s.sidecar.deps.telemetry.ledger.flush()
    with sqlite3.connect(tmp_path / "usage.db") as conn:
        outcome, tokens_out = conn.execute(
            "SELECT outcome, tokens_out FROM usage_records WHERE request_id = 'stalled'"
        ).fetchone()
    assert outcome == "CANCELLED"
    assert tokens_out > 0
