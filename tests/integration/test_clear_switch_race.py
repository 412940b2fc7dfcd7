"""ClearConversation while a Switch of the conversation is in flight, on two sidecars sharing one
Redis: the Switch took its ticket before the clear, and its activation reaches Redis after it. The
clear came later, so it wins: the conversation stays without a persona and the Switch is told it
was superseded (it brought the persona back, and said it had been applied)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from typing import Any

import grpc
import pytest
import redis.asyncio

from sidecar._gen.orchestrator.v1 import personas_pb2 as pb
from sidecar.sessions.redis import _ACTIVATE
from tests.conftest import echo_policy
from tests.integration.helpers import rich
from tests.support.personas import CATALOGUE

pytestmark = pytest.mark.integration

IDS = {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c1"}


class HoldingRelay:
    """A loopback TCP relay to Redis that holds a command from the sidecar carrying `marker` (the
    activation script's SHA1) until `release()`; everything else flows."""

    def __init__(self, target_port: int, marker: bytes) -> None:
        self._target, self._marker = target_port, marker
        self.held = asyncio.Event()
        self._released = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> HoldingRelay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def release(self) -> None:
        self._released.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        target_in, target_out = await asyncio.open_connection("127.0.0.1", self._target)
        for source, sink, hold in ((client_in, target_out, True), (target_in, client_out, False)):
            task = asyncio.create_task(self._pump(source, sink, hold))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, hold: bool) -> None:
        try:
            while data := await source.read(65536):
                if hold and self._marker in data and not self._released.is_set():
                    self.held.set()
                    await self._released.wait()
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.close()


def config(redis_url: str, prefix: str) -> dict[str, Any]:
    sessions = {"store": "redis", "redis_url": redis_url, "key_prefix": prefix}
    return {
        "policy": echo_policy(
            personas={"personas": CATALOGUE, "sessions": sessions},
            tier_assignment={"default": "enterprise"},
        )
    }


async def test_a_switch_applied_after_a_clear_on_another_sidecar_does_not_bring_its_persona_back(
    serve: Any, redis_url: str
) -> None:
    prefix = f"x{uuid.uuid4().hex[:10]}"
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    relay = await HoldingRelay(port, hashlib.sha1(_ACTIVATE.encode()).hexdigest().encode()).start()
    try:
        a = await serve(config(f"redis://127.0.0.1:{relay.port}/0", prefix))
        b = await serve(config(redis_url, prefix))
        await b.stub.Switch(pb.SwitchRequest(persona_id="mr-blue", **IDS))
        switch = asyncio.ensure_future(a.stub.Switch(pb.SwitchRequest(persona_id="agent-79", **IDS)))
        async with asyncio.timeout(10):
            await relay.held.wait()  # A took its ticket; its activation waits at the relay
        cleared = await b.stub.ClearConversation(pb.ClearConversationRequest(**IDS))
        assert cleared.cleared
        relay.release()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await switch
        err = await rich(info.value)
        assert (err.code, err.reason) == (grpc.StatusCode.ABORTED, "SWITCH_SUPERSEDED")
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            assert await client.hget(f"{prefix}:{{t1|u1}}:c:c1", "persona") is None
        finally:
            await client.aclose()
        history = await b.stub.ListSwitchHistory(pb.ListSwitchHistoryRequest(**IDS))
        assert [(r.to_persona_id, r.success) for r in history.switches][:2] == [
            ("agent-79", False),
            ("mr-blue", True),
        ]
        again = await a.stub.Switch(pb.SwitchRequest(persona_id="agent-79", **IDS))  # a new ticket: applies
        assert again.persona.id == "agent-79"
    finally:
        await relay.close()
