"""CacheLayer around a scripted inner handler, on the bounded memory store and a fake clock."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import pytest

from sidecar.cache.answer import CachedAnswer
from sidecar.cache.key import CacheScope
from sidecar.cache.store import AiocacheStore
from sidecar.config.cache import CacheSettings
from sidecar.config.schema import Policy
from sidecar.core.errors import StreamInterruptedError
from sidecar.core.layer import collect
from sidecar.core.types import Call, Chunk, FinishReason, GenerationParams, Price, Target, Usage
from sidecar.pipeline.cache import CacheLayer
from sidecar.routing.table import RouteTable
from tests.conftest import FakeClock
from tests.support.calls import make_call

TARGET = Target("main", "d", "echo", "m", Price(1.0, 2.0))


def policy(**cache: Any) -> Policy:
    return Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {"d": {"provider": "echo", "model": "m"}},
            "routes": {"main": {"deployments": ["d"], "cache": cache}, "other": {"deployments": ["d"]}},
        }
    )


class Inner:
    """Yields `texts` as chunks then a final one (or raises `error` after them); counts calls."""

    def __init__(self, texts: tuple[str, ...] = ("Hel", "lo", "!"), error: Exception | None = None) -> None:
        self.texts, self.error, self.calls = texts, error, 0
        self.finish = FinishReason.STOP

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls += 1
        call.record.served_by(TARGET)
        for text in self.texts:
            yield Chunk(text=text)
        if self.error is not None:
            raise self.error
        call.record.upstream_finished(self.finish, Usage(7, 3))
        yield Chunk(finish_reason=self.finish, usage=Usage(7, 3))


def cache_layer(
    inner: Inner,
    store: Any,
    clock: FakeClock,
    route_cache: Any = None,
    semantic_inside: bool = False,
    **settings: Any,
) -> CacheLayer:
    return CacheLayer(
        inner,
        store=store,
        settings=CacheSettings.model_validate({"enabled": True, **settings}),
        table=RouteTable.from_policy(policy(**(route_cache or {}))),
        clock=clock,
        semantic_inside=semantic_inside,
    )


def call(clock: FakeClock, temperature: float | None = 0.0, **changes: Any) -> Call:
    base = make_call(clock, text="say hello")
    return dataclasses.replace(base, params=GenerationParams(temperature=temperature), **changes)


async def chunks(layer: CacheLayer, c: Call) -> list[Chunk]:
    async with aclosing(layer(c)) as stream:
        return [chunk async for chunk in stream]


async def test_a_repeated_call_is_served_from_the_cache(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock)
    first_call, second_call = call(clock), call(clock)
    first = await chunks(layer, first_call)
    second = await chunks(layer, second_call)
    assert inner.calls == 1
    assert [c.text for c in second] == [c.text for c in first] == ["Hel", "lo", "!", ""]
    assert second[-1].finish_reason is FinishReason.STOP
    r = second_call.record
    assert r.cache_hit and r.cost_usd == 0.0 and r.target == dataclasses.replace(TARGET, price=Price())
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.cached_tokens) == (7, 3, 7)
    assert not first_call.record.cache_hit and first_call.record.cost_usd > 0


async def test_sampling_is_not_cached_unless_the_route_says_so(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock)
    for temperature in (0.7, 0.7, None, None):
        await collect(layer, call(clock, temperature))
    assert inner.calls == 4
    forced = cache_layer(inner, memory_store, clock, {"even_when_sampling": True})
    for _ in range(2):
        await collect(forced, call(clock, 0.7))
    assert inner.calls == 5


async def test_bypass_disabled_route_and_disabled_cache(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock)
    await collect(layer, call(clock))
    await collect(layer, call(clock, cache_bypass=True))
    assert inner.calls == 2
    for off in (cache_layer(inner, memory_store, clock, {"enabled": False}),
                cache_layer(inner, memory_store, clock, enabled=False),
                cache_layer(inner, None, clock)):  # fmt: skip
        await collect(off, call(clock))
    assert inner.calls == 5


async def test_never_across_tenants_and_per_user_by_default(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock)
    await collect(layer, call(clock))
    await collect(layer, call(clock, tenant_id="other"))
    await collect(layer, call(clock, user_id="someone-else"))
    assert inner.calls == 3
    await collect(layer, call(clock, user_id="someone-else"))
    assert inner.calls == 3


async def test_tenant_scope_shares_between_users_not_tenants(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock, scope="tenant")
    await collect(layer, call(clock))
    await collect(layer, call(clock, user_id="someone-else"))
    assert inner.calls == 1
    await collect(layer, call(clock, tenant_id="other"))
    assert inner.calls == 2


async def test_the_persona_and_route_are_part_of_the_key(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock)
    await collect(layer, call(clock))
    c = call(clock)
    c.record.persona_applied("mr-blue", 0)
    await collect(layer, c)
    await collect(layer, call(clock, model="other"))
    await collect(layer, call(clock, model="main"))  # the default route, named: the same as ""
    assert inner.calls == 3


async def test_entries_expire_on_the_injected_clock(clock: FakeClock, memory_store: AiocacheStore) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock, {"ttl_seconds": 60})
    await collect(layer, call(clock))
    clock.advance(59)
    await collect(layer, call(clock))
    assert inner.calls == 1
    clock.advance(2)
    await collect(layer, call(clock))
    assert inner.calls == 2


async def test_failed_and_interrupted_answers_are_not_stored(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    failing = Inner(error=StreamInterruptedError("upstream dropped"))
    layer = cache_layer(failing, memory_store, clock)
    with pytest.raises(StreamInterruptedError):
        await collect(layer, call(clock))
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock)
    async with aclosing(layer(call(clock))) as stream:
        assert (await anext(stream)).text == "Hel"  # the caller goes away after one chunk
    await collect(layer, call(clock))
    await collect(layer, call(clock))
    assert inner.calls == 2  # the first was cut short and not stored; the second was


async def test_a_content_filtered_answer_is_not_stored(clock: FakeClock, memory_store: AiocacheStore) -> None:
    inner = Inner()
    inner.finish = FinishReason.CONTENT_FILTER
    layer = cache_layer(inner, memory_store, clock)
    await collect(layer, call(clock))
    await collect(layer, call(clock))
    assert inner.calls == 2


@pytest.mark.parametrize("texts", [(), ("",), (" ", "\n\t ")])
async def test_an_empty_or_blank_answer_is_not_stored(
    clock: FakeClock, memory_store: AiocacheStore, texts: tuple[str, ...]
) -> None:
    """A model that answered nothing (a STOP with no text: a degenerate sample, a provider's silent
    filter) is passed on, not pinned for the entry's whole TTL for everyone asking the same."""
    inner = Inner(texts=texts)
    layer = cache_layer(inner, memory_store, clock)
    await collect(layer, call(clock))
    await collect(layer, call(clock))
    assert inner.calls == 2


async def test_oversized_answers_are_not_stored(clock: FakeClock, memory_store: AiocacheStore) -> None:
    inner = Inner(texts=("x" * 1000,))
    layer = cache_layer(inner, memory_store, clock, max_entry_bytes=512)
    await collect(layer, call(clock))
    await collect(layer, call(clock))
    assert inner.calls == 2


class BrokenStore:
    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("cache down")

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise ConnectionError("cache down")

    async def aclose(self) -> None:
        pass


async def test_a_broken_store_is_a_miss_not_an_error(clock: FakeClock) -> None:
    inner = Inner()
    layer = cache_layer(inner, BrokenStore(), clock)
    text, final = await collect(layer, call(clock))
    assert text == "Hello!" and final.finish_reason is FinishReason.STOP and inner.calls == 1


async def test_garbage_or_foreign_entries_are_ignored(clock: FakeClock, memory_store: AiocacheStore) -> None:
    """Even an entry of another tenant under this call's key (a collision) is never served."""
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock)
    plan = layer._plan(call(clock))
    assert plan is not None
    await memory_store.set(plan.key, b"{not json", 60)
    await collect(layer, call(clock))
    foreign = CachedAnswer(CacheScope("other", "u"), ("secret",), FinishReason.STOP, Usage(1, 1), None, 1e12)
    await memory_store.set(plan.key, foreign.encode(), 60)
    text, _ = await collect(layer, call(clock))
    assert text == "Hello!" and inner.calls == 2


async def test_the_memory_store_keeps_at_most_max_bytes_of_answers() -> None:
    """A count alone let 10,000 answers of up to 256 KiB each (2.5 GB) into a sidecar whose container
    may have 256 MiB: the answers' bytes are bounded too, the oldest going first."""
    store = AiocacheStore.memory("bytes", timeout=1.0, max_entries=1000, max_bytes=10_000)
    try:
        for i in range(5):
            await store.set(f"k{i}", bytes(4_000), 60)
        assert [await store.get(f"k{i}") is not None for i in range(5)] == [False, False, False, True, True]
        assert store.bytes_held == 8_000
        await store.set("k3", b"small", 60)  # a rewrite counts its new size, not both
        assert store.bytes_held == 4_005
        await store.set("huge", bytes(10_001), 60)  # larger than the whole bound: not kept
        assert await store.get("huge") is None and store.bytes_held == 4_005
    finally:
        await store.aclose()


async def test_the_memory_store_keeps_at_most_max_entries() -> None:
    store = AiocacheStore.memory("bounded", timeout=1.0, max_entries=3, max_bytes=1 << 20)
    try:
        for i in range(5):
            await store.set(f"k{i}", b"v", 60)
        assert [await store.get(f"k{i}") for i in range(5)] == [None, None, b"v", b"v", b"v"]
    finally:
        await store.aclose()


async def test_a_variant_narrowed_to_another_deployment_is_not_served_the_other_variants_answer(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    """An experiment comparing two models on one route: with answers shared in the tenant, the
    variant served by the small model must not be answered from what the big one wrote (its report
    would count the big model's answers as its own)."""
    from sidecar.core.plan import plan_of
    from sidecar.experiments.book import ExperimentBook
    from sidecar.pipeline.experiment import ExperimentLayer

    split = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                "big": {"provider": "echo", "model": "m1"},
                "small": {"provider": "echo", "model": "m2"},
            },
            "routes": {"main": {"deployments": ["big", "small"]}},
            "experiments": {
                "model": {
                    "route": "main",
                    "control": "big",
                    "variants": {"big": {"deployments": ["big"]}, "small": {"deployments": ["small"]}},
                }
            },
        }
    )
    table, inner = RouteTable.from_policy(split), Inner()
    cached = CacheLayer(
        inner,
        store=memory_store,
        settings=CacheSettings.model_validate({"enabled": True, "scope": "tenant"}),
        table=table,
        clock=clock,
    )
    layer = ExperimentLayer(cached, book=ExperimentBook(split.experiments, {}))

    def as_variant(user: str, variant: str) -> Call:
        c = call(clock, user_id=user, experiment_variant=variant)
        return dataclasses.replace(c, plan=plan_of(c, table))

    await collect(layer, as_variant("ann", "big"))
    other = as_variant("bob", "small")
    await collect(layer, other)
    assert inner.calls == 2 and not other.record.cache_hit
    again = as_variant("cid", "big")
    await collect(layer, again)
    assert again.record.cache_hit and inner.calls == 2


@pytest.mark.parametrize(
    ("changes", "route_cache"),
    [
        ({}, None),
        ({"cache_bypass": True}, None),
        ({}, {"enabled": False}),
        ({"temperature": None}, None),
    ],
    ids=["a miss", "the caller bypasses the cache", "the route has no cache", "a sampled call"],
)
async def test_a_cache_only_call_never_reaches_the_layers_inside(
    clock: FakeClock, memory_store: AiocacheStore, changes: dict[str, Any], route_cache: Any
) -> None:
    """The quota layer could not cover a provider's answer: a hit or nothing, however it is planned."""
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock, route_cache=route_cache)
    assert await chunks(layer, call(clock, cache_only=True, **changes)) == []
    assert inner.calls == 0


async def test_a_cache_only_call_gets_a_hit(clock: FakeClock, memory_store: AiocacheStore) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock)
    first = await chunks(layer, call(clock))
    hit_call = call(clock, cache_only=True)
    assert [c.text for c in await chunks(layer, hit_call)] == [c.text for c in first]
    assert inner.calls == 1 and hit_call.record.cache_hit


async def test_a_cache_only_miss_goes_on_only_to_a_semantic_cache_inside(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    inner = Inner()
    layer = cache_layer(inner, memory_store, clock, semantic_inside=True)
    assert await chunks(layer, call(clock, cache_only=True)) != []  # here the inner one answers
    assert inner.calls == 1
