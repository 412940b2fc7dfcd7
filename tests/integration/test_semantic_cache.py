"""The semantic cache through the real server, the local model embedding the prompts, on the memory
store and on a real Redis shared by two sidecars."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.support.api import generate_request, text_of

pytestmark = pytest.mark.integration
ZERO = gen.GenerationConfig(temperature=0.0)
QUESTION = "What is the capital city of France?"
PARAPHRASE = "Which city is the capital of France?"
DIFFERENT = "What is the population of France?"


def config(namespace: str, redis_url: str | None) -> dict[str, Any]:
    store = {"backend": "redis", "redis_url": redis_url} if redis_url else {}
    return {
        "settings": {"cache": {"namespace": namespace, "scope": "tenant", "semantic": store}},
        "policy": {
            "default_route": "echo",
            "deployments": {
                "echo": {"provider": "echo", "model": "echo-1", "price": {"input_per_million": 2.0}},
            },
            "routes": {"echo": {"deployments": ["echo"], "cache": {"semantic": {"enabled": True}}}},
            "embeddings": {"load": "start"},
        },
    }


def ask(text: str, tenant: str = "acme", user_id: str = "ann") -> gen.GenerateRequest:
    return generate_request(messages=[user(text)], config=ZERO, tenant_id=tenant, user_id=user_id)


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "memory" else str(request.getfixturevalue("redis_url"))


async def test_a_paraphrase_is_answered_from_the_cache_within_its_tenant(
    serve: Any, store_url: str | None
) -> None:
    s = await serve(config(f"t{uuid.uuid4().hex[:10]}", store_url))
    first = await s.stub.Generate(ask(QUESTION))
    hit = await s.stub.Generate(ask(PARAPHRASE, user_id="bob"))
    assert not first.summary.cache_hit and first.summary.cost_micros > 0
    assert hit.summary.cache_hit and text_of(hit) == text_of(first) and hit.summary.cost_micros == 0
    assert not (await s.stub.Generate(ask(DIFFERENT))).summary.cache_hit
    assert not (await s.stub.Generate(ask(PARAPHRASE, tenant="globex"))).summary.cache_hit
    lookups = s.sidecar.deps.telemetry.metrics.registry.get_sample_value
    assert lookups("sidecar_semantic_cache_lookups_total", {"result": "hit"}) == 1


async def test_sidecars_on_one_redis_share_answers_but_not_tenants(serve: Any, redis_url: str) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    a = await serve(config(namespace, redis_url))
    b = await serve(config(namespace, redis_url))
    first = await a.stub.Generate(ask(QUESTION))
    hit = await b.stub.Generate(ask(PARAPHRASE))
    assert hit.summary.cache_hit and text_of(hit) == text_of(first)
    assert not (await b.stub.Generate(ask(QUESTION, tenant="globex"))).summary.cache_hit


async def test_a_hit_reports_the_similarity_and_the_age_of_its_answer(serve: Any) -> None:
    from sidecar._gen.orchestrator.v1 import cache_pb2
    from sidecar.core.clock import FakeClock
    from tests.support.api import stream_request

    clock = FakeClock()
    s = await serve(config(f"t{uuid.uuid4().hex[:10]}", None), clock=clock)
    first = (await s.stub.Generate(ask(QUESTION))).summary
    assert first.cache_similarity == 0 and not first.HasField("cache_entry_age")
    clock.advance(30)
    hit = (await s.stub.Generate(ask(PARAPHRASE))).summary
    assert hit.cache_hit_kind == cache_pb2.CACHE_HIT_KIND_SEMANTIC
    threshold = s.sidecar.cfg.policy.routes["echo"].cache.semantic.threshold
    assert threshold <= hit.cache_similarity < 1
    assert hit.cache_entry_age.ToMilliseconds() == 30_000
    clock.advance(5)
    request = stream_request(messages=[user(PARAPHRASE)], config=ZERO, tenant_id="acme", user_id="ann")
    streamed = [e async for e in s.stub.StreamGenerate(request)][-1].result.summary
    assert streamed.cache_hit_kind == cache_pb2.CACHE_HIT_KIND_SEMANTIC
    assert streamed.cache_similarity == pytest.approx(hit.cache_similarity)
    assert streamed.cache_entry_age.ToMilliseconds() == 35_000


@pytest.mark.filterwarnings(
    "ignore::RuntimeWarning"
)  # as in production: numpy's overflow warning is no error
async def test_an_embedding_upstream_overflowing_float32_poisons_nothing(serve: Any, upstream: Any) -> None:
    """An OpenAI-compatible embedding upstream answering numbers beyond float32's range (finite in
    JSON): the vector must be refused (the lookup an error, the call answered by the model), never
    turned into a NaN similarity that passes as a hit serving another question's answer."""
    import json

    from tests.support.upstream import Reply

    def vector(values: str) -> Reply:
        return Reply(
            body=json.dumps({"data": [{"index": 0, "embedding": json.loads(f"[{values}]")}]}).encode()
        )

    raw = config(f"t{uuid.uuid4().hex[:10]}", None)
    raw["policy"]["embeddings"] = {
        "default_route": "remote",
        "deployments": {"oai": {"kind": "openai", "model": "e", "base_url": f"{upstream.url}/v1"}},
        "routes": {"remote": {"deployments": ["oai"]}},
    }
    s = await serve(raw)
    upstream.push(vector("1.0, 0.0, 0.0"), vector("1e39, 0.0, 0.0"), vector("0.0, 1.0, 0.0"))
    first = await s.stub.Generate(ask(QUESTION))
    poisoned = await s.stub.Generate(ask(DIFFERENT))
    assert not poisoned.summary.cache_hit and text_of(poisoned) != text_of(first)
    third = await s.stub.Generate(ask("How tall is the Eiffel tower?"))
    assert not third.summary.cache_hit
    assert json.loads(upstream.seen[1].raw_body)["input"] == [DIFFERENT]
    lookups = s.sidecar.deps.telemetry.metrics.registry.get_sample_value
    assert lookups("sidecar_semantic_cache_lookups_total", {"result": "error"}) == 1
    assert lookups("sidecar_semantic_cache_lookups_total", {"result": "hit"}) is None


async def test_a_fallback_embedding_model_does_not_mix_vector_spaces(serve: Any, upstream: Any) -> None:
    """The embedding route falls back from a remote model to the local one while the remote fails:
    vectors of two models are not comparable (here not even of one size), so each model's entries
    are a partition of their own. Mixed in one, every later lookup failed (the memory store could
    not stack them) until the fallback's entries expired."""
    import json

    from tests.support.upstream import Reply

    def vector(values: list[float]) -> Reply:
        return Reply(body=json.dumps({"data": [{"index": 0, "embedding": values}]}).encode())

    raw = config(f"t{uuid.uuid4().hex[:10]}", None)
    raw["policy"]["embeddings"] = {
        "default_route": "remote",
        "load": "start",
        "deployments": {
            "oai": {"kind": "openai", "model": "e", "base_url": f"{upstream.url}/v1"},
            "local": {"kind": "local"},
        },
        "routes": {"remote": {"deployments": ["oai", "local"]}},
    }
    s = await serve(raw)
    upstream.push(
        vector([1.0, 0.0, 0.0]),  # the question, by the remote model
        Reply(status=503, body=b'{"error":{"message":"down"}}'),  # another question: the local model
        vector([1.0, 0.0, 0.0]),  # the question again, by the remote model
    )
    first = await s.stub.Generate(ask(QUESTION))
    await s.stub.Generate(ask(DIFFERENT))
    again = await s.stub.Generate(ask(PARAPHRASE))
    assert again.summary.cache_hit and text_of(again) == text_of(first)
    lookups = s.sidecar.deps.telemetry.metrics.registry.get_sample_value
    assert lookups("sidecar_semantic_cache_lookups_total", {"result": "error"}) is None


async def test_a_paraphrase_is_served_when_the_token_estimate_does_not_fit(serve: Any) -> None:
    """A semantic hit costs no tokens, like an exact hit (the embedding is the operator's): past the
    token budget a paraphrase is served; a question the cache cannot answer is refused by the
    estimate, reaches no provider and is charged nothing. It used to be refused like any call."""
    from sidecar._gen.orchestrator.v1 import quota_pb2
    from tests.integration.helpers import rich

    raw = config(f"t{uuid.uuid4().hex[:10]}", None)
    raw["policy"]["tier_assignment"] = {"default": "enterprise"}
    raw["policy"]["quota"] = {
        "output_tokens_estimate": 64,
        "limits": [{"name": "tokens", "metric": "tokens", "scope": "tenant", "window": "day", "limit": 80}],
    }
    s = await serve(raw)

    async def used() -> float:
        got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
        return float(next(limit.used for limit in got.limits if limit.name == "tokens"))

    first = await s.stub.Generate(ask(QUESTION))
    spent = await used()
    assert 80 - spent < 64  # what is left does not cover another call's estimate
    hit = await s.stub.Generate(ask(PARAPHRASE))
    assert hit.summary.cache_hit and text_of(hit) == text_of(first) and hit.summary.cost_micros == 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(ask(DIFFERENT))
    assert (await rich(info.value)).reason == "TOKEN_QUOTA_EXCEEDED"
    assert await used() == spent
    lookups = s.sidecar.deps.telemetry.metrics.registry.get_sample_value
    assert lookups("sidecar_semantic_cache_lookups_total", {"result": "hit"}) == 1


async def test_applications_naming_no_tenant_never_get_each_others_paraphrases(serve: Any) -> None:
    """Calls without a tenant_id were one tenant's: an application on its own credential asking a
    paraphrase got another application's answer. Each credential's calls are a tenant of their own."""
    apps = {"APP_A": "token-of-app-a-0123456789", "APP_B": "token-of-app-b-0123456789"}
    raw = config(f"t{uuid.uuid4().hex[:10]}", None)
    credentials = [{"name": n.lower(), "token": {"env": n}, "allow": ["GenerationService"]} for n in apps]
    raw["settings"]["auth"] = {"credentials": credentials}
    s = await serve(raw, apps)

    def bearer(app: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {apps[app]}")]

    await s.stub.Generate(ask(QUESTION, tenant=""), metadata=bearer("APP_A"))
    assert not (await s.stub.Generate(ask(PARAPHRASE, tenant=""), metadata=bearer("APP_B"))).summary.cache_hit
    assert (await s.stub.Generate(ask(PARAPHRASE, tenant=""), metadata=bearer("APP_A"))).summary.cache_hit
