"""A stream the application stops reading early is cancelled on the wire, not left generating.

The README's loop (`stream = client.stream(...)`, then `async for event in stream` / `for event in
stream`) keeps `stream` alive after a `break`; the call must still end then, with CANCELLED.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

import orchestrator_client as oc

# 400 words, 2 tokens a chunk every 20 ms on the contract's echo deployment: about 4 s of stream
LONG = " ".join(f"w{i}" for i in range(400))


def _input() -> Any:
    return oc.generation_input(LONG, tenant_id="lifecycle", user_id="u")


async def test_breaking_out_of_an_async_stream_cancels_the_call(
    sidecar: str, contract: dict[str, Any]
) -> None:
    async with oc.AsyncClient(sidecar, token=contract["token"]) as client:
        stream = client.stream(_input(), timeout=30)
        async for _ in stream:
            break
        call = stream._call  # the grpc.aio call under the wrapper
        # well before the 4 s the whole stream takes: the call ended because the loop did
        assert await asyncio.wait_for(call.code(), timeout=1.5) is grpc.StatusCode.CANCELLED
        assert stream.deltas == 1


def test_breaking_out_of_a_sync_stream_cancels_the_call(sidecar: str, contract: dict[str, Any]) -> None:
    with oc.Client(sidecar, token=contract["token"]) as client:
        stream = client.stream(_input(), timeout=30)
        for _ in stream:
            break
        call = stream._call  # the grpc call (a future) under the wrapper
        waited_until = time.monotonic() + 1.5
        while not call.done() and time.monotonic() < waited_until:
            time.sleep(0.01)
        assert call.done() and call.code() is grpc.StatusCode.CANCELLED
