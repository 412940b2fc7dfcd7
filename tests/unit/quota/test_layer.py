"""QuotaLayer + QuotaService around a scripted inner handler, over both stores (memory, real Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
import zoneinfo
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from sidecar.config.schema import Policy
from sidecar.core.errors import (
    InvalidRequestError,
    ProvidersUnavailableError,
    QuotaExceededError,
    QuotaUnavailableError,
    StreamInterruptedError,
)
from sidecar.core.layer import Handler
from sidecar.core.tokens import count_tokens
from sidecar.core.types import Call, Chunk, FinishReason, GenerationParams, ToolCallDelta, Usage
from sidecar.pipeline.quota import QuotaLayer, TokenEstimator
from sidecar.quota.service import QuotaService
from sidecar.quota.signals import NearLimitEvent, QuotaSignals
from sidecar.quota.store import MemoryQuotaStore, QuotaStore, QuotaStoreError
from sidecar.routing.table import RouteTable
from tests.conftest import FakeClock, free_port
from tests.support.calls import make_call

WORDS = "alpha beta gamma delta "  # 4 tokens a chunk
CHUNK_TOKENS = count_tokens(WORDS)


def policy(quota: dict[str, Any], **extra: Any) -> Policy:
    price = {"input_per_million": 1_000, "output_per_million": 2_000}  # $0.001 / $0.002 a token
    cheap = {"input_per_million": 100, "output_per_million": 200}
    return Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                "big": {"provider": "echo", "model": "big", "price": price},
                "small": {"provider": "echo", "model": "small", "price": cheap},
            },
            "routes": {
                "main": {"deployments": ["big", "small"], "budget_fallback": "small"},
                "other": {"deployments": ["small"]},
            },
            "quota": quota,
            **extra,
        }
    )


@dataclass
class Inner:
    """The rest of the pipeline: picks a deployment like the route layer, then plays a script."""

    table: RouteTable
    chunks: list[Chunk] = field(default_factory=list)
    error: Exception | None = None
    fail_first: bool = False
    cache_hit: bool = False
    rejected: Usage | None = None  # an answer schema_retry rejected on the route's first deployment
    seen: list[Call] = field(default_factory=list)

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.seen.append(call)
        if self.fail_first and self.error is not None:
            raise self.error
        route = self.table.resolve(call.model)
        wanted = call.budget_deployment or route.targets[0].deployment
        target = next(t for t in route.targets if t.deployment == wanted)
        final = next((c for c in self.chunks if c.is_final), Chunk(finish_reason=FinishReason.STOP))
        if self.rejected is not None:
            call.record.answer_rejected(route.targets[0], self.rejected)
        if self.cache_hit:  # as the cache layer does: reported before the replayed chunks
            call.record.answered_from_cache(
                target, final.finish_reason or FinishReason.STOP, final.usage or Usage()
            )
        else:
            call.record.served_by(target)
        for chunk in self.chunks:
            if chunk.is_final and not self.cache_hit:
                call.record.upstream_finished(chunk.finish_reason, chunk.usage or Usage())
            yield chunk
        if self.error is not None:
            raise self.error


@dataclass
class Rig:
    layer: Handler
    service: QuotaService
    inner: Inner
    events: list[NearLimitEvent]
    clock: FakeClock

    async def run(self, call: Call | None = None) -> str:
        parts = []
        async with aclosing(self.layer(call or make_call(self.clock))) as stream:
            async for chunk in stream:
                parts.append(chunk.text)
        return "".join(parts)

    async def used(
        self, name: str, tenant: str = "t", user: str = "u", tier: str = "free"
    ) -> tuple[float, float]:
        states = {s.limit.name: s for s in await self.service.snapshot(tenant, user, tier)}
        return states[name].used, states[name].reserved


def rig(p: Policy, store: QuotaStore, clock: FakeClock, cache_answers: bool = False, **inner: Any) -> Rig:
    assert p.quota is not None
    events: list[NearLimitEvent] = []
    signals = QuotaSignals(on_near_limit=[events.append])
    service = QuotaService(p.quota, p.tiers, store, clock, signals)
    table = RouteTable.from_policy(p)
    scripted = Inner(table, **inner)
    layer = QuotaLayer(scripted, quota=service, table=table, cache_answers=cache_answers)
    return Rig(layer, service, scripted, events, clock)


def final(prompt: int, completion: int) -> Chunk:
    return Chunk(finish_reason=FinishReason.STOP, usage=Usage(prompt, completion))


def tier_call(clock: FakeClock, tier: str = "free", **kw: Any) -> Call:
    return replace(make_call(clock, **kw), tier=tier)


async def test_tier_requests_per_minute_then_rate_limited(quota_store: QuotaStore, clock: FakeClock) -> None:
    r = rig(policy({}), quota_store, clock, chunks=[final(5, 1)])
    for _ in range(5):  # free: 5 a minute by default
        await r.run(tier_call(clock))
    with pytest.raises(QuotaExceededError) as info:
        await r.run(tier_call(clock))
    err = info.value
    assert err.reason == "RATE_LIMITED" and err.metadata["limit"] == "tier-requests-per-minute"
    assert err.quota_violations[0].subject == "tenant:t/user:u"
    assert err.retry_after is not None and 0 < err.retry_after <= 60
    clock.advance(err.retry_after)
    await r.run(tier_call(clock))
    assert len(r.inner.seen) == 6  # the refused call never reached the provider


async def test_settles_real_usage_and_refunds_failures(quota_store: QuotaStore, clock: FakeClock) -> None:
    limits = [
        {"name": "tok", "metric": "tokens", "window": "day", "limit": 10_000},
        {"name": "req", "metric": "requests", "window": "day", "limit": 100},
        {"name": "usd", "metric": "usd", "window": "month", "limit": 5, "scope": "tenant"},
    ]
    r = rig(policy({"limits": limits}), quota_store, clock, chunks=[Chunk(text="hi"), final(9, 7)])
    await r.run(tier_call(clock))
    assert await r.used("tok") == (16, 0)
    assert await r.used("req") == (1, 0)
    assert await r.used("usd") == (pytest.approx(9 * 0.001 + 7 * 0.002), 0)
    r.inner.chunks, r.inner.error, r.inner.fail_first = [], ProvidersUnavailableError("down"), True
    with pytest.raises(ProvidersUnavailableError):
        await r.run(tier_call(clock))
    assert await r.used("req") == (1, 0)  # refunded in full: nothing reached a provider
    assert await r.used("tok") == (16, 0)


async def test_partial_stream_is_charged_what_was_produced(quota_store: QuotaStore, clock: FakeClock) -> None:
    limits = [{"name": "tok", "metric": "tokens", "window": "day", "limit": 10_000}]
    r = rig(policy({"limits": limits}), quota_store, clock, chunks=[Chunk(text=WORDS)] * 3)
    r.inner.error = StreamInterruptedError("cut")
    with pytest.raises(StreamInterruptedError):
        await r.run(tier_call(clock, text="hello there"))
    prompt = 3 + 4 + count_tokens("hello there")
    assert await r.used("tok") == (prompt + 3 * CHUNK_TOKENS, 0)


async def test_stream_extension_refused_delivers_what_fits_and_charges_exactly_that(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    limit = 61
    quota = {
        "limits": [{"name": "tok", "metric": "tokens", "window": "day", "limit": limit}],
        "output_tokens_estimate": 8,
        "extension_tokens": 6,
    }
    r = rig(policy(quota), quota_store, clock, chunks=[Chunk(text=WORDS)] * 40 + [final(9, 160)])
    delivered = []
    with pytest.raises(QuotaExceededError) as info:
        async with aclosing(r.layer(tier_call(clock))) as stream:
            async for chunk in stream:
                delivered.append(chunk.text)
    assert info.value.reason == "TOKEN_QUOTA_EXCEEDED"
    prompt = 3 + 4 + count_tokens("hello there")
    output = sum(count_tokens(t) for t in delivered)
    assert delivered[-1] and WORDS.startswith(delivered[-1]) and delivered[-1] != WORDS  # a part of a chunk
    assert await r.used("tok") == (prompt + output, 0)  # charged exactly what was delivered
    assert prompt + output == limit  # the whole budget, not a token more
    assert info.value.metadata["completionTokens"] == str(output)


async def test_a_usage_correction_beyond_the_budget_is_not_charged(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    quota = {
        "limits": [{"name": "tok", "metric": "tokens", "window": "day", "limit": 30}],
        "output_tokens_estimate": 8,
        "extension_tokens": 6,
    }
    r = rig(policy(quota), quota_store, clock, chunks=[Chunk(text=WORDS), final(9, 500)])
    assert await r.run(tier_call(clock)) == WORDS  # the answer was complete
    used, reserved = await r.used("tok")
    assert reserved == 0 and used <= 30


async def test_a_unary_answer_beyond_the_budget_is_refused_and_only_its_prompt_charged(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    quota = {
        "limits": [{"name": "tok", "metric": "tokens", "window": "day", "limit": 40}],
        "output_tokens_estimate": 8,
    }
    answer = Chunk(text=WORDS * 10, finish_reason=FinishReason.STOP, usage=Usage(11, 40))
    r = rig(policy(quota), quota_store, clock, chunks=[answer])
    with pytest.raises(QuotaExceededError) as info:
        await r.run(tier_call(clock, stream=False))
    assert info.value.metadata["completionTokens"] == "0"
    assert await r.used("tok") == (11, 0)


async def test_cancelled_stream_releases_and_charges_what_it_got(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    quota = {"limits": [{"name": "inflight", "metric": "concurrency", "limit": 1}]}
    r = rig(policy(quota), quota_store, clock, chunks=[Chunk(text=WORDS)] * 5 + [final(9, 20)])
    stream = r.layer(tier_call(clock))
    await anext(stream)
    with pytest.raises(QuotaExceededError) as info:
        await r.run(tier_call(clock))
    assert info.value.reason == "CONCURRENCY_LIMITED"
    await stream.aclose()  # the caller went away mid-stream
    assert await r.used("inflight") == (0, 0)
    await r.run(tier_call(clock))


async def test_cache_hit_is_one_request_and_nothing_else(quota_store: QuotaStore, clock: FakeClock) -> None:
    limits = [
        {"name": "tok", "metric": "tokens", "window": "day", "limit": 1000},
        {"name": "usd", "metric": "usd", "window": "day", "limit": 1},
        {"name": "req", "metric": "requests", "window": "day", "limit": 10},
    ]
    r = rig(
        policy({"limits": limits, "output_tokens_estimate": 10}),
        quota_store,
        clock,
        chunks=[Chunk(text="x"), final(9, 1)],
        cache_hit=True,
    )
    await r.run(tier_call(clock))
    assert [await r.used(n) for n in ("tok", "usd", "req")] == [(0, 0), (0, 0), (1, 0)]


@pytest.mark.parametrize("metric", ["tokens", "usd"])
async def test_a_cache_hit_is_served_when_the_estimate_does_not_fit(
    quota_store: QuotaStore, clock: FakeClock, metric: str
) -> None:
    """A hit costs no tokens and no dollars: the estimate's refusal does not refuse it, and the
    layers inside are told (cache_only) that only the cache may answer."""
    limits = [
        {"name": "budget", "metric": metric, "window": "day", "limit": 5 if metric == "tokens" else 0.000001},
        {"name": "req", "metric": "requests", "window": "day", "limit": 10},
    ]
    r = rig(
        policy({"limits": limits, "output_tokens_estimate": 10}),
        quota_store,
        clock,
        cache_answers=True,
        chunks=[Chunk(text="x"), final(9, 1)],
        cache_hit=True,
    )
    assert await r.run(tier_call(clock)) == "x"
    assert r.inner.seen[-1].cache_only
    assert [await r.used(n) for n in ("budget", "req")] == [(0, 0), (1, 0)]


async def test_a_cache_only_call_the_cache_did_not_answer_is_refused_and_costs_nothing(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    limits = [
        {"name": "tok", "metric": "tokens", "window": "day", "limit": 5},
        {"name": "req", "metric": "requests", "window": "day", "limit": 10},
    ]
    p = policy({"limits": limits, "output_tokens_estimate": 10})
    r = rig(p, quota_store, clock, cache_answers=True, chunks=[])  # the cache layer: a miss, nothing
    with pytest.raises(QuotaExceededError) as info:
        await r.run(tier_call(clock))
    assert info.value.reason == "TOKEN_QUOTA_EXCEEDED"
    r.inner.chunks = [Chunk(text="from a provider"), final(9, 3)]  # a cache layer that let it through
    with pytest.raises(QuotaExceededError):
        await r.run(tier_call(clock))  # not delivered: only a hit may answer
    assert [await r.used(n) for n in ("tok", "req")] == [(0, 0), (0, 0)]
    plain = rig(p, quota_store, clock, cache_answers=False, cache_hit=True, chunks=[Chunk(text="x")])
    with pytest.raises(QuotaExceededError):  # no response cache: refused by the estimate as it is
        await plain.run(tier_call(clock))
    assert not plain.inner.seen


async def test_budget_fallback_to_the_cheaper_deployment(quota_store: QuotaStore, clock: FakeClock) -> None:
    # estimate: 11 prompt + 100 output tokens; big costs $0.211, small $0.0211
    quota = {
        "limits": [{"name": "usd", "metric": "usd", "window": "day", "limit": 0.1}],
        "output_tokens_estimate": 100,
    }
    r = rig(policy(quota), quota_store, clock, chunks=[final(11, 10)])
    await r.run(tier_call(clock))
    assert r.inner.seen[-1].budget_deployment == "small"
    assert (await r.used("usd"))[0] == pytest.approx(11 * 0.0001 + 10 * 0.0002)
    rich = rig(policy({**quota, "limits": [{**quota["limits"][0], "limit": 1}]}), quota_store, clock)
    rich.inner.chunks = [final(11, 10)]
    await rich.run(tier_call(clock, text="other tenant"))
    assert rich.inner.seen[-1].budget_deployment == ""


async def test_budget_fallback_that_cannot_cover_either_refuses(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    quota = {
        "limits": [{"name": "usd", "metric": "usd", "window": "day", "limit": 0.001}],
        "output_tokens_estimate": 100,
    }
    r = rig(policy(quota), quota_store, clock)
    with pytest.raises(QuotaExceededError) as info:
        await r.run(tier_call(clock))
    assert info.value.reason == "COST_QUOTA_EXCEEDED" and not r.inner.seen


async def test_missing_ids_where_the_policy_needs_them(quota_store: QuotaStore, clock: FakeClock) -> None:
    r = rig(policy({}), quota_store, clock)
    with pytest.raises(InvalidRequestError) as info:
        await r.run(replace(tier_call(clock), user_id=""))
    assert [v.field for v in info.value.violations] == ["user_id"]
    tenant_only = policy(
        {"limits": [{"name": "t", "metric": "requests", "scope": "tenant", "window": "day", "limit": 9}]},
        tiers={"free": {}, "service": {}},  # a tier without a default requests-per-minute
    )
    anonymous = replace(tier_call(clock, tier="service"), user_id="")
    await rig(tenant_only, quota_store, clock, chunks=[final(1, 1)]).run(anonymous)


async def test_shadow_limits_count_but_never_refuse(quota_store: QuotaStore, clock: FakeClock) -> None:
    limits = [{"name": "s", "metric": "requests", "window": "day", "limit": 1, "shadow": True}]
    r = rig(policy({"limits": limits}), quota_store, clock, chunks=[final(1, 1)])
    for _ in range(3):
        await r.run(tier_call(clock))
    assert await r.used("s") == (3, 0)
    assert r.service.signals.shadow_refused_total["s"] == 2
    assert [e.level for e in r.events if e.limit == "s"] == [100]


async def test_near_limit_events_fire_once_each(quota_store: QuotaStore, clock: FakeClock) -> None:
    limits = [{"name": "req", "metric": "requests", "window": "day", "limit": 10}]
    r = rig(policy({"limits": limits}), quota_store, clock, chunks=[final(1, 1)])
    for _ in range(10):
        await r.run(tier_call(clock, tier="enterprise"))
    fired = [(e.limit, e.level) for e in r.events]
    assert fired == [("req", 80), ("req", 90), ("req", 100)]
    assert r.events[0].user == "u" and r.events[0].window == "day"


async def test_day_window_rolls_over_at_midnight_in_the_zone(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    midnight = dt.datetime(2026, 11, 22, tzinfo=berlin).timestamp()
    clock.now = midnight - 60 - (clock.wall() - clock.now)  # one minute to midnight, Berlin
    quota = {
        "timezone": "Europe/Berlin",
        "limits": [{"name": "d", "metric": "requests", "window": "day", "limit": 1}],
    }
    r = rig(policy(quota), quota_store, clock, chunks=[final(1, 1)])
    await r.run(tier_call(clock, tier="enterprise"))
    with pytest.raises(QuotaExceededError) as info:
        await r.run(tier_call(clock, tier="enterprise"))
    assert info.value.reason == "REQUEST_QUOTA_EXCEEDED" and info.value.retry_after == 60
    clock.advance(60)
    await r.run(tier_call(clock, tier="enterprise"))
    (state,) = [s for s in await r.service.snapshot("t", "u", "enterprise") if s.limit.name == "d"]
    assert state.reset_at == dt.datetime(2026, 11, 23, tzinfo=berlin).timestamp()


async def test_month_window_rolls_over(quota_store: QuotaStore, clock: FakeClock) -> None:
    clock.now = dt.datetime(2026, 11, 30, 23, 59, tzinfo=dt.UTC).timestamp() - (clock.wall() - clock.now)
    quota = {"limits": [{"name": "m", "metric": "tokens", "window": "month", "limit": 20}]}
    r = rig(policy(quota), quota_store, clock, chunks=[final(2, 2)])
    big = replace(tier_call(clock, tier="enterprise"), params=GenerationParams(max_tokens=5))
    await r.run(big)
    with pytest.raises(QuotaExceededError):
        await r.run(replace(big, params=GenerationParams(max_tokens=10)))
    clock.advance(60)
    await r.run(replace(big, params=GenerationParams(max_tokens=10)))


def unreachable(clock: FakeClock) -> QuotaStore:
    from sidecar.quota.redis_store import RedisQuotaStore

    return RedisQuotaStore.from_url(f"redis://127.0.0.1:{free_port()}/0", clock, prefix="x", timeout=0.5)


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
async def test_store_unreachable_follows_the_limit_policy(mode: str, clock: FakeClock) -> None:
    errors: list[str] = []
    r = rig(policy({"on_store_error": mode}), unreachable(clock), clock, chunks=[final(1, 1)])
    r.service.signals.on_store_error.append(errors.append)
    try:
        if mode == "fail_open":
            for _ in range(7):  # more than free's 5 a minute: nothing is counted while the store is down
                await r.run(tier_call(clock))
            assert errors.count("reserve") == 7
            assert len(r.service.releases) == 7  # what a reserve may have held, released when it answers
            assert set(errors) <= {"reserve", "release"}
        else:
            with pytest.raises(QuotaUnavailableError) as info:
                await r.run(tier_call(clock))
            assert info.value.metadata["limit"] == "tier-requests-per-minute" and not r.inner.seen
        with pytest.raises(QuotaUnavailableError):
            await r.service.snapshot("t", "u", "free")
    finally:
        await r.service.aclose()


async def test_concurrent_calls_admit_exactly_the_limit(quota_store: QuotaStore, clock: FakeClock) -> None:
    r = rig(policy({}, tiers={"free": {"requests_per_minute": 20}}), quota_store, clock, chunks=[final(1, 1)])
    results = await asyncio.gather(*(r.run(tier_call(clock)) for _ in range(50)), return_exceptions=True)
    assert sum(not isinstance(x, BaseException) for x in results) == 20
    assert all(isinstance(x, QuotaExceededError) for x in results if isinstance(x, BaseException))


async def test_disabled_quota_counts_nothing(quota_store: QuotaStore, clock: FakeClock) -> None:
    """(Tier route restrictions are the resolve step's: tests/unit/pipeline/test_resolve.py.)"""
    p = policy({"enabled": False}, tiers={"free": {"allowed_routes": ["main"]}})
    r = rig(p, quota_store, clock, chunks=[Chunk(text="hi"), final(1, 1)])
    for _ in range(8):  # more than free's 5 a minute
        assert await r.run(tier_call(clock)) == "hi"
    assert await r.used("tier-requests-per-minute") == (0, 0)


async def test_a_twice_cancelled_call_still_settles_before_close(redis_url: str, clock: FakeClock) -> None:
    from sidecar.quota.redis_store import RedisQuotaStore

    prefix = f"test:{uuid.uuid4().hex[:12]}"
    store = RedisQuotaStore.from_url(redis_url, clock, prefix=prefix, timeout=2.0, server_time=False)
    quota = {"limits": [{"name": "inflight", "metric": "concurrency", "limit": 5}]}
    r = rig(policy(quota), store, clock)
    release = asyncio.Event()

    async def hang(call: Call) -> AsyncGenerator[Chunk, None]:
        yield Chunk(text="first")
        await release.wait()
        yield final(1, 1)

    r.layer = QuotaLayer(hang, quota=r.service, table=RouteTable.from_policy(policy(quota)))
    got_first = asyncio.Event()

    async def consume() -> None:
        async with aclosing(r.layer(tier_call(clock))) as stream:
            async for _ in stream:
                got_first.set()

    task = asyncio.ensure_future(consume())
    await got_first.wait()
    task.cancel()  # the caller goes away: the layer starts settling...
    await asyncio.sleep(0)
    task.cancel()  # ...and is cancelled again while it waits on Redis
    with pytest.raises(asyncio.CancelledError):
        await task
    await r.service.aclose()  # waits for the settle in flight, then closes the client
    fresh = RedisQuotaStore.from_url(redis_url, clock, prefix=prefix, timeout=2.0, server_time=False)
    try:
        service = QuotaService(r.service.policy, policy(quota).tiers, fresh, clock, QuotaSignals())
        (state,) = [s for s in await service.snapshot("t", "u", "free") if s.limit.name == "inflight"]
        assert (state.used, state.reserved) == (0, 0)
    finally:
        await fresh.aclose()


@dataclass
class HeldExtension:
    """A store whose extensions (a reserve of an id already reserved) wait until released: the
    caller can go away while one is on its way."""

    store: QuotaStore
    reserved: set[str] = field(default_factory=set)
    extending: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def reserve(self, tag: str, rid: str, *args: Any, **kw: Any) -> Any:
        if rid in self.reserved:
            self.extending.set()
            await self.go.wait()
        self.reserved.add(rid)
        return await self.store.reserve(tag, rid, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_cancelled_while_its_extension_is_on_the_way_is_charged_within_the_limit(
    quota_store: QuotaStore, clock: FakeClock, stream: bool
) -> None:
    """The answer's usage outgrew the reservation; the caller left (or its deadline passed) while the
    extension waited on the store: the settle charged the whole usage, far past the limit."""
    quota = {
        "limits": [{"name": "tok", "metric": "tokens", "window": "day", "limit": 40}],
        "output_tokens_estimate": 8,
    }
    held = HeldExtension(quota_store)
    answer = Chunk(text=WORDS * 100, finish_reason=FinishReason.STOP, usage=Usage(11, 4_000))
    r = rig(policy(quota), held, clock, chunks=[Chunk(text=WORDS), answer])  # type: ignore[arg-type]
    call = tier_call(clock, stream=stream)
    task = asyncio.ensure_future(r.run(call))
    await held.extending.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await r.service.releases.idle()
    used, reserved = await r.used("tok")
    assert (used, reserved) == (11 + CHUNK_TOKENS, 0)  # the prompt and the chunk it received
    assert call.record.usage.total_tokens == used  # what the ledger and the metrics record


@pytest.mark.parametrize("end", ["finished", "cut short"])
async def test_a_fractional_cost_is_charged_the_micro_dollars_the_summary_reports(
    quota_store: QuotaStore, clock: FakeClock, end: str
) -> None:
    """gpt-4o-mini prices: 17 prompt and 6 output tokens cost 6.15 micro-dollars. The summary (and
    the Embed answer, GetUsage) round to the nearest micro-dollar, 6; the settle rounded up, 7, so a
    tenant's USD bucket drifted above the sum of its calls' cost_micros by up to one per call."""
    from sidecar.api.convert import micros

    p = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                "mini": {
                    "provider": "echo",
                    "model": "mini",
                    "price": {"input_per_million": 0.15, "output_per_million": 0.6},
                }
            },
            "routes": {"main": {"deployments": ["mini"]}},
            "quota": {"limits": [{"name": "usd", "metric": "usd", "window": "day", "limit": 1}]},
        }
    )
    chunks = [Chunk(text=WORDS), final(17, 6)] if end == "finished" else [Chunk(text=WORDS)]
    r = rig(p, quota_store, clock, chunks=chunks)
    if end == "cut short":
        r.inner.error = StreamInterruptedError("cut")
    call = tier_call(clock, tier="enterprise")
    with contextlib.suppress(StreamInterruptedError):
        await r.run(call)
    assert call.record.cost_usd * 1e6 % 1 != 0  # a fractional micro-dollar
    used, reserved = await r.used("usd")
    assert (round(used * 1e6), reserved) == (micros(call.record.cost_usd), 0)


async def test_a_stream_of_thinking_is_held_to_the_budget_like_text(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    """A reasoning model's thinking deltas are output: the meter counted only `text`, so a stream of
    thinking ran past the budget and, its usage arriving beyond the reservation, was charged only
    the reservation (160 tokens delivered under a 61-token limit)."""
    quota = {
        "limits": [{"name": "tok", "metric": "tokens", "window": "day", "limit": 61}],
        "output_tokens_estimate": 8,
        "extension_tokens": 6,
    }
    r = rig(policy(quota), quota_store, clock, chunks=[Chunk(thinking=WORDS)] * 40 + [final(9, 160)])
    delivered = []
    with pytest.raises(QuotaExceededError) as info:
        async with aclosing(r.layer(tier_call(clock))) as stream:
            async for chunk in stream:
                delivered.append(chunk.thinking)
    prompt = 3 + 4 + count_tokens("hello there")
    output = sum(count_tokens(t) for t in delivered)
    assert await r.used("tok") == (prompt + output, 0) and prompt + output <= 61
    assert info.value.metadata["completionTokens"] == str(output)


async def test_a_unary_tool_call_beyond_the_budget_is_refused_like_text(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    """A unary answer that does not fit is refused and only its prompt charged; one made of tool
    calls (no text) was delivered whole and charged the reservation."""
    quota = {
        "limits": [{"name": "tok", "metric": "tokens", "window": "day", "limit": 40}],
        "output_tokens_estimate": 8,
    }
    call = ToolCallDelta(0, "call_1", "lookup", '{"q": "' + WORDS * 300 + '"}')
    answer = Chunk(tool_calls=(call,), finish_reason=FinishReason.TOOL_CALLS, usage=Usage(11, 1_200))
    r = rig(policy(quota), quota_store, clock, chunks=[answer])
    with pytest.raises(QuotaExceededError) as info:
        await r.run(tier_call(clock, stream=False))
    assert info.value.metadata["completionTokens"] == "0"
    assert await r.used("tok") == (11, 0)


async def test_a_usage_correction_beyond_the_budget_is_recorded_as_it_was_charged(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    """The provider counted more than the sidecar (a few prompt tokens more, or an upstream's
    garbage) and the budget could not grow: the call was charged what the reservation covers (17
    tokens here) while its summary, the ledger and the metrics recorded the provider's count (509;
    on a real cluster near a 3,000-token limit the ledger held 3,002, and callers of an upstream
    claiming 4e9 tokens were told and billed $2,400 a call that the quota never charged)."""
    from sidecar.api.convert import micros

    quota = {
        "limits": [
            {"name": "tok", "metric": "tokens", "window": "day", "limit": 30},
            {"name": "usd", "metric": "usd", "window": "day", "limit": 100},
        ],
        "output_tokens_estimate": 8,
        "extension_tokens": 6,
    }
    r = rig(policy(quota), quota_store, clock, chunks=[Chunk(text=WORDS), final(9, 500)])
    call = tier_call(clock)
    assert await r.run(call) == WORDS
    used, reserved = await r.used("tok")
    assert reserved == 0 and used <= 30
    assert call.record.usage.total_tokens == used
    assert micros(call.record.cost_usd) == round((await r.used("usd"))[0] * 1e6)


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_schema_retry_rejected_is_held_to_the_budget(
    quota_store: QuotaStore, clock: FakeClock, stream: bool
) -> None:
    """The first deployment's answer failed its format check (300 output tokens, its cost the
    call's), the second answered briefly. The reservation and its extensions counted only the answer
    the caller got, but the settle charged both: 319 tokens in a 100-token bucket, past the limit."""
    quota = {
        "limits": [
            {"name": "tok", "metric": "tokens", "window": "day", "limit": 100},
            {"name": "usd", "metric": "usd", "window": "day", "limit": 100},
        ],
        "output_tokens_estimate": 8,
    }
    answer = [Chunk(text="ok", finish_reason=FinishReason.STOP, usage=Usage(9, 1))]
    r = rig(policy(quota), quota_store, clock, chunks=answer, rejected=Usage(9, 300))
    call = tier_call(clock, stream=stream)
    with contextlib.suppress(QuotaExceededError):
        await r.run(call)
    used, reserved = await r.used("tok")
    assert reserved == 0 and used <= 100
    assert call.record.usage.total_tokens == used  # what the ledger and the metrics record


@pytest.mark.parametrize("metric", ["tokens", "usd"])
async def test_a_rejected_answer_whose_retry_failed_is_charged_within_the_budget(
    quota_store: QuotaStore, clock: FakeClock, metric: str
) -> None:
    """schema_retry rejected a 300-token answer and the retry deployment failed before answering:
    the call is charged the rejected answer (it was produced), but no more than its reservation; the
    settle charged all 309 tokens in a 100-token bucket ($0.609 in a $0.1 one)."""
    from sidecar.api.convert import micros

    limit = 100 if metric == "tokens" else 0.1
    quota = {
        "limits": [{"name": "lim", "metric": metric, "window": "day", "limit": limit}],
        "output_tokens_estimate": 8,
    }
    table = RouteTable.from_policy(policy(quota))

    async def rejected_then_failed(call: Call) -> AsyncGenerator[Chunk, None]:
        call.record.answer_rejected(table.resolve(call.model).targets[0], Usage(9, 300))
        raise ProvidersUnavailableError("the retry deployment is down")
        yield Chunk()  # pragma: no cover (a generator)

    r = rig(policy(quota), quota_store, clock)
    r.layer = QuotaLayer(rejected_then_failed, quota=r.service, table=table)
    call = tier_call(clock, stream=False)
    with pytest.raises(ProvidersUnavailableError):
        await r.run(call)
    used, reserved = await r.used("lim")
    assert reserved == 0 and 0 < used <= limit
    recorded = call.record.usage.total_tokens if metric == "tokens" else micros(call.record.cost_usd) / 1e6
    assert recorded == pytest.approx(used)


async def test_prompt_cache_writes_are_priced_into_the_budget(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    """Anthropic bills prompt tokens written to its cache at 1.25 x input (here 10 x, to show it).
    The meter priced the answer's usage without them, so its extension covered less than the settle
    then charged (the record's cost): $0.0165 in a $0.012 bucket."""
    p = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                "claude": {
                    "provider": "echo",
                    "model": "claude",
                    "price": {
                        "input_per_million": 100,
                        "output_per_million": 200,
                        "cache_write_per_million": 1000,
                    },
                }
            },
            "routes": {"main": {"deployments": ["claude"]}},
            "quota": {
                "limits": [{"name": "usd", "metric": "usd", "window": "day", "limit": 0.012}],
                "output_tokens_estimate": 8,
            },
        }
    )
    written = Usage(prompt_tokens=20, completion_tokens=5, cache_write_tokens=15)
    r = rig(
        p,
        quota_store,
        clock,
        chunks=[Chunk(text=WORDS), Chunk(finish_reason=FinishReason.STOP, usage=written)],
    )
    call = tier_call(clock, tier="enterprise")
    await r.run(call)
    used, reserved = await r.used("usd")
    assert reserved == 0 and used <= 0.012
    assert round(used * 1e6) == round(call.record.cost_usd * 1e6)


class ExtensionsFail(MemoryQuotaStore):
    """The store answers a call's first reserve, then fails every extension (it went away mid-call)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.reserves = 0

    async def reserve(self, tag: str, rid: str, charges: Any, **kw: Any) -> Any:
        self.reserves += 1
        if self.reserves > 1:
            raise QuotaStoreError("quota store Redis: unreachable", kind="unavailable")
        return await super().reserve(tag, rid, charges, **kw)


async def test_a_failed_extension_under_fail_open_is_uncounted_but_bounded(clock: FakeClock) -> None:
    limits = [{"name": "tok", "metric": "tokens", "window": "day", "limit": 1000}]
    p = policy({"limits": limits, "output_tokens_estimate": 8, "extension_tokens": 1})
    r = rig(p, ExtensionsFail(clock), clock, chunks=[Chunk(text=WORDS) for _ in range(20)])
    call = tier_call(clock)
    prompt = TokenEstimator().prompt(call.messages, call.params)
    received = []
    with pytest.raises(QuotaUnavailableError) as info:
        async with aclosing(r.layer(call)) as stream:
            async for chunk in stream:
                received.append(chunk.text)
    assert info.value.metadata["limit"] == "tok"
    # 8 tokens reserved (two chunks), then 8 more uncounted (two chunks, the second past its headroom)
    assert len(received) == 3
    assert await r.used("tok") == (prompt + 8, 0)  # what the store held: the rest was served uncounted


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
async def test_a_final_usage_the_store_cannot_count_ends_a_delivered_stream_well(
    clock: FakeClock, mode: str
) -> None:
    """Every word was delivered; only the provider's final count is past the reservation when the
    store fails: the stream ends as answered (its usage as the provider reports it), charged what
    the store held, not with an error after its whole answer."""
    limits = [{"name": "tok", "metric": "tokens", "window": "day", "limit": 1000}]
    p = policy({"limits": limits, "output_tokens_estimate": 8, "on_store_error": mode})
    r = rig(p, ExtensionsFail(clock), clock, chunks=[Chunk(text=WORDS), final(30, 500)])
    call = tier_call(clock)
    prompt = TokenEstimator().prompt(call.messages, call.params)
    assert await r.run(call) == WORDS
    assert call.record.usage == Usage(30, 500)
    assert await r.used("tok") == (prompt + 8, 0)
