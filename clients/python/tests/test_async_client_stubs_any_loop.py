"""The stubs an AsyncClient exposes (`client.generation`, ...) and its streams, read or made where no
event loop runs, or in another loop than the one using them.

A stub read outside any loop (`stub = client.generation` at import time, as an application wires its
services) was made over a channel grpc.aio bound to the loop `asyncio.get_event_loop()` gave it, a
loop that never runs: every call of it under `asyncio.run` (each time, and from a thread's loop)
failed with grpc's RuntimeError "got Future attached to a different loop", no SidecarError, and that
channel was kept for the client's life. A stub read in one loop and kept failed the same way in the
next one, and so did a stream made before the loop that read it. The exposed stubs now pick the
running loop's channel at each call, and a stream made outside any loop starts in the loop that reads
it; a call with no loop running is a clear RuntimeError, never a channel bound to a loop nobody runs.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import orchestrator_client as oc

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def ask(text: str) -> oc.generate_pb2.GenerateRequest:
    return oc.generate_pb2.GenerateRequest(input=oc.generation_input(text, tenant_id="acme", user_id="stubs"))


async def through(stub: Any, text: str) -> str:
    return oc.text_of(await stub.Generate(ask(text), timeout=10))


def test_a_stub_read_outside_any_loop_works_in_every_loop(sidecar: str, contract: dict[str, Any]) -> None:
    client = oc.AsyncClient(sidecar, token=contract["token"])
    stub = client.generation  # at import time: no loop runs
    assert asyncio.run(through(stub, "first run")) == "first run"
    assert asyncio.run(through(stub, "second run")) == "second run"
    in_thread: list[str] = []
    worker = threading.Thread(target=lambda: in_thread.append(asyncio.run(through(stub, "a thread's loop"))))
    worker.start()
    worker.join(timeout=30)
    assert in_thread == ["a thread's loop"]
    asyncio.run(client.close())
    with pytest.raises(oc.CancelledError, match="closed"):
        asyncio.run(through(stub, "after close"))


def test_a_stub_kept_from_one_loop_works_in_the_next(sidecar: str, contract: dict[str, Any]) -> None:
    client = oc.AsyncClient(sidecar, token=contract["token"])

    async def wire() -> Any:  # an application's start-up, in its own asyncio.run
        return client.generation

    stub = asyncio.run(wire())
    assert asyncio.run(through(stub, "the next loop")) == "the next loop"
    asyncio.run(client.close())


def test_a_stream_made_outside_any_loop_runs_in_the_loop_reading_it(
    sidecar: str, contract: dict[str, Any]
) -> None:
    client = oc.AsyncClient(sidecar, token=contract["token"])
    stream = client.stream(oc.generation_input("made early", tenant_id="acme", user_id="stubs"), timeout=10)

    async def read() -> str:
        async for _ in stream:
            pass
        return stream.text

    assert asyncio.run(read()) == "made early"
    assert stream.result is not None
    asyncio.run(client.close())


def test_a_call_with_no_loop_running_is_a_clear_error_and_binds_nothing() -> None:
    client = oc.AsyncClient("127.0.0.1:1", token="")
    with pytest.raises(RuntimeError, match="running event loop"):
        client.generation.Generate(ask("no loop"))
    with pytest.raises(RuntimeError, match="running event loop"):
        _ = client.channel
    assert client._channels._connections == {}
    asyncio.run(client.close())
