"""One AsyncClient used from several event loops in turn: made once and used from two `asyncio.run`
calls, the second call failed with grpc.aio's RuntimeError "Event loop is closed" (no SidecarError),
and the half-made call logged an AttributeError when collected; a session-scoped client used by
pytest-asyncio's per-test loops failed the same way. The client now has a channel per loop, made in
each on first use."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import orchestrator_client as oc

# a failure while a dropped channel or call is collected (an "Exception ignored in ...") fails the test
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


def ask(text: str) -> oc.generate_pb2.GenerationInput:
    return oc.generation_input(text, tenant_id="acme", user_id="loops")


async def answer(client: oc.AsyncClient, text: str) -> str:
    return oc.text_of(await client.generate(ask(text), timeout=10))


async def streamed(client: oc.AsyncClient, text: str) -> str:
    stream = client.stream(ask(text), timeout=10)
    async for _ in stream:
        pass
    return stream.text


def test_one_client_in_successive_asyncio_runs(sidecar: str, contract: dict[str, Any]) -> None:
    client = oc.AsyncClient(sidecar, token=contract["token"])
    assert asyncio.run(answer(client, "first run")) == "first run"
    assert asyncio.run(answer(client, "second run")) == "second run"
    assert asyncio.run(streamed(client, "third run")) == "third run"
    asyncio.run(client.close())
    with pytest.raises(oc.CancelledError, match="closed"):
        asyncio.run(answer(client, "after close"))


def test_loops_still_open_each_keep_their_channel(sidecar: str, contract: dict[str, Any]) -> None:
    client = oc.AsyncClient(sidecar, token=contract["token"])
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert first.run_until_complete(answer(client, "in the first")) == "in the first"
        assert second.run_until_complete(answer(client, "in the second")) == "in the second"
        assert first.run_until_complete(answer(client, "the first again")) == "the first again"

        async def channel() -> Any:
            return client.channel

        assert first.run_until_complete(channel()) is first.run_until_complete(channel())
        assert first.run_until_complete(channel()) is not second.run_until_complete(channel())
        second.run_until_complete(client.close())
        for loop in (first, second):
            with pytest.raises(oc.CancelledError, match="closed"):
                loop.run_until_complete(answer(client, "after close"))
    finally:
        first.close()
        second.close()


def test_loops_in_two_threads_share_one_client(sidecar: str, contract: dict[str, Any]) -> None:
    client = oc.AsyncClient(sidecar, token=contract["token"])
    results: dict[int, list[str]] = {}
    start = threading.Barrier(2)

    def worker(n: int) -> None:
        async def calls() -> list[str]:
            start.wait()
            return [await answer(client, f"thread {n} call {i}") for i in range(5)]

        results[n] = asyncio.run(calls())

    threads = [threading.Thread(target=worker, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == {n: [f"thread {n} call {i}" for i in range(5)] for n in (1, 2)}
    asyncio.run(client.close())


# a client shared by pytest-asyncio's function-scoped loops, as a session-scoped fixture would be
SHARED: dict[str, oc.AsyncClient] = {}


@pytest.fixture
def shared(sidecar: str, contract: dict[str, Any]) -> oc.AsyncClient:
    return SHARED.setdefault("client", oc.AsyncClient(sidecar, token=contract["token"]))


@pytest.mark.parametrize("run", [1, 2, 3])
async def test_a_client_shared_by_per_test_loops(shared: oc.AsyncClient, run: int) -> None:
    assert await answer(shared, f"test {run}") == f"test {run}"
