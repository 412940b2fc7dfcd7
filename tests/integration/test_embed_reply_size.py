"""An Embed whose reply is larger than a gRPC client accepts (4 MiB by default): the client refused
the reply (RESOURCE_EXHAUSTED on its side) after the call was charged, so the caller paid for
vectors it never got. The reply is bounded by embeddings.max_reply_bytes: a batch known to be too
large (texts x the deployment's dimensions) is refused before the upstream is called; one found too
large only in the upstream's answer is refused with nothing charged (its vectors stay cached)."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import embed_pb2, quota_pb2
from tests.integration.helpers import rich
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
DIMENSIONS = 8192
TEXTS = [f"text number {i}" for i in range(200)]  # 200 x 8192 floats: 6.5 MB, over 4 MiB


def config(url: str, *, dimensions: int | None) -> dict[str, Any]:
    deployment = {"kind": "openai", "model": "e", "base_url": f"{url}/v1", "api_key": {"env": "KEY"}}
    if dimensions is not None:
        deployment["dimensions"] = dimensions
    limits = [{"name": "req", "metric": "requests", "window": "day", "limit": 100}]
    return {
        "policy": {
            "default_route": "echo",
            "deployments": {"echo": {"provider": "echo", "model": "echo-1"}},
            "routes": {"echo": {"deployments": ["echo"]}},
            "quota": {"limits": limits},
            "embeddings": {"deployments": {"e": deployment}, "routes": {"e": {"deployments": ["e"]}},
                           "default_route": "e"},
        }
    }  # fmt: skip


def vectors(count: int) -> Reply:
    data = [{"object": "embedding", "index": i, "embedding": [0.001] * DIMENSIONS} for i in range(count)]
    body = {
        "object": "list",
        "data": data,
        "model": "e",
        "usage": {"prompt_tokens": 800, "total_tokens": 800},
    }
    return Reply(body=json.dumps(body).encode())


async def used(s: Any) -> int:
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="ann"))
    return sum(limit.used for limit in got.limits if limit.name == "req")


async def too_large(s: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Embed(embed_pb2.EmbedRequest(tenant_id="acme", user_id="ann", texts=TEXTS), timeout=30)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert err.bad_request is not None and err.bad_request.field_violations[0].field == "texts"
    assert "max_reply_bytes" in err.bad_request.field_violations[0].description


async def test_a_reply_found_too_large_is_refused_and_charges_nothing(serve: Any, upstream: Upstream) -> None:
    upstream.push(vectors(len(TEXTS)))
    s = await serve(config(upstream.url, dimensions=None), {"KEY": "sk-e-0123456789"})
    await too_large(s)
    assert await used(s) == 0
    # the vectors were kept: the same texts in smaller batches are answered from the cache
    half = await s.stub.Embed(embed_pb2.EmbedRequest(tenant_id="acme", user_id="ann", texts=TEXTS[:100]))
    assert half.cached_texts == 100 and len(upstream.seen) == 1


async def test_a_batch_known_to_be_too_large_is_refused_before_the_upstream(
    serve: Any, upstream: Upstream
) -> None:
    s = await serve(config(upstream.url, dimensions=DIMENSIONS), {"KEY": "sk-e-0123456789"})
    await too_large(s)
    assert upstream.seen == [] and await used(s) == 0
