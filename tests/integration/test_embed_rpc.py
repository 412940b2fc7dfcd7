"""GenerationService/Embed through the real server: the local default model, the exact cache, a bad
text named by its field and charged nothing, and the per-method authorization gate."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import numpy as np
import pytest

from sidecar._gen.orchestrator.v1 import embed_pb2, quota_pb2
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, text_of

pytestmark = pytest.mark.integration

TOKENS = {"APP": "app-token", "QUOTA": "quota-token"}
LIMITS = [{"name": "req", "metric": "requests", "window": "day", "limit": 100}]


def bearer(name: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {TOKENS[name]}")]


@pytest.fixture
async def s(serve: Any) -> Any:
    auth = {
        "token": {"env": "APP"},
        "credentials": [{"name": "quota", "token": {"env": "QUOTA"}, "allow": ["QuotaService"]}],
    }
    raw = {"policy": echo_policy(quota={"limits": LIMITS}), "settings": {"auth": auth}}
    return await serve(raw, environ=TOKENS)


def embed(*texts: str, **fields: Any) -> embed_pb2.EmbedRequest:
    return embed_pb2.EmbedRequest(**{"tenant_id": "acme", "user_id": "ann", "texts": texts, **fields})


async def requests_used(s: Any) -> int:
    got = await s.stub.GetQuota(
        quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="ann"), metadata=bearer("APP")
    )
    return sum(limit.used for limit in got.limits if limit.name == "req")


async def test_embed_returns_one_vector_per_text_and_caches(s: Any) -> None:
    texts = ("The cat sits on the mat.", "A feline rests on a rug.", "Stock prices fell sharply.")
    first = await s.stub.Embed(embed(*texts, request_id="e-1"), metadata=bearer("APP"))
    v = np.array([list(e.values) for e in first.embeddings])
    assert (first.dimensions, first.normalized, first.deployment, first.cost_micros) == (
        384,
        True,
        "local",
        0,
    )
    assert v.shape == (3, 384) and v[0] @ v[1] > v[0] @ v[2]
    assert first.route and first.model and first.request_id == "e-1"
    assert first.usage.prompt_tokens > 0 and first.usage.cached_tokens == 0 and first.cached_texts == 0
    again = await s.stub.Embed(embed(*texts[:2]), metadata=bearer("APP"))
    assert again.cached_texts == 2 and again.usage.cached_tokens == again.usage.prompt_tokens
    assert np.allclose(np.array([list(e.values) for e in again.embeddings]), v[:2], atol=1e-6)
    assert again.request_id  # generated when the caller gives none
    assert await requests_used(s) == 2


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (embed("ok", "  "), "texts[1]"),
        (embed(), "texts"),
        (embed("ok", route="nope"), "route"),
        (embed_pb2.EmbedRequest(texts=["ok"]), "tenant_id"),
        (embed("ok", user_id="bad user"), "user_id"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field_and_charges_nothing(
    s: Any, request_: embed_pb2.EmbedRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Embed(request_, metadata=bearer("APP"))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert err.bad_request is not None and err.bad_request.field_violations[0].field == field
    assert await requests_used(s) == 0


async def test_a_credential_not_allowed_embed_is_denied_and_charges_nothing(s: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Embed(embed("hello"), metadata=bearer("QUOTA"))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "METHOD_NOT_ALLOWED")
    assert await requests_used(s) == 0


async def test_a_retried_embed_is_charged_once_and_gets_the_same_vectors(s: Any) -> None:
    texts = ("Retry me.", "And me too.")
    first = await s.stub.Embed(embed(*texts, request_id="emb-retry"), metadata=bearer("APP"))
    assert await requests_used(s) == 1
    again, joined = await asyncio.gather(
        s.stub.Embed(embed(*texts, request_id="emb-retry"), metadata=bearer("APP")),
        s.stub.Embed(embed(*texts, request_id="emb-retry"), metadata=bearer("APP")),
    )
    assert not first.replayed and again.replayed and joined.replayed  # the retries say so
    again.replayed = joined.replayed = False
    assert again == joined == first  # the first answer itself: same vectors, usage and request id
    assert again.cached_texts == 0  # not a cache hit: the call did not run again
    assert await requests_used(s) == 1
    other = await s.stub.Embed(embed(*texts, request_id="emb-other"), metadata=bearer("APP"))
    assert other.cached_texts == 2 and await requests_used(s) == 2  # a new id is a new call


async def test_another_body_under_the_same_key_is_refused_as_generate_refuses_it(s: Any) -> None:
    await s.stub.Embed(embed("one", request_id="emb-key"), metadata=bearer("APP"))
    for changed in (embed("two", request_id="emb-key"), embed("one", request_id="emb-key", route="local")):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.stub.Embed(changed, metadata=bearer("APP"))
        err = await rich(info.value)
        assert err.code == grpc.StatusCode.INVALID_ARGUMENT and err.reason == "IDEMPOTENCY_KEY_REUSED"
        assert err.fields == ["request_id"]
    assert await requests_used(s) == 1
    other_tenant = embed("two", request_id="emb-key", tenant_id="globex")  # keys are per tenant
    assert len((await s.stub.Embed(other_tenant, metadata=bearer("APP"))).embeddings) == 1


async def test_an_embed_and_a_generate_may_share_a_request_id(s: Any) -> None:
    await s.stub.Embed(embed("one", request_id="shared-id"), metadata=bearer("APP"))
    ask = generate_request(messages=[user("hello")], tenant_id="acme", user_id="ann", request_id="shared-id")
    reply = await s.stub.Generate(ask, metadata=bearer("APP"))
    assert not reply.summary.replayed and text_of(reply)


async def test_a_refused_embed_claims_no_key(s: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await s.stub.Embed(embed("", request_id="emb-bad"), metadata=bearer("APP"))
    assert (
        len((await s.stub.Embed(embed("fine", request_id="emb-bad"), metadata=bearer("APP"))).embeddings) == 1
    )


async def test_sidecars_sharing_redis_charge_a_retried_embed_once(serve: Any, redis_url: str) -> None:
    idem = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"test:idem:embed:{uuid.uuid4().hex}:"}
    quota = {
        "limits": LIMITS,
        "store": "redis",
        "redis_url": redis_url,
        "key_prefix": f"q{uuid.uuid4().hex[:8]}",
    }
    raw = {"policy": echo_policy(quota=quota), "settings": {"idempotency": idem}}
    a, b = await serve(raw), await serve(raw)
    first = await a.stub.Embed(embed("shared", request_id="emb-redis"))
    again = await b.stub.Embed(embed("shared", request_id="emb-redis"))
    assert again.replayed and not first.replayed
    again.replayed = False
    assert again == first
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await b.stub.Embed(embed("changed", request_id="emb-redis"))
    assert (await rich(info.value)).reason == "IDEMPOTENCY_KEY_REUSED"
    used = await a.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="ann"))
    assert sum(limit.used for limit in used.limits if limit.name == "req") == 1
