"""A retried Embed keeps one request_id, so a reply lost after the sidecar charged it is replayed,
not embedded and charged again (the sidecar's idempotency window covers Embed as well as Generate)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import grpc.aio

import orchestrator_client as oc
from orchestrator_client._gen.orchestrator.v1 import embed_pb2

POLICY = oc.RetryPolicy(default_delay=timedelta(milliseconds=1))


class _LoseFirstReply:
    """Stands in for the client's GenerationService stub: the first Embed runs on the sidecar, then
    its reply is lost (UNAVAILABLE, as when the connection breaks after the sidecar answered)."""

    def __init__(self, stub: Any, *, aio: bool) -> None:
        self._stub, self._aio = stub, aio
        self.request_ids: list[str] = []

    def _lose(self) -> grpc.RpcError:
        metadata = grpc.aio.Metadata()
        return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, metadata, metadata, "the reply was lost")

    def Embed(self, request: Any, **kw: Any) -> Any:
        self.request_ids.append(request.request_id)
        first = len(self.request_ids) == 1
        if not self._aio:
            reply = self._stub.Embed(request, **kw)
            if first:
                raise self._lose()
            return reply

        async def call() -> Any:
            reply = await self._stub.Embed(request, **kw)
            if first:
                raise self._lose()
            return reply

        return call()


async def test_async_embed_retry_is_replayed_not_charged_again(
    sidecar: str, contract: dict[str, Any]
) -> None:
    async with oc.AsyncClient(sidecar, token=contract["token"]) as client:
        lossy = _LoseFirstReply(client.generation, aio=True)
        client.generation = lossy  # type: ignore[assignment]
        reply = await client.embed(
            ["lost once"], tenant_id="py-retry", user_id="u", timeout=10, retry_policy=POLICY
        )
    first, second = lossy.request_ids
    assert first and first == second, lossy.request_ids
    assert reply.replayed and reply.request_id == first


def test_sync_embed_retry_is_replayed_not_charged_again(sidecar: str, contract: dict[str, Any]) -> None:
    with oc.Client(sidecar, token=contract["token"]) as client:
        lossy = _LoseFirstReply(client.generation, aio=False)
        client.generation = lossy  # type: ignore[assignment]
        request = embed_pb2.EmbedRequest(texts=["lost once, sync"], tenant_id="py-retry", user_id="u")
        reply = client.embed(request, timeout=10, retry_policy=POLICY)
    assert not request.request_id  # the caller's request is not changed
    first, second = lossy.request_ids
    assert first and first == second, lossy.request_ids
    assert reply.replayed and reply.request_id == first
