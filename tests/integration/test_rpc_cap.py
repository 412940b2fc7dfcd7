"""settings.max_concurrent_rpcs through the real server: RPCs that never send their request (only
headers) hold memory from the moment they start, so the sidecar caps how many RPCs it serves at once;
one past the cap is RESOURCE_EXHAUSTED at once, and the cap frees as the RPCs end."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import echo_policy, user

pytestmark = pytest.mark.integration
GENERATE = "/orchestrator.v1.GenerationService/Generate"


def ask(text: str) -> gen.GenerateRequest:
    return gen.GenerateRequest(input=gen.GenerationInput(messages=[user(text)]))


async def test_rpcs_past_the_cap_are_refused_at_once_and_the_cap_frees(serve: Any) -> None:
    s = await serve({"policy": echo_policy(), "settings": {"max_concurrent_rpcs": 3}})
    silent = s.channel.stream_stream(GENERATE)  # headers sent, the request message never written
    held: list[Any] = []
    try:
        for _ in range(200):
            # a silent RPC that reached the server after a Generate took its place was refused itself
            held = [call for call in held if not call.done()]
            held += [silent() for _ in range(3 - len(held))]
            await asyncio.sleep(0.01)  # their headers reach the server before the next call's
            try:
                await s.stub.generation.Generate(ask("one more"), timeout=5)
            except grpc.aio.AioRpcError as refused:
                assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "Concurrent RPC limit" in (refused.details() or "")
                break
        else:
            raise AssertionError("three silent RPCs did not hold the cap of 3")
    finally:
        for call in held:
            call.cancel()
    for _ in range(200):  # cancelled: their places are free again
        try:
            reply = await s.stub.generation.Generate(ask("after"), timeout=5)
            break
        except grpc.aio.AioRpcError as refused:
            assert refused.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            await asyncio.sleep(0.01)
    else:
        raise AssertionError("the cap did not free after the silent RPCs ended")
    assert reply.message.content[0].text
