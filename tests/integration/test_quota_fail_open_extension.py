"""fail_open mid-call: a stream whose quota store goes away is served uncounted, but not without end.

A real Redis (with an append-only file) is stopped while a stream runs under a 100-token daily
limit that is `fail_open`. Every extension then fails. Each failed extension used to count as
granted: the stream went on to its end (300 tokens), and once Redis was back the call's settle
charged all of it, leaving the bucket three times over its limit. Now the stream may use at most
`output_tokens_estimate` tokens uncounted (what a call reserves up front); past that it ends with
QUOTA_UNAVAILABLE, and nothing beyond what Redis held is ever charged: the bucket stays within its
limit and holds no reservation.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sidecar.app import build_pipeline
from sidecar.core.clock import SystemClock
from sidecar.core.errors import QuotaUnavailableError
from sidecar.core.layer import collect
from sidecar.deps import build_deps
from tests.conftest import make_config
from tests.support.calls import make_call
from tests.support.prometheus import quiet_telemetry
from tests.support.quota_cluster import OwnRedis
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
LIMIT = 100
ESTIMATE = 16
CHUNKS = 60
WORDS = 5


def long_stream() -> Reply:
    def event(delta: dict[str, str], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}
        return f"data: {json.dumps(body)}\n\n".encode()

    chunks = [event({"role": "assistant", "content": ""})]
    chunks += [event({"content": " word" * WORDS}) for _ in range(CHUNKS)]
    chunks += [event({}, "stop"), b"data: [DONE]\n\n"]
    return Reply(chunks=chunks, chunk_delay=0.01)


async def test_a_failing_store_lets_a_stream_go_on_uncounted_only_so_far(
    upstream: Upstream, tmp_path: Path
) -> None:
    redis = OwnRedis(tmp_path)
    redis.start()
    raw = {
        "settings": {"telemetry": quiet_telemetry(tmp_path)},
        "policy": {
            "default_route": "r",
            "deployments": {"d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": {
                "store": "redis",
                "redis_url": redis.url,
                "key_prefix": f"fo{time.time_ns()}",
                "on_store_error": "fail_open",
                "store_timeout_seconds": 0.3,
                "output_tokens_estimate": ESTIMATE,
                "extension_tokens": 4,
                "limits": [{"name": "tokens", "metric": "tokens", "window": "day", "limit": LIMIT}],
            },
        },
    }
    cfg = make_config(raw, {}, tmp_path)
    clock = SystemClock()
    deps = build_deps(cfg, clock)
    pipeline = build_pipeline(cfg, deps)
    quota = deps.quota
    assert quota is not None
    upstream.default = long_stream()
    call = replace(make_call(clock, timeout=30), tier="enterprise")
    received = ""
    try:
        with pytest.raises(QuotaUnavailableError):
            async for chunk in pipeline(call):
                if chunk.text and redis.process is not None:
                    redis.stop()  # reserved, the stream under way: the store goes away
                received += chunk.text
        redis.start()
        await quota.idle()
        words = received.count("word")
        assert words < CHUNKS * WORDS  # cut, not served to its end
        assert words <= ESTIMATE + ESTIMATE + WORDS  # its reservation, the uncounted allowance, a chunk
        (state,) = [s for s in await quota.snapshot("t", "u", "enterprise") if s.limit.name == "tokens"]
        assert state.reserved == 0
        assert 0 < state.used <= LIMIT
        warm = replace(make_call(clock, timeout=30), tier="enterprise")
        upstream.default = Reply.sse("openai/stream.sse")
        await collect(pipeline, warm)  # the store answers again: counted as before
        (after,) = [s for s in await quota.snapshot("t", "u", "enterprise") if s.limit.name == "tokens"]
        assert after.used > state.used
    finally:
        await quota.aclose()
        await deps.http.aclose()
        redis.stop()
