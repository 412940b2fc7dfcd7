"""Money adds up: two real sidecars on one Redis, a mixed load at tight limits, then the quota's
counters, the usage ledger, the summaries and the Prometheus counters agree exactly.

The load has what moves money apart: fractional micro-dollar prices, an upstream that reports more
tokens than it sent (a usage correction past the budget), unary answers the budget refuses, streams
the budget cuts, callers that cancel mid-stream. Each call is a tenant's under a token or a dollar
limit that runs out during the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sqlite3
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from sidecar.api.convert import micros
from tests.conftest import user
from tests.support.api import Stubs
from tests.support.quota_cluster import OwnRedis, SidecarProcess

pytestmark = pytest.mark.integration
TOKENS, DOLLARS = 1_000, 0.0003  # each runs out during the load


async def chat(request: web.Request) -> web.StreamResponse:
    """OpenAI's wire format; 'words:N' asks for N words, 'over' for a usage of 500 output tokens."""
    body = await request.json()
    text = body["messages"][-1]["content"]
    text = text if isinstance(text, str) else " ".join(p.get("text", "") for p in text)
    words = int(re.search(r"words:(\d+)", text).group(1))  # type: ignore[union-attr]
    usage = {"prompt_tokens": 17, "completion_tokens": 500 if "over" in text else words}
    if not body.get("stream"):
        message = {"role": "assistant", "content": " ".join(["tok"] * words)}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        return web.json_response(
            {"id": "c", "object": "chat.completion", "choices": [choice], "usage": usage}
        )
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)

    async def event(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> None:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        data = {"id": "c", "object": "chat.completion.chunk", "choices": choices, **extra}
        await resp.write(b"data: " + json.dumps(data).encode() + b"\n\n")

    with contextlib.suppress(ConnectionResetError):  # a caller that left: the sidecar hung up
        for i in range(words):
            await event({"content": (" " if i else "") + "tok"})
            await asyncio.sleep(0.01)
        await event({}, "stop")
        await event(None, usage=usage)
        await resp.write(b"data: [DONE]\n\n")
    return resp


@pytest.fixture
async def upstream() -> Any:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    await runner.cleanup()


def config(redis_url: str, upstream: str) -> dict[str, Any]:
    price = {"input_per_million": 0.15, "output_per_million": 0.6}  # fractional micro-dollars per call

    def limit(metric: str, value: float) -> dict[str, Any]:
        return {
            "limits": [
                {"name": "budget", "metric": metric, "scope": "tenant", "window": "day", "limit": value}
            ]
        }

    return {
        "policy": {
            "default_route": "r",
            "deployments": {"d": {"provider": "openai", "model": "m", "base_url": upstream, "price": price}},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": {
                "store": "redis",
                "redis_url": redis_url,
                "key_prefix": f"it:{uuid.uuid4().hex[:8]}",
                "store_timeout_seconds": 5.0,
                "output_tokens_estimate": 8,
                "extension_tokens": 4,
                "tenants": {"tok": limit("tokens", TOKENS), "usd": limit("usd", DOLLARS)},
            },
        }
    }


@pytest.fixture
def cluster(tmp_path: Path, upstream: str) -> Iterator[tuple[OwnRedis, list[SidecarProcess]]]:
    redis = OwnRedis(tmp_path)
    redis.start()
    shared = config(redis.url, upstream)  # one key prefix: the sidecars share their buckets
    sidecars = [SidecarProcess(tmp_path, f"s{i}", shared) for i in range(2)]
    try:
        for s in sidecars:
            s.spawn()
        for s in sidecars:
            s.wait_ready()
        yield redis, sidecars
    finally:
        for s in sidecars:
            s.stop()
        redis.stop()


async def one(stub: Stubs, tenant: str, i: int) -> int:
    """One call of the mix; the cost_micros its summary reported (0 without a summary)."""
    words = 4 + i % 9
    prompt = f"call {i} words:{words}" + (" over" if i % 5 == 0 else "")
    inp = gen.GenerationInput(messages=[user(prompt)], tenant_id=tenant, user_id=f"u{i % 3}")
    with contextlib.suppress(grpc.aio.AioRpcError):
        if i % 2:
            reply = await stub.Generate(gen.GenerateRequest(input=inp), timeout=30)
            return int(reply.summary.cost_micros)
        call = stub.StreamGenerate(gen.StreamGenerateRequest(input=inp), timeout=30)
        deltas = 0
        async for event in call:
            deltas += event.HasField("delta")
            if i % 7 == 0 and deltas == 2:
                call.cancel()  # the caller leaves mid-stream
                return 0
            if event.HasField("result"):
                return int(event.result.summary.cost_micros)
    return 0


def scrape(sidecar: SidecarProcess) -> tuple[float, float]:
    """(cost in micro-dollars, input plus output tokens) from the sidecar's /metrics."""
    port = re.findall(r'"metrics_port": (\d+)', sidecar.log.read_text())[-1]
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    cost = tokens = 0.0
    for line in text.splitlines():
        if line.startswith("sidecar_cost_usd_total{"):
            cost += float(line.rsplit(" ", 1)[1]) * 1e6
        elif line.startswith("sidecar_tokens_total{") and 'direction="cached"' not in line:
            tokens += float(line.rsplit(" ", 1)[1])
    return round(cost, 3), tokens


async def test_the_quota_the_ledger_the_summaries_and_the_metrics_agree(
    cluster: tuple[OwnRedis, list[SidecarProcess]], tmp_path: Path
) -> None:
    _, sidecars = cluster
    channels = [grpc.aio.insecure_channel(s.target) for s in sidecars]
    stubs = [Stubs(c) for c in channels]
    summaries: list[int] = []
    for wave in range(6):  # 15 at a time: so many reservations at once would refuse each other
        calls = (one(stubs[i % 2], t, i) for t in ("tok", "usd") for i in range(wave * 15, wave * 15 + 15))
        summaries += await asyncio.gather(*calls)
    await asyncio.sleep(1)  # the cancelled calls' settles
    charged = {}
    for tenant in ("tok", "usd"):
        got = await stubs[0].GetQuota(quota_pb2.GetQuotaRequest(tenant_id=tenant))
        (budget,) = [limit for limit in got.limits if limit.name == "budget"]
        assert budget.reserved == 0
        assert budget.used <= (TOKENS if tenant == "tok" else micros(DOLLARS)) and budget.remaining < 50
        charged[tenant] = budget.used
    metrics = [scrape(s) for s in sidecars]
    for c in channels:
        await c.close()
    for s in sidecars:
        s.stop()  # the ledgers' queues are written on the way down
    rows: list[tuple[Any, ...]] = []
    for s in sidecars:
        with contextlib.closing(sqlite3.connect(tmp_path / f"{s.config.stem}-usage.db")) as conn:
            found = conn.execute("SELECT tenant, tokens_in + tokens_out, cost_usd FROM usage_records")
            rows += [(tenant, tokens, micros(usd)) for tenant, tokens, usd in found]  # as summaries say
    assert sum(r[1] for r in rows if r[0] == "tok") == charged["tok"]  # tokens charged = recorded
    assert sum(r[2] for r in rows if r[0] == "usd") == charged["usd"]  # micro-dollars charged = recorded
    assert sum(m[0] for m in metrics) == sum(r[2] for r in rows)  # and counted by Prometheus
    assert sum(m[1] for m in metrics) == sum(r[1] for r in rows)
    assert sum(summaries) <= sum(r[2] for r in rows)  # every summary's cost is in the ledger
