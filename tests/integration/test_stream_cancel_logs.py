"""A stream its caller abandons mid-way (deadline, cancel) is wound down in its own RPC's task.

gRPC iterates a server-streaming handler that is an async generator and, when the caller goes
while the handler waits to send, drops the generator without closing it: Python's finalizer then
closes it later, in another task and context. The pipeline's `finally` blocks ran there: the
observe layer could not restore the trace context it had attached in the call's task (with
tracing on, OpenTelemetry logged "Failed to detach context" at ERROR with a traceback for every
such stream, which any caller could trigger) and their log lines lost the call's request id."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.support.api import generate_request
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration


TRACEPARENT = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),)


@pytest.mark.parametrize(("tracing", "metadata"), [(True, ()), (True, TRACEPARENT), (False, ())])
async def test_a_stream_abandoned_mid_way_ends_quietly_in_its_own_task(
    serve: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture, tracing: bool, metadata: Any
) -> None:
    policy = {
        "default_route": "slow",
        "deployments": {
            "slow": {
                "provider": "echo",
                "model": "echo-1",
                "echo": {"tokens_per_chunk": 1},
            }
        },
        "routes": {"slow": {"deployments": ["slow"]}},
    }
    telemetry = {**quiet_telemetry(tmp_path), "tracing": {"enabled": tracing}}
    s = await serve({"policy": policy, "settings": {"telemetry": telemetry}})
    text = " ".join(f"word{i}" for i in range(4000))  # echoed back one token a chunk
    request = gen.StreamGenerateRequest(input=generate_request(messages=[user(text)]).input)
    with caplog.at_level(logging.DEBUG):
        for _ in range(5):
            got = 0
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in s.stub.StreamGenerate(request, timeout=0.3, metadata=metadata):
                    got += 1
                    await asyncio.sleep(0.01)  # a slow reader: the server waits to send
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert got > 0  # it was mid-way
        await asyncio.sleep(0.3)  # anything left to wind down has run
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    # and a stream read to its end still works, through the trace interceptor too
    short = gen.StreamGenerateRequest(input=generate_request(messages=[user("hello there")]).input)
    events = [e async for e in s.stub.StreamGenerate(short, metadata=metadata)]
    assert events[-1].HasField("result")
