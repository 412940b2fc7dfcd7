"""The embedding service: the local default model, validation, the exact cache, quota, fallback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from sidecar.config.schema import HttpSettings, Policy
from sidecar.core.clock import Deadline, SystemClock
from sidecar.core.errors import (
    InvalidRequestError,
    ProviderAuthError,
    ProvidersUnavailableError,
    QuotaExceededError,
)
from sidecar.embeddings.routing import EmbeddingDeployments, EmbeddingRouter
from sidecar.embeddings.service import EmbeddingService, EmbedRequest
from sidecar.ledger.record import UsageRecord
from sidecar.providers._http import HttpClient
from sidecar.quota.service import QuotaService
from sidecar.quota.signals import QuotaSignals
from sidecar.quota.store import MemoryQuotaStore
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.telemetry.metrics import Metrics
from tests.support.upstream import Reply, Upstream, fixture

pytestmark = pytest.mark.integration
CLOCK = SystemClock()
LIMITS = [
    {"name": "tok", "metric": "tokens", "window": "day", "limit": 100_000},
    {"name": "req", "metric": "requests", "window": "day", "limit": 100},
    {"name": "usd", "metric": "usd", "window": "day", "limit": 5},
]


def policy(embeddings: dict[str, Any] | None = None) -> Policy:
    return Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {"d": {"provider": "echo", "model": "m"}},
            "routes": {"main": {"deployments": ["d"]}},
            "quota": {"limits": LIMITS},
            **({"embeddings": embeddings} if embeddings is not None else {}),
        }
    )


class Records:
    """Where the service submits usage records (the ledger writer's entry point)."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def submit(self, record: UsageRecord) -> None:
        self.records.append(record)


class Rig:
    def __init__(self, p: Policy, http: HttpClient) -> None:
        self.ledger = Records()
        assert p.quota is not None
        self.metrics = Metrics()
        self.quota = QuotaService(p.quota, p.tiers, MemoryQuotaStore(CLOCK), CLOCK, QuotaSignals())
        deployments = EmbeddingDeployments(p.embeddings, http=http, secret=lambda _: None)
        router = EmbeddingRouter(p.embeddings, deployments, Breakers(BreakerPolicy(), CLOCK))
        self.service = EmbeddingService(
            p.embeddings, router, clock=CLOCK, quota=self.quota, metrics=self.metrics,
            ledger=self.ledger,  # type: ignore[arg-type]
        )  # fmt: skip

    async def embed(self, texts: list[str], tenant: str = "acme", route: str = "") -> Any:
        req = EmbedRequest("r1", tenant, "ann", tuple(texts), Deadline.after(30, CLOCK), route, tier="free")
        return await self.service.embed(req)

    async def used(self) -> dict[str, float]:
        return {s.limit.name: s.used for s in await self.quota.snapshot("acme", "ann", "free")}

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpSettings(), CLOCK)
    yield client
    await client.aclose()


@pytest.fixture
async def local(http: HttpClient) -> AsyncIterator[Rig]:
    rig = Rig(policy(), http)
    yield rig
    await rig.service.aclose()


async def test_the_local_default_embeds_and_caches_per_tenant(local: Rig) -> None:
    texts = ["The cat sits on the mat.", "A feline rests on a rug.", "Stock prices fell sharply."]
    first = await local.embed(texts)
    v = np.array(first.vectors)
    assert (first.dimensions, first.normalized, first.deployment, first.cost_usd) == (384, True, "local", 0.0)
    assert v.shape == (3, 384) and v[0] @ v[1] > v[0] @ v[2]
    assert first.usage.prompt_tokens > 0 and first.usage.cached_tokens == 0 and first.cached_texts == 0
    again = await local.embed(texts[:2])
    assert again.cached_texts == 2 and again.usage.cached_tokens == again.usage.prompt_tokens
    assert np.allclose(np.array(again.vectors), v[:2])
    other = await local.embed(texts[:1], tenant="globex")
    assert other.cached_texts == 0  # never another tenant's cache
    assert local.metric("sidecar_embed_texts_total", route="local", source="cache") == 2
    assert local.metric("sidecar_embed_texts_total", route="local", source="upstream") == 4
    assert (await local.used())["req"] == 2  # globex is another tenant's quota


@pytest.mark.parametrize(
    ("texts", "field"),
    [
        ([], "texts"),
        (["x"] * 257, "texts"),
        (["ok", "ok", "ok", "é" * 20_000], "texts[3]"),  # 40,000 bytes > 32,768
        (["ok", "word " * 600], "texts[1]"),  # 600 tokens > 512
        (["ok", "  "], "texts[1]"),
    ],
)
async def test_bad_input_names_the_field_and_charges_nothing(
    local: Rig, texts: list[str], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await local.embed(texts)
    assert info.value.violations[0].field == field
    assert (await local.used())["req"] == 0
    labels = {"route": "local", "deployment": "none", "code": "INVALID_ARGUMENT"}
    assert local.metric("sidecar_embed_requests_total", **labels) == 1


async def test_an_unknown_route_is_the_callers_error(local: Rig) -> None:
    with pytest.raises(InvalidRequestError) as info:
        await local.embed(["hi"], route="nope")
    assert info.value.violations[0].field == "route"


def remote(upstream: Upstream, *names: str) -> dict[str, Any]:
    deployment = {"kind": "openai", "model": "text-embedding-3-small", "base_url": f"{upstream.url}/v1",
                  "price_per_million_tokens": 20_000.0}  # fmt: skip
    return {
        "deployments": {n: deployment for n in names},
        "routes": {"remote": {"deployments": list(names)}},
        "default_route": "remote",
    }


async def test_falls_back_to_the_next_deployment_and_charges_quota(
    http: HttpClient, upstream: Upstream
) -> None:
    upstream.push(
        Reply(status=503, body=b'{"error":{"message":"busy"}}'), Reply.json("openai/embeddings.json")
    )
    rig = Rig(policy(remote(upstream, "primary", "secondary")), http)
    result = await rig.embed(["first text", "second text"])
    assert result.deployment == "secondary" and len(upstream.seen) == 2
    assert result.usage.prompt_tokens == 9 and result.cost_usd == pytest.approx(9 * 20_000 / 1e6)
    used = await rig.used()
    assert (used["req"], used["tok"]) == (1, 9)
    assert used["usd"] == pytest.approx(0.18)
    (record,) = rig.ledger.records
    assert (record.tenant, record.user, record.route, record.provider, record.model) == (
        "acme",
        "ann",
        "remote",
        "openai",
        "text-embedding-3-small",
    )
    assert (record.tokens_in, record.tokens_cached, record.outcome) == (9, 0, "OK")
    assert record.cost_usd == pytest.approx(0.18)


async def test_every_deployment_failing_is_unavailable_and_charges_nothing(
    http: HttpClient, upstream: Upstream
) -> None:
    rig = Rig(policy(remote(upstream, "primary", "secondary")), http)  # the upstream answers 500
    with pytest.raises(ProvidersUnavailableError):
        await rig.embed(["first text"])
    assert [r.outcome for r in rig.ledger.records] == ["PROVIDERS_UNAVAILABLE"]
    used = await rig.used()  # refunded in full like a Generate that produced nothing; it was 1 request
    assert (used["req"], used["tok"], used["usd"]) == (0, 0, 0)


async def test_every_deployment_refusing_our_key_is_provider_auth_failed_as_for_generation(
    http: HttpClient, upstream: Upstream
) -> None:
    """Our key refused by every deployment (401/403) is our misconfiguration, INTERNAL /
    PROVIDER_AUTH_FAILED, as a chat route says it (and the alert on that reason fires), not a
    provider outage the caller should retry."""
    refused = b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}'
    upstream.push(Reply(status=401, body=refused), Reply(status=403, body=refused))
    rig = Rig(policy(remote(upstream, "primary", "secondary")), http)
    with pytest.raises(ProviderAuthError):
        await rig.embed(["first text"])
    assert len(upstream.seen) == 2  # the next deployment was tried, as for generation
    assert [r.outcome for r in rig.ledger.records] == ["PROVIDER_AUTH_FAILED"]


async def test_a_fractional_cost_is_charged_the_micro_dollars_the_answer_reports(
    http: HttpClient, upstream: Upstream
) -> None:
    """text-embedding-3-large's price: 9 tokens cost 1.17 micro-dollars. The answer's cost_micros
    says 1; the settle charged 2 (rounded up)."""
    from sidecar.api.convert import micros

    upstream.push(Reply.json("openai/embeddings.json"))
    embeddings = remote(upstream, "large")
    embeddings["deployments"]["large"] = {
        **embeddings["deployments"]["large"],
        "price_per_million_tokens": 0.13,
    }
    rig = Rig(policy(embeddings), http)
    result = await rig.embed(["first text", "second text"])
    assert result.cost_usd * 1e6 % 1 != 0
    assert round((await rig.used())["usd"] * 1e6) == micros(result.cost_usd) == 1


async def test_an_upstream_counting_more_tokens_than_reserved_is_charged_within_the_limits(
    http: HttpClient, upstream: Upstream
) -> None:
    """Two short texts, reserved as ~4 tokens; the upstream says it counted 4e9. The settle charged
    that: 4e9 tokens in a 100,000-token daily bucket, $80,000 in a $5 one."""
    body = json.loads(fixture("openai/embeddings.json"))
    body["usage"] = {"prompt_tokens": 4_000_000_000, "total_tokens": 4_000_000_000}
    upstream.push(Reply(body=json.dumps(body).encode()))
    rig = Rig(policy(remote(upstream, "primary")), http)
    await rig.embed(["first text", "second text"])
    used = await rig.used()
    assert used["tok"] <= 100_000 and used["usd"] <= 5


async def test_an_embed_charged_within_its_reservation_is_answered_and_recorded_as_charged(
    http: HttpClient, upstream: Upstream
) -> None:
    """The upstream claimed 4e9 tokens and the limits let the call be charged only its reservation:
    the answer's usage and cost_micros, the ledger and the metrics said 4e9 tokens and $80,000."""
    from sidecar.api.convert import micros

    body = json.loads(fixture("openai/embeddings.json"))
    body["usage"] = {"prompt_tokens": 4_000_000_000, "total_tokens": 4_000_000_000}
    upstream.push(Reply(body=json.dumps(body).encode()))
    rig = Rig(policy(remote(upstream, "primary")), http)
    result = await rig.embed(["first text", "second text"])
    used = await rig.used()
    (record,) = rig.ledger.records
    assert result.usage.prompt_tokens == record.tokens_in == used["tok"]
    assert micros(result.cost_usd) == micros(record.cost_usd) == round(used["usd"] * 1e6)


async def test_an_embed_in_flight_counts_against_a_concurrency_limit(
    http: HttpClient, upstream: Upstream
) -> None:
    """A user limited to one call in flight ran any number of Embeds at once: they reserved no
    concurrency, so the limit bounded Generate only."""
    upstream.push(Reply.json("openai/embeddings.json", delay=0.5))
    p = policy(remote(upstream, "primary"))
    assert p.quota is not None
    inflight = {"name": "inflight", "metric": "concurrency", "limit": 1}
    p = p.model_copy(update={"quota": p.quota.model_validate({"limits": [*LIMITS, inflight]})})
    rig = Rig(p, http)
    first = asyncio.ensure_future(rig.embed(["first text", "second text"]))
    await asyncio.sleep(0)  # the first reserves (the memory store answers at once) and waits upstream
    with pytest.raises(QuotaExceededError) as info:
        await rig.embed(["third text"])
    assert info.value.reason == "CONCURRENCY_LIMITED"
    await first
    states = {s.limit.name: s for s in await rig.quota.snapshot("acme", "ann", "free")}
    assert (states["inflight"].used, states["inflight"].reserved) == (0, 0)


async def test_an_embed_refused_by_a_quota_counts_in_the_refusals_metric(
    http: HttpClient, upstream: Upstream
) -> None:
    """sidecar_quota_refusals_total counts the calls a quota refused: a refused Generate counted, a
    refused Embed did not (the observe layer, which counts them, is not on the Embed path)."""
    p = policy(remote(upstream, "primary"))
    assert p.quota is not None
    daily = {"name": "req", "metric": "requests", "window": "day", "limit": 0}
    p = p.model_copy(update={"quota": p.quota.model_validate({"limits": [daily]})})
    rig = Rig(p, http)
    with pytest.raises(QuotaExceededError):
        await rig.embed(["first text"])
    assert rig.metric("sidecar_quota_refusals_total", limit="req") == 1
    assert not upstream.seen
