"""An AsyncClient made outside any event loop (a module-level client, the pattern of many
applications) and used inside `asyncio.run`: every call failed with grpc.aio's RuntimeError "got
Future attached to a different loop", no SidecarError, because the channel was made at construction,
bound to no running loop. It is made on first use now, inside the loop that uses it."""

from __future__ import annotations

import asyncio
from typing import Any

import orchestrator_client as oc


def test_a_client_made_outside_a_loop_works_inside_one(sidecar: str, contract: dict[str, Any]) -> None:
    client = oc.AsyncClient(sidecar, token=contract["token"])  # no running loop here

    async def use() -> tuple[str, str]:
        ask = oc.generation_input("made before the loop", tenant_id="acme", user_id="loop")
        answer = await client.generate(ask, timeout=10)
        stream = client.stream(ask, timeout=10)
        async for _ in stream:
            pass
        await client.close()
        return oc.text_of(answer), stream.text

    assert asyncio.run(use()) == ("made before the loop", "made before the loop")


def test_closing_a_client_never_used_needs_no_channel() -> None:
    asyncio.run(oc.AsyncClient("127.0.0.1:1", token="").close())
