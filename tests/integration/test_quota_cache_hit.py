"""A response-cache hit costs no tokens and no dollars: a token or USD estimate that does not fit
does not refuse it. A real sidecar with its quota in a real Redis and the response cache on.

The first call is answered by the upstream, cached, and charged; what is left of the tenant's daily
tokens is then less than a call's estimate. The same call again used to be refused
TOKEN_QUOTA_EXCEEDED by that estimate, although the cache held its answer and serving it costs
nothing. Now it is served from the cache and charged one request (a request limit still counts it:
a hit past the daily request limit is RATE_LIMITED or REQUEST_QUOTA_EXCEEDED as before). A call the
cache cannot answer is still refused by its estimate, reaches no provider and is charged nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.integration.helpers import rich
from tests.integration.test_metrics_keys import scrape
from tests.support.api import generate_request, text_of
from tests.support.redis import flush_redis
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
TOKENS = 80  # a call's estimate (its prompt, about 10, + 64) fits; after the first call's 19 + 9, none


def config(upstream: Upstream, redis_url: str, *, usd: bool) -> dict[str, Any]:
    limits: list[dict[str, Any]] = [
        {"name": "requests", "metric": "requests", "scope": "tenant", "window": "day", "limit": 3}
    ]
    if usd:  # $1 per million tokens each way: a micro-dollar a token
        limits.append(
            {"name": "dollars", "metric": "usd", "scope": "tenant", "window": "day", "limit": TOKENS / 1e6}
        )
    else:
        limits.append(
            {"name": "tokens", "metric": "tokens", "scope": "tenant", "window": "day", "limit": TOKENS}
        )
    price = {"input_per_million": 1, "output_per_million": 1}
    deployment = {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1", "price": price}
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"d": deployment},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": {
                "store": "redis",
                "redis_url": redis_url,
                "key_prefix": f"hit{time.time_ns()}",
                "output_tokens_estimate": 64,
                "limits": limits,
            },
        },
        "settings": {"cache": {"enabled": True}},
    }


def ask(text: str) -> gen.GenerateRequest:
    return generate_request(
        messages=[user(text)], tenant_id="acme", user_id="ann", config=gen.GenerationConfig(temperature=0)
    )


async def used(s: Any) -> dict[str, float]:
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
    return {limit.name: limit.used for limit in got.limits}


@pytest.mark.parametrize("usd", [False, True], ids=["tokens", "usd"])
async def test_a_cache_hit_is_served_when_the_estimate_does_not_fit(
    serve: Any, upstream: Upstream, redis_url: str, usd: bool
) -> None:
    await flush_redis(redis_url)
    s = await serve(config(upstream, redis_url, usd=usd))
    upstream.default = Reply.json("openai/chat_completion.json")  # 19 + 9 tokens
    first = await s.stub.Generate(ask("Hi"))
    before = await used(s)
    assert before["requests"] == 1
    hit = await s.stub.Generate(ask("Hi"))
    assert text_of(hit) == text_of(first) and hit.summary.cache_hit and hit.summary.cost_micros == 0
    assert len(upstream.seen) == 1
    limit = "dollars" if usd else "tokens"
    refusals = f'sidecar_quota_refusals_total{{limit="{limit}"}}'
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert metrics.get(refusals, 0) == 0  # the estimate's refusal, the call served: not a refusal
    after = await used(s)
    assert after["requests"] == 2  # a hit is one request, nothing else
    assert {k: v for k, v in after.items() if k != "requests"} == {
        k: v for k, v in before.items() if k != "requests"
    }
    with pytest.raises(grpc.aio.AioRpcError) as info:  # not in the cache: the estimate refuses it
        await s.stub.Generate(ask("Something else entirely"))
    assert (await rich(info.value)).reason == ("COST_QUOTA_EXCEEDED" if usd else "TOKEN_QUOTA_EXCEEDED")
    assert len(upstream.seen) == 1  # no provider was asked
    assert (await asyncio.to_thread(scrape, s.sidecar.metrics_port))[refusals] == 1
    assert await used(s) == after  # charged nothing, not even the request
    streamed = gen.StreamGenerateRequest(input=ask("Hi").input)
    events = [e async for e in s.stub.StreamGenerate(streamed)]  # the third request: a streamed hit
    assert "".join(e.delta.text for e in events if e.HasField("delta")) == text_of(first)
    assert events[-1].result.summary.cache_hit and len(upstream.seen) == 1
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(ask("Hi"))  # a hit still counts against a request limit
    assert (await rich(info.value)).reason == "REQUEST_QUOTA_EXCEEDED"
    assert (await used(s))["requests"] == 3


async def test_a_cache_only_miss_reports_no_near_limit_event_and_a_hit_reports_its_own(
    serve: Any, upstream: Upstream, redis_url: str
) -> None:
    """The cache-only call's one-request reservation is refunded when the cache has no answer: it used
    to take the request limit to 100 % (reported: the log line, the metric, the webhook) for a call
    refused and charged nothing, and the hit that really took it there later reported nothing (each
    level is reported once per window)."""
    await flush_redis(redis_url)
    posts: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        posts.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        cfg = config(upstream, redis_url, usd=False)
        cfg["policy"]["quota"]["limits"][0]["limit"] = 2
        cfg["policy"]["quota"]["near_limit_levels"] = [100]
        cfg["policy"]["quota"]["webhook"] = {"url": f"http://127.0.0.1:{runner.addresses[0][1]}/hook"}
        s = await serve(cfg)
        upstream.default = Reply.json("openai/chat_completion.json")
        first = await s.stub.Generate(ask("Hi"))  # 1 of 2 requests, the tokens spent
        with pytest.raises(grpc.aio.AioRpcError):  # a cache-only miss: refused, charged nothing
            await s.stub.Generate(ask("Something else entirely"))
        near = 'sidecar_quota_near_limit_total{limit="requests",percent="100"}'
        assert (await asyncio.to_thread(scrape, s.sidecar.metrics_port)).get(near, 0) == 0
        hit = await s.stub.Generate(ask("Hi"))  # the second request: it takes the limit to 100 %
        assert text_of(hit) == text_of(first) and (await used(s))["requests"] == 2
        assert (await asyncio.to_thread(scrape, s.sidecar.metrics_port))[near] == 1
        for _ in range(100):
            if posts:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # any other event would be on its way by now
        assert [(p["limit"], p["level"], p["used"]) for p in posts] == [("requests", 100, 2)]
    finally:
        await runner.cleanup()


async def test_a_summary_call_past_the_budget_reaches_no_provider(serve: Any, upstream: Upstream) -> None:
    """Conversation summaries go through the quota, outside the caches (sidecar/app.py
    `build_summarizer`): a summary whose dollar estimate does not fit was marked cache_only as if a
    cache could answer it, went on to the summary route's provider, and only its first chunk was
    refused: a provider call past the budget, charged to nobody."""
    from tests.integration.test_context import SUMMARY, long_conversation
    from tests.support.api import stream_request

    price = {"input_per_million": 1000, "output_per_million": 1000}
    free = {"input_per_million": 0, "output_per_million": 0}
    cheap = {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1", "price": price}
    raw = {
        "policy": {
            "default_route": "chat",
            "deployments": {"large": {"provider": "echo", "model": "echo-l", "price": free}, "cheap": cheap},
            "routes": {"chat": {"deployments": ["large"]}, "cheap": {"deployments": ["cheap"]}},
            "context": {"summary": SUMMARY},
            "tier_assignment": {"default": "enterprise"},
            "quota": {  # the echo costs nothing; the summary route's estimate far more than a cent
                "limits": [
                    {"name": "usd", "metric": "usd", "scope": "tenant", "window": "day", "limit": 0.01}
                ]
            },
        },
        "settings": {"cache": {"enabled": True}},
    }
    s = await serve(raw)
    upstream.default = Reply.json("openai/chat_completion.json")
    request = stream_request(
        messages=long_conversation(6), conversation_id="c1", tenant_id="acme", user_id="ann"
    )
    for _ in range(2):  # the second turn has messages to summarize
        events = [e async for e in s.stub.StreamGenerate(request)]
        assert not events[-1].result.summary.context_summarized  # the summary was refused: trimmed
    assert upstream.seen == []
