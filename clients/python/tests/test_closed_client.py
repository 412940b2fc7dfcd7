"""A call on a closed client is a typed CancelledError, never retried: it was grpc's own ValueError
("Cannot invoke RPC on closed channel!"), no SidecarError at all; Go fails it CANCELLED, and now
TypeScript and Java do too."""

from __future__ import annotations

import pytest

import orchestrator_client as oc

ASK = oc.generation_input("after close", tenant_id="acme", user_id="u")


async def test_the_async_client() -> None:
    client = oc.AsyncClient("127.0.0.1:1", token="")
    await client.close()
    never = oc.RetryPolicy(max_attempts=4, random=lambda: 0.0)
    for call in (
        lambda: client.generate(ASK, timeout=2, retry_policy=never),
        lambda: client.get_quota("acme", "u", timeout=2),
        lambda: client.embed(["a"], tenant_id="acme", user_id="u", timeout=2),
    ):
        with pytest.raises(oc.CancelledError, match="closed"):
            await call()
    with pytest.raises(oc.CancelledError, match="closed"):
        async for _ in client.stream(ASK, timeout=2):
            pass


def test_the_blocking_client() -> None:
    client = oc.Client("127.0.0.1:1", token="")
    client.close()
    with pytest.raises(oc.CancelledError, match="closed"):
        client.generate(ASK, timeout=2)
    with pytest.raises(oc.CancelledError, match="closed"):
        client.get_quota("acme", "u", timeout=2)
    with pytest.raises(oc.CancelledError, match="closed"):
        for _ in client.stream(ASK, timeout=2):
            pass
