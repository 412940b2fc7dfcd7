"""A quota store that stalls never holds a call past its own deadline.

A real Redis made to answer nothing (DEBUG SLEEP, as a fork or SIGSTOP would) while a stream's
reservation has to grow, or while an Embed reserves: the store timeout (3 s here) is far longer than
the callers' deadlines. The call must end at its deadline with DEADLINE_EXCEEDED (the caller's, not
a store failure: no fail_open admission, no QUOTA_UNAVAILABLE), and once Redis answers again nothing
stays reserved and the stream is charged exactly what its record says it received.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sidecar.app import build_pipeline
from sidecar.config.schema import HttpSettings, Policy
from sidecar.core.clock import Deadline, SystemClock
from sidecar.core.errors import DeadlineExceededError
from sidecar.core.layer import collect
from sidecar.deps import build_deps
from sidecar.embeddings.routing import EmbeddingDeployments, EmbeddingRouter
from sidecar.embeddings.service import EmbeddingService, EmbedRequest
from sidecar.providers._http import HttpClient
from sidecar.quota.redis_store import RedisQuotaStore
from sidecar.quota.service import QuotaService
from sidecar.quota.signals import QuotaSignals
from sidecar.routing.breaker import BreakerPolicy, Breakers
from tests.conftest import make_config
from tests.support.calls import make_call
from tests.support.prometheus import quiet_telemetry
from tests.support.redis import stall, start_redis
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
STORE_TIMEOUT = 3.0
DEADLINE = 0.8
STALL = 2.0
LIMITS = [
    {"name": "tokens", "metric": "tokens", "window": "day", "limit": 100_000},
    {"name": "requests", "metric": "requests", "window": "day", "limit": 1000},
]


@pytest.fixture
async def slow_redis() -> AsyncIterator[str]:
    with start_redis("--enable-debug-command", "yes") as port:
        yield f"redis://127.0.0.1:{port}/0"


def quota_policy(url: str) -> dict[str, Any]:
    return {
        "store": "redis",
        "redis_url": url,
        "key_prefix": f"dl{time.time_ns()}",
        "store_timeout_seconds": STORE_TIMEOUT,
        "output_tokens_estimate": 1,  # every chunk or two outgrows the reservation: extensions
        "extension_tokens": 1,
        "limits": LIMITS,
    }


async def test_a_stream_whose_extension_stalls_ends_at_the_callers_deadline(
    slow_redis: str, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.default = Reply.sse("openai/stream.sse", chunk_delay=0.1)
    raw = {
        "settings": {"telemetry": quiet_telemetry(tmp_path)},
        "policy": {
            "default_route": "r",
            "deployments": {"d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": quota_policy(slow_redis),
        },
    }
    cfg = make_config(raw, {}, tmp_path)
    clock = SystemClock()
    deps = build_deps(cfg, clock)
    pipeline = build_pipeline(cfg, deps)
    quota = deps.quota
    assert quota is not None
    try:
        warm = replace(make_call(clock, timeout=10), tier="enterprise")
        await collect(pipeline, warm)  # a connection and the scripts loaded
        upstream.default = Reply.sse("openai/stream.sse", chunk_delay=0.15)
        call = replace(make_call(clock, timeout=DEADLINE), tier="enterprise")
        started = time.monotonic()
        sleeper = None
        with pytest.raises(DeadlineExceededError):
            async for chunk in pipeline(call):
                if chunk.text and sleeper is None:  # reserved, the stream under way: Redis stalls
                    sleeper = await stall(slow_redis, STALL)
        elapsed = time.monotonic() - started
        assert sleeper is not None
        assert elapsed < DEADLINE + 0.4, f"held {elapsed:.2f} s past a {DEADLINE} s deadline"
        await sleeper
        await quota.idle()
        states = {s.limit.name: s for s in await quota.snapshot("t", "u", "enterprise")}
        assert (states["tokens"].reserved, states["requests"].reserved) == (0, 0)
        received = call.record.usage.total_tokens
        assert received > 0
        assert (states["tokens"].used, states["requests"].used) == (28 + received, 2)
    finally:
        await quota.aclose()
        await deps.http.aclose()


async def test_an_embed_whose_reserve_stalls_ends_at_the_callers_deadline(
    slow_redis: str, upstream: Upstream
) -> None:
    clock = SystemClock()
    deployment = {
        "kind": "openai",
        "model": "e",
        "base_url": f"{upstream.url}/v1",
        "price_per_million_tokens": 1.0,
    }
    p = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {"d": {"provider": "echo", "model": "m"}},
            "routes": {"main": {"deployments": ["d"]}},
            "quota": quota_policy(slow_redis),
            "embeddings": {"deployments": {"e": deployment}, "routes": {"e": {"deployments": ["e"]}},
                           "default_route": "e"},
        }
    )  # fmt: skip
    assert p.quota is not None
    store = RedisQuotaStore.from_url(slow_redis, clock, prefix=p.quota.key_prefix, timeout=STORE_TIMEOUT)
    quota = QuotaService(p.quota, p.tiers, store, clock, QuotaSignals())
    http = HttpClient(HttpSettings(), clock)
    router = EmbeddingRouter(
        p.embeddings,
        EmbeddingDeployments(p.embeddings, http=http, secret=lambda _: None),
        Breakers(BreakerPolicy(), clock),
    )
    service = EmbeddingService(p.embeddings, router, clock=clock, quota=quota)

    def request(deadline: float) -> EmbedRequest:
        return EmbedRequest(
            "r", "acme", "ann", ("first text", "second text"), Deadline.after(deadline, clock), tier="free"
        )

    try:
        upstream.default = Reply.json("openai/embeddings.json")
        await service.embed(request(10))  # a connection and the scripts loaded
        sleeper = await stall(slow_redis, STALL)
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            await service.embed(request(DEADLINE))
        elapsed = time.monotonic() - started
        assert elapsed < DEADLINE + 0.4, f"held {elapsed:.2f} s past a {DEADLINE} s deadline"
        assert len(upstream.seen) == 1  # never embedded: refused before any provider
        await sleeper
        await quota.idle()
        states = {s.limit.name: s for s in await quota.snapshot("acme", "ann", "free")}
        assert (states["tokens"].reserved, states["requests"].reserved) == (0, 0)
        assert (states["tokens"].used, states["requests"].used) == (9, 1)  # the first call only
    finally:
        await quota.aclose()
        await service.aclose()
        await http.aclose()
