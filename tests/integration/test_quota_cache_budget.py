"""A cached answer and a route's `budget_fallback`: a call whose dollar estimate does not fit at the
route's price but fits at its budget fallback's is answered from the response cache when the cache
holds the route's answer (free), not sent to the fallback deployment and paid for. A real sidecar,
its quota in a real Redis, the response cache on, a loopback OpenAI-wire upstream.

It was routed to the fallback and charged: the budget decision narrowed the cache key to the fallback
deployment, so the route's entry was never looked up. With a budget so tight that the fallback did
not fit either, the same call was a cache-only call and served free from that entry.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.support.api import generate_request, text_of
from tests.support.redis import flush_redis
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
# micro-dollars: a call's estimate (about 10 prompt tokens + 64) is about 740 at the big model's
# $10 per million tokens and 74 at the small one's $1; the first call spends 28 tokens, 280
LIMIT_USD = 800e-6


def config(upstream: Upstream, redis_url: str) -> dict[str, Any]:
    def deployment(model: str, price: float) -> dict[str, Any]:
        return {
            "provider": "openai",
            "model": model,
            "base_url": f"{upstream.url}/v1",
            "price": {"input_per_million": price, "output_per_million": price},
        }

    return {
        "policy": {
            "default_route": "smart",
            "deployments": {"big": deployment("big-model", 10), "small": deployment("small-model", 1)},
            "routes": {
                "smart": {
                    "deployments": ["big", "small"],
                    "budget_fallback": "small",
                    "retry": {"max_attempts": 1},
                }
            },
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": {
                "store": "redis",
                "redis_url": redis_url,
                "key_prefix": f"budget{time.time_ns()}",
                "output_tokens_estimate": 64,
                "limits": [
                    {
                        "name": "dollars",
                        "metric": "usd",
                        "scope": "tenant",
                        "window": "day",
                        "limit": LIMIT_USD,
                    }
                ],
            },
        },
        "settings": {"cache": {"enabled": True}},
    }


def ask(text: str) -> gen.GenerateRequest:
    return generate_request(
        messages=[user(text)], tenant_id="acme", user_id="ann", config=gen.GenerationConfig(temperature=0)
    )


async def test_a_cached_answer_is_served_before_the_budget_fallback_is_paid(
    serve: Any, upstream: Upstream, redis_url: str
) -> None:
    await flush_redis(redis_url)
    s = await serve(config(upstream, redis_url))
    upstream.default = Reply.json("openai/chat_completion.json")  # 19 + 9 tokens
    first = await s.stub.Generate(ask("Hi"))
    assert first.summary.served_by.deployment == "big" and len(upstream.seen) == 1
    spent = (await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))).limits[0].used
    hit = await s.stub.Generate(ask("Hi"))
    assert hit.summary.cache_hit and text_of(hit) == text_of(first) and hit.summary.cost_micros == 0
    assert len(upstream.seen) == 1  # the fallback was not asked
    assert (await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))).limits[0].used == spent
    # a question the cache cannot answer still goes to the budget fallback, which fits
    other = await s.stub.Generate(ask("Something else entirely"))
    assert other.summary.served_by.deployment == "small" and not other.summary.cache_hit
    assert len(upstream.seen) == 2


QUESTION = "What is the capital city of France?"
PARAPHRASE = "Which city is the capital of France?"


def semantic_config(redis_url: str) -> dict[str, Any]:
    """Echo deployments (the answer repeats the prompt), the semantic cache on the route."""

    def deployment(model: str, price: float) -> dict[str, Any]:
        price_of = {"input_per_million": price, "output_per_million": price}
        return {"provider": "echo", "model": model, "price": price_of}

    return {
        "policy": {
            "default_route": "smart",
            "deployments": {"big": deployment("echo-big", 10), "small": deployment("echo-small", 1)},
            "routes": {
                "smart": {
                    "deployments": ["big", "small"],
                    "budget_fallback": "small",
                    "retry": {"max_attempts": 1},
                    "cache": {"semantic": {"enabled": True}},
                }
            },
            "embeddings": {"load": "start"},
            "tier_assignment": {"default": "enterprise"},
            "quota": {
                "store": "redis",
                "redis_url": redis_url,
                "key_prefix": f"budgetsem{time.time_ns()}",
                "output_tokens_estimate": 64,
                "limits": [
                    {"name": "dollars", "metric": "usd", "scope": "tenant", "window": "day", "limit": 900e-6}
                ],
            },
        },
        "settings": {"cache": {"enabled": True, "namespace": f"b{time.time_ns()}"}},
    }


async def test_a_paraphrase_is_served_from_the_routes_semantic_entry_before_the_fallback(
    serve: Any, redis_url: str
) -> None:
    await flush_redis(redis_url)
    s = await serve(semantic_config(redis_url))
    first = await s.stub.Generate(ask(QUESTION))
    assert first.summary.served_by.deployment == "big" and not first.summary.cache_hit
    hit = await s.stub.Generate(ask(PARAPHRASE))
    assert hit.summary.cache_hit and text_of(hit) == text_of(first) and hit.summary.cost_micros == 0
    lookups = s.sidecar.deps.telemetry.metrics.registry.get_sample_value
    assert lookups("sidecar_semantic_cache_lookups_total", {"result": "hit"}) == 1
    assert lookups("sidecar_semantic_cache_lookups_total", {"result": "miss"}) == 1  # the first call's
    other = await s.stub.Generate(ask("How tall is the Eiffel tower in metres?"))
    assert other.summary.served_by.deployment == "small" and not other.summary.cache_hit
