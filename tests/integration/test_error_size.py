"""A refusal reaches a default gRPC client as itself, however many fields it names: the status
(grpc-status-details-bin and grpc-message) stays under the clients' 8 KiB trailer limit. An Embed
batch of 1000 empty texts named each in its BadRequest: 43 KB of trailers, which every default
client refused (RESOURCE_EXHAUSTED, "received metadata size exceeds hard limit"), so the caller saw
its own quota's code instead of INVALID_ARGUMENT."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import embed_pb2
from tests.conftest import echo_policy
from tests.integration.helpers import rich

pytestmark = pytest.mark.integration


async def test_an_embed_batch_of_bad_texts_is_invalid_argument_for_a_default_client(serve: Any) -> None:
    s = await serve({"policy": echo_policy(embeddings={"max_texts": 2000})})
    async with grpc.aio.insecure_channel(f"127.0.0.1:{s.sidecar.port}") as channel:  # default options
        embed = channel.unary_unary("/orchestrator.v1.GenerationService/Embed")
        for n in (300, 1000):
            request = embed_pb2.EmbedRequest(tenant_id="acme", texts=[""] * n).SerializeToString()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await embed(request)
            err = await rich(info.value)
            assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST"), n
            assert err.fields[:2] == ["texts[0]", "texts[1]"]
            assert f"(and {n - 1} more)" in err.message
