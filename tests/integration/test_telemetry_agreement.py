"""The ledger, GetUsage, the Prometheus counters and the exported spans tell one story per tenant.

A mixed run through the real server (unary and streams, a caller cancelling mid-stream, a deadline,
a failover, retries, response-cache hits, a `cache_only` call, quota refusals, an idempotent replay,
embeddings), with the ledger in SQLite, the spans exported over OTLP/HTTP to a real receiver, and
/metrics scraped. Per tenant, the ledger's rows, GetUsage's groups, the opt-in attributed counters
and the `chat`/`embed` spans must count the same calls, tokens, micro-dollars and outcomes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import embed_pb2, usage_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import admin_socket, user
from tests.integration.test_ledger import fresh_database, usage_request
from tests.integration.test_tracing_otlp import Receiver, attributes
from tests.support.api import generate_request, stream_request

pytestmark = pytest.mark.integration

TENANTS = ("t1", "t2", "t3")
PRICE = {"input_per_million": 1500.0, "output_per_million": 7000.0}
EMBED_ROUTES = ("e", "")  # an Embed's record names its embedding route, "" when it named none known


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.close()


def config(receiver: Receiver, ledger: dict[str, Any]) -> dict[str, Any]:
    echo = {"provider": "echo", "model": "echo-1", "price": PRICE}
    policy = {
        "default_route": "r",
        "deployments": {
            "flaky": {**echo, "echo": {"faults": True}},
            "tardy": {**echo, "echo": {"faults": True}},  # breakers of their own: flaky's may open
            "brittle": {**echo, "echo": {"faults": True}},
            "good": {**echo, "model": "echo-2"},
            "slow": {**echo, "echo": {"chunk_delay_seconds": 0.15, "tokens_per_chunk": 1}},
        },
        "routes": {
            "r": {"deployments": ["flaky", "good"], "retry": {"max_attempts": 2}},
            "slow": {"deployments": ["slow"], "retry": {"max_attempts": 1}},
            "late": {"deployments": ["tardy"], "retry": {"max_attempts": 1}},
            "brittle": {"deployments": ["brittle"], "retry": {"max_attempts": 1}},
            "h": {
                "deployments": ["tardy", "good"],
                "hedging": {"enabled": True, "min_delay_seconds": 0.05, "default_delay_seconds": 0.05},
            },
        },
        "routing": {"probes": {"enabled": False}},
        "tiers": {
            "basic": {
                "requests_per_minute": 1000,
                "limits": [{"name": "daily", "metric": "requests", "window": "day", "limit": 12}],
            },
            "professional": {
                "requests_per_minute": 1000,
                "limits": [{"name": "usd", "metric": "usd", "window": "day", "limit": 0.000001}],
            },
        },
        "tier_assignment": {"default": "basic", "users": {"t3/broke": "professional"}},
        "quota": {"limits": []},
        "embeddings": {"routes": {"e": {"deployments": ["local"]}}, "default_route": "e"},
    }
    metrics = {"address": "127.0.0.1:0", "tenant_label_allow": list(TENANTS)}
    telemetry = {
        "metrics": metrics,
        "ledger": {**ledger, "flush_interval_seconds": 0.05},
        "tracing": {"enabled": True, "otlp_endpoint": receiver.url, "export_timeout_seconds": 5},
    }
    settings = {"telemetry": telemetry, "admin": admin_socket(), "cache": {"enabled": True}}
    return {"policy": policy, "settings": settings}


async def workload(s: Any, tenant: str) -> None:
    """Every kind of call, for one tenant; failures are expected and swallowed."""
    stub = s.stub

    def ask(text: str, who: str = "u1", **fields: Any) -> dict[str, Any]:
        return dict(messages=[user(text)], tenant_id=tenant, user_id=who, **fields)

    exact = gen.GenerationConfig(temperature=0.0)
    await stub.Generate(generate_request(**ask("plain unary call one two three")))
    await stub.Generate(generate_request(**ask("cache me please", config=exact)))
    await stub.Generate(generate_request(**ask("cache me please", config=exact)))  # a hit
    [e async for e in stub.StreamGenerate(stream_request(**ask("a stream of words to echo")))]
    # failover: the first deployment fails before any chunk, the second answers
    await stub.Generate(generate_request(**ask("[[fault:unavailable]] fail over")))
    # retried on the same deployment (rate limited), then the next one
    await stub.Generate(generate_request(**ask("[[fault:rate_limited]] retry me")))
    # hedged: the first deployment is slow, the second is raced against it and wins
    await stub.Generate(generate_request(**ask("[[fault:delay_ms=600]] hedge me", model="h")))
    # an idempotent replay: the second is the first's answer, charged once
    for _ in range(2):
        await stub.Generate(generate_request(**ask("replayed once", request_id=f"idem-{tenant}")))
    # cancelled by the caller after two chunks
    call = stub.StreamGenerate(stream_request(**ask("one two three four five six", model="slow")))
    seen = 0
    async for event in call:
        seen += event.HasField("delta") and bool(event.delta.text)
        if seen == 2:
            call.cancel()
            break
    # the caller's deadline passes before the first chunk
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await stub.Generate(
            generate_request(**ask("[[fault:delay_ms=3000]] too late", model="late")), timeout=0.4
        )
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # interrupted after the first chunks: a stream ends in an error with its partial usage
    with contextlib.suppress(grpc.aio.AioRpcError):
        async for _ in stub.StreamGenerate(
            stream_request(
                **ask("[[fault:interrupt_after=2]] words words words words words", model="brittle")
            )
        ):
            pass
    # quota: `heavy` goes past its 12 requests a day
    for i in range(14):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await stub.Generate(generate_request(**ask(f"heavy {i}", who="heavy")))
    if tenant == "t3":  # a user with no dollars left: a cache_only call, refused on a miss
        with contextlib.suppress(grpc.aio.AioRpcError):
            await stub.Generate(generate_request(**ask("not cached at all", who="broke", config=exact)))
    # embeddings: one fresh, one repeated (cached)
    for texts in (("the cat sat", "on the mat"), ("the cat sat",)):
        await stub.Embed(embed_pb2.EmbedRequest(tenant_id=tenant, user_id="u2", texts=texts))
    with contextlib.suppress(grpc.aio.AioRpcError):  # an Embed refused: an error like a Generate's
        await stub.Embed(embed_pb2.EmbedRequest(tenant_id=tenant, user_id="u2", texts=["x"], route="nope"))
    # an unknown route: refused inside the pipeline
    with contextlib.suppress(grpc.aio.AioRpcError):
        await stub.Generate(generate_request(**ask("where to", model="nope")))


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def summed(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **want: str) -> float:
    return sum(v for (n, labels), v in samples.items() if n == name and set(want.items()) <= set(labels))


async def ledger_rows(ledger: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What the ledger stored, read from its database directly."""
    text = (
        "SELECT tenant, request_id, outcome, tokens_in, tokens_out, cost_micros, cache_hit, route, "
        "latency_seconds FROM usage_records"
    )
    if ledger["backend"] == "postgres":
        import asyncpg

        conn = await asyncpg.connect(ledger["postgres_url"])
        try:
            return [tuple(r) for r in await conn.fetch(text)]
        finally:
            await conn.close()
    with contextlib.closing(sqlite3.connect(ledger["sqlite_path"])) as db:
        return db.execute(text).fetchall()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_ledger_get_usage_metrics_and_spans_agree_per_tenant(
    serve: Any, receiver: Receiver, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    ledger: dict[str, Any] = {"backend": backend, "sqlite_path": str(tmp_path / "ledger.db")}
    if backend == "postgres":
        ledger["postgres_url"] = await fresh_database(request.getfixturevalue("postgres_url"))
    s = await serve(config(receiver, ledger))
    await asyncio.gather(*(workload(s, t) for t in TENANTS))
    await asyncio.sleep(0.5)  # the server saw the cancellations and sealed those calls

    usage = {}
    for t in TENANTS:
        groups = (await s.stub.GetUsage(usage_request(t, usage_pb2.USAGE_GROUP_BY_USER))).groups
        usage[t] = (
            sum(g.requests for g in groups),
            sum(g.errors for g in groups),
            sum(g.prompt_tokens for g in groups),
            sum(g.completion_tokens for g in groups),
            sum(g.cost_micros for g in groups),
        )
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    await s.sidecar.stop(0)  # the spans still batched are exported on the way down

    rows = await ledger_rows(ledger)
    spans = [sp for sp in receiver.spans if sp.name.startswith(("chat ", "embeddings "))]
    for t in TENANTS:
        mine = [r for r in rows if r[0] == t]
        ledger_view = (
            len(mine),
            sum(r[2] != "OK" for r in mine),
            sum(r[3] for r in mine),
            sum(r[4] for r in mine),
            sum(r[5] for r in mine),
        )
        assert usage[t] == ledger_view, (t, usage[t], ledger_view)
        # the opt-in per-tenant counters: every call of the tenant, its micro-dollars
        requests = summed(metrics, "sidecar_attributed_requests_total", tenant=t)
        cost = summed(metrics, "sidecar_attributed_cost_usd_total", tenant=t)
        assert (requests, round(cost * 1e6)) == (len(mine), ledger_view[4]), t
        # the spans: one per call, the same outcomes, tokens and cost
        traced = [attributes(sp) for sp in spans if attributes(sp).get("sidecar.tenant_id") == t]
        outcomes = collections.Counter(a.get("error.type", "OK") for a in traced)
        assert outcomes == collections.Counter(r[2] for r in mine), t
        assert sum(a.get("gen_ai.usage.input_tokens", 0) for a in traced) == ledger_view[2], t
        assert sum(a.get("gen_ai.usage.output_tokens", 0) for a in traced) == ledger_view[3], t
        assert sum(round(a.get("sidecar.cost_usd", 0.0) * 1e6) for a in traced) == ledger_view[4], t
    # the unlabelled counters: every call's micro-dollars and the providers' tokens (no cache hits)
    cost = summed(metrics, "sidecar_cost_usd_total") + summed(metrics, "sidecar_embed_cost_usd_total")
    assert round(cost * 1e6) == sum(r[5] for r in rows)
    provided = [r for r in rows if not r[6]]
    chat = [r for r in provided if r[7] not in EMBED_ROUTES]
    assert summed(metrics, "sidecar_tokens_total", direction="output") == sum(r[4] for r in chat)
    assert summed(metrics, "sidecar_tokens_total", direction="input") == sum(r[3] for r in chat)
    assert summed(metrics, "sidecar_embed_tokens_total") == sum(
        r[3] for r in provided if r[7] in EMBED_ROUTES
    )
    assert summed(metrics, "sidecar_cache_served_total") == sum(
        r[6] for r in rows if r[7] not in EMBED_ROUTES
    )
    assert summed(metrics, "sidecar_in_flight_calls") == 0
    # the calls' durations: the histograms' sums are the records' latencies
    chat_seconds = sum(r[8] for r in rows if r[7] not in EMBED_ROUTES)
    embed_seconds = sum(r[8] for r in rows if r[7] in EMBED_ROUTES)
    assert summed(metrics, "gen_ai_client_operation_duration_seconds_sum") == pytest.approx(chat_seconds)
    assert summed(metrics, "sidecar_embed_duration_seconds_sum") == pytest.approx(embed_seconds)
    refused = ("REQUEST_QUOTA_EXCEEDED", "TOKEN_QUOTA_EXCEEDED", "COST_QUOTA_EXCEEDED", "RATE_LIMITED")
    assert summed(metrics, "sidecar_quota_refusals_total") == sum(r[2] in refused for r in rows) > 0
    # every attempt after a call's first is a retry, a fallback or a hedge
    children = collections.Counter(
        sp.parent_span_id for sp in receiver.spans if sp.name.startswith("attempt ")
    )
    again = sum(max(0, children[sp.span_id] - 1) for sp in spans)
    moves = ("sidecar_retries_total", "sidecar_fallbacks_total", "sidecar_hedges_total")
    assert sum(summed(metrics, name) for name in moves) == again > 0
    assert summed(metrics, "sidecar_hedges_total") == len(TENANTS)
    outcomes = collections.Counter(r[2] for r in rows if r[7] not in EMBED_ROUTES)
    errors = collections.Counter()
    for (name, labels), v in metrics.items():
        if name == "sidecar_errors_total" and v:
            errors[dict(labels)["reason"]] += int(v)
    every = collections.Counter(r[2] for r in rows)  # an Embed's error is one too
    assert errors == collections.Counter({k: v for k, v in every.items() if k != "OK"})
    assert summed(metrics, "sidecar_requests_total") == sum(outcomes.values())
    assert summed(metrics, "sidecar_embed_requests_total") == sum(every.values()) - sum(outcomes.values())
    # the outcomes the run was meant to produce, so that the comparison above compared something
    kinds = collections.Counter(r[2] for r in rows)
    for expected in ("OK", "CANCELLED", "DEADLINE_EXCEEDED", "REQUEST_QUOTA_EXCEEDED", "MODEL_NOT_FOUND"):
        assert kinds[expected] >= len(TENANTS), (expected, kinds)
    assert kinds["STREAM_INTERRUPTED"] and kinds["COST_QUOTA_EXCEEDED"], kinds
    assert sum(r[6] for r in rows if r[7] not in EMBED_ROUTES) == len(TENANTS)
    assert sum(r[6] for r in rows if r[7] in EMBED_ROUTES) == len(TENANTS)
