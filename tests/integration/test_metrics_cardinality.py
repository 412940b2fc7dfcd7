"""Hostile callers cannot grow the series or put their text in a label: random tenants, users,
models, personas, conversations, experiment variants, metadata, tiers, embedding routes, request ids,
and upstream errors carrying random codes and messages. After one flood has made every series the
kinds of call make, a second flood of new random values adds none, and no label value anywhere
carries a value a caller or an upstream sent."""

from __future__ import annotations

import asyncio
import contextlib
import random
import string
import urllib.request
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import embed_pb2
from tests.conftest import user
from tests.support.api import generate_request, stream_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


def config(upstream: Upstream) -> dict[str, Any]:
    echo = {"provider": "echo", "model": "echo-1", "echo": {"faults": True}}
    policy = {
        "default_route": "r",
        "deployments": {
            "echo": echo,
            "up": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"},
        },
        "routes": {
            "r": {"deployments": ["echo"]},
            "u": {"deployments": ["up"], "retry": {"max_attempts": 1}},
        },
        "routing": {"probes": {"enabled": False}},
        "experiments": {
            "tone": {"route": "r", "control": "a", "variants": {"a": {}, "b": {}}},
        },
        "tier_assignment": {"source": "metadata"},
        "tiers": {"free": {"requests_per_minute": 100_000}},
        "quota": {"limits": []},
    }
    metrics = {"address": "127.0.0.1:0", "tenant_label_allow": ["known"], "max_label_series": 3}
    return {"policy": policy, "settings": {"telemetry": {"metrics": metrics}, "cache": {"enabled": True}}}


def word(rng: random.Random, n: int = 12) -> str:
    return "zq" + "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


async def flood(s: Any, upstream: Upstream, rng: random.Random, sent: set[str]) -> None:
    """One call of each kind with fresh random values; every value sent is added to `sent`."""

    def fresh() -> str:
        value = word(rng)
        sent.add(value)
        return value

    def ask(**extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = dict(
            messages=[user(f"hello {fresh()}")], tenant_id=fresh(), user_id=fresh(),
            conversation_id=fresh(), request_id=fresh(),
            metadata={fresh(): fresh(), "tier": "free"},
        )  # fmt: skip
        fields.update(extra)
        return fields

    kinds: list[dict[str, Any]] = [
        {},
        {"model": fresh()},
        {"persona_id": fresh()},
        {"experiment_variant": fresh()},
        {"experiment_variant": "b"},
        {"metadata": {"tier": fresh()}},
        *({"model": "u", "status": status} for status in (400, 404, 409, 422, 500, 503)),
        {"messages": [user(f"[[fault:unavailable]] {fresh()}")]},
        {"messages": [user(f"[[fault:rate_limited retry_after=1]] {fresh()}")]},
    ]
    for extra in kinds:
        if (status := extra.pop("status", None)) is not None:  # an upstream error of random words
            body = f'{{"error":{{"message":"{fresh()}","type":"{fresh()}","code":"{fresh()}"}}}}'
            upstream.push(Reply(status=status, body=body.encode()))
        with contextlib.suppress(grpc.aio.AioRpcError):
            await s.stub.Generate(generate_request(**ask(**extra)))
        with contextlib.suppress(grpc.aio.AioRpcError):
            if extra.get("model") != "u":
                async for _ in s.stub.StreamGenerate(stream_request(**ask(**extra))):
                    pass
    for route in ("", fresh()):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await s.stub.Embed(
                embed_pb2.EmbedRequest(
                    tenant_id=fresh(), user_id=fresh(), texts=[fresh()], route=route, request_id=fresh()
                )
            )


def series(port: int) -> tuple[set[str], str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    names = {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    return names, text


async def test_hostile_values_never_grow_the_series_nor_reach_a_label(serve: Any, upstream: Upstream) -> None:
    s = await serve(config(upstream))
    rng, sent = random.Random(7), set[str]()
    for _ in range(2):  # every kind of call, so that its series exist
        await flood(s, upstream, rng, sent)
    before, _ = await asyncio.to_thread(series, s.sidecar.metrics_port)
    for _ in range(10):
        await flood(s, upstream, rng, sent)
    after, text = await asyncio.to_thread(series, s.sidecar.metrics_port)
    assert after - before == set()
    leaked = [v for v in sent if v in text]
    assert leaked == []
