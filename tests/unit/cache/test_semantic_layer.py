"""SemanticCacheLayer around a scripted inner handler: hit, near-miss, miss, tenants, failures.

The embedding function here maps each question to a chosen unit vector, so the similarities are
exact and the paths are decided by the layer alone; the local model is exercised in
tests/unit/embeddings/test_service.py and the benchmark.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import numpy as np
import pytest

from sidecar.cache.semantic import MemorySemanticStore
from sidecar.config.cache import CacheSettings
from sidecar.config.schema import Policy
from sidecar.core.clock import Deadline
from sidecar.core.layer import collect
from sidecar.core.types import Call, GenerationParams, Image, Message, Role, ToolCall
from sidecar.embeddings.service import PromptVector
from sidecar.pipeline.semantic import SemanticCacheLayer, SemanticObserver
from sidecar.routing.table import RouteTable
from sidecar.stores.errors import StoreUnavailableError
from sidecar.telemetry.tracing import Tracing
from tests.conftest import FakeClock
from tests.support.calls import make_call
from tests.unit.cache.test_layer import Inner


def angle(degrees: float) -> np.ndarray[Any, Any]:
    """A unit vector at `degrees` from the x axis: its similarity to angle(0) is cos(degrees)."""
    r = np.radians(degrees)
    return np.array([np.cos(r), np.sin(r), 0.0], dtype=np.float32)


# similarity to "what is the capital of france": 1.0, 0.95, 0.87, 0.5
VECTORS = {
    "what is the capital of france": angle(0),
    "which city is france's capital": angle(np.degrees(np.arccos(0.95))),
    "what is the capital of spain": angle(np.degrees(np.arccos(0.87))),
    "how do I bake bread": angle(-60),  # 0.5 to france, about 0 to spain
}


class Embed:
    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.calls = error, 0
        self.model = "local"  # the model that embeds: another one's vectors are another partition

    async def __call__(self, tenant: str, route: str, text: str, deadline: Deadline) -> PromptVector:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return PromptVector(VECTORS[text], self.model)


class Seen:
    def __init__(self) -> None:
        self.lookups: list[str] = []
        self.errors: list[str] = []

    def observer(self) -> SemanticObserver:
        return SemanticObserver(on_lookup=self.lookups.append, on_store_error=self.errors.append)


def policy(semantic: dict[str, Any] | None) -> Policy:
    cache = {} if semantic is None else {"semantic": semantic}
    return Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {"d": {"provider": "echo", "model": "m"}},
            "routes": {"main": {"deployments": ["d"], "cache": cache}},
        }
    )


def layer(
    inner: Inner, clock: FakeClock, store: Any, embed: Any, seen: Seen, semantic: dict[str, Any] | None = None
) -> SemanticCacheLayer:
    return SemanticCacheLayer(
        inner,
        store=store,
        embed=embed,
        settings=CacheSettings.model_validate({"scope": "tenant", "semantic": {"near_miss_margin": 0.05}}),
        default_embedding_route="local",
        table=RouteTable.from_policy(
            policy(semantic if semantic is not None else {"enabled": True, "threshold": 0.9})
        ),
        clock=clock,
        observer=seen.observer(),
    )


def call(clock: FakeClock, text: str, tenant: str = "t1", **changes: Any) -> Call:
    base = make_call(clock, text=text)
    return dataclasses.replace(base, tenant_id=tenant, params=GenerationParams(temperature=0.0), **changes)


@pytest.fixture
def store() -> MemorySemanticStore:
    return MemorySemanticStore(max_entries=100)


async def test_a_paraphrase_is_a_hit_with_similarity_and_age(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)
    first = call(clock, "what is the capital of france")
    assert (await collect(sem, first))[0] == "Hello!"
    clock.advance(42)
    again = call(clock, "which city is france's capital")
    text, _ = await collect(sem, again)
    assert text == "Hello!" and inner.calls == 1
    r = again.record
    assert r.cache_hit and r.cost_usd == 0.0
    assert r.semantic_similarity == pytest.approx(0.95, abs=1e-4)
    assert r.semantic_age_seconds == pytest.approx(42)
    assert seen.lookups == ["miss", "hit"]
    assert not first.record.cache_hit and first.record.semantic_similarity is None


async def test_just_below_the_threshold_is_a_near_miss_and_far_is_a_miss(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)
    await collect(sem, call(clock, "what is the capital of france"))
    spain = call(clock, "what is the capital of spain")  # 0.87: within 0.05 below 0.9
    await collect(sem, spain)
    bread = call(clock, "how do I bake bread")  # 0.5
    await collect(sem, bread)
    assert inner.calls == 3 and not spain.record.cache_hit and not bread.record.cache_hit
    assert seen.lookups == ["miss", "near_miss", "miss"]


async def test_never_across_tenants(clock: FakeClock, store: MemorySemanticStore) -> None:
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)
    await collect(sem, call(clock, "what is the capital of france", tenant="acme"))
    other = call(clock, "what is the capital of france", tenant="globex")
    await collect(sem, other)
    assert inner.calls == 2 and not other.record.cache_hit
    assert seen.lookups == ["miss", "miss"]
    same = call(clock, "what is the capital of france", tenant="acme")
    await collect(sem, same)
    assert same.record.cache_hit and inner.calls == 2


async def test_a_different_system_prompt_is_another_partition(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)
    await collect(sem, call(clock, "what is the capital of france"))
    system = Message(Role.SYSTEM, "answer in French")
    other = call(clock, "what is the capital of france")
    other = dataclasses.replace(other, messages=(system, *other.messages))
    await collect(sem, other)
    assert inner.calls == 2 and not other.record.cache_hit


async def test_a_different_image_in_the_question_is_another_partition(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    """The same words about another picture are another question: only the text is embedded, so the
    images must part the partitions, or one user's picture is described to another."""
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)

    def about(picture: bytes) -> Call:
        base = call(clock, "what is the capital of france")
        question = Message(
            Role.USER, base.messages[-1].text, images=(Image(data=picture, mime_type="image/png"),)
        )
        return dataclasses.replace(base, messages=(question,))

    await collect(sem, about(b"first picture"))
    other = about(b"second picture")
    await collect(sem, other)
    assert inner.calls == 2 and not other.record.cache_hit
    same = about(b"first picture")
    await collect(sem, same)
    assert same.record.cache_hit and inner.calls == 2


async def test_earlier_tool_calls_and_their_results_part_the_partitions(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    """History is compared exactly, tool calls included: the same question after a tool call with
    other arguments is asked about something else."""
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)

    def after(city: str) -> Call:
        base = call(clock, "what is the capital of france")
        asked = Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "lookup", f'{{"city":"{city}"}}'),))
        result = Message(Role.TOOL, "found", tool_call_id="c1")
        return dataclasses.replace(base, messages=(asked, result, *base.messages))

    await collect(sem, after("Paris"))
    other = after("Lyon")
    await collect(sem, other)
    assert inner.calls == 2 and not other.record.cache_hit


async def test_off_unless_the_route_enables_it_and_bypass_skips_it(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    inner, seen, embed = Inner(), Seen(), Embed()
    off = layer(inner, clock, store, embed, seen, semantic={"enabled": False})
    for _ in range(2):
        await collect(off, call(clock, "what is the capital of france"))
    on = layer(inner, clock, store, embed, seen)
    await collect(on, call(clock, "what is the capital of france"))
    await collect(on, call(clock, "what is the capital of france", cache_bypass=True))
    sampling = dataclasses.replace(
        call(clock, "what is the capital of france"), params=GenerationParams(temperature=0.7)
    )
    await collect(on, sampling)
    assert inner.calls == 5 and embed.calls == 1 and seen.lookups == ["miss"]


async def test_an_embedding_failure_is_a_miss_not_an_error(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(error=RuntimeError("embedding route down")), seen)
    text, _ = await collect(sem, call(clock, "what is the capital of france"))
    assert text == "Hello!" and seen.lookups == ["error"] and len(store) == 0


async def test_an_interrupted_answer_is_not_stored(clock: FakeClock, store: MemorySemanticStore) -> None:
    seen = Seen()
    broken = Inner(error=RuntimeError("cut"))
    sem = layer(broken, clock, store, Embed(), seen)
    with pytest.raises(RuntimeError):
        await collect(sem, call(clock, "what is the capital of france"))
    assert len(store) == 0


async def test_entries_expire_with_the_ttl(clock: FakeClock, store: MemorySemanticStore) -> None:
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)
    await collect(sem, call(clock, "what is the capital of france"))
    clock.advance(3601)  # the default ttl_seconds is 3600
    late = call(clock, "what is the capital of france")
    await collect(sem, late)
    assert inner.calls == 2 and not late.record.cache_hit


async def test_a_slow_embedding_is_a_miss_after_its_timeout(store: MemorySemanticStore) -> None:
    clock = FakeClock(auto_advance=True)
    inner, seen = Inner(), Seen()

    async def never(tenant: str, route: str, text: str, deadline: Deadline) -> Any:
        await asyncio.Event().wait()

    sem = layer(inner, clock, store, never, seen)
    started = clock.monotonic()
    text, _ = await collect(sem, call(clock, "what is the capital of france"))
    assert text == "Hello!" and seen.lookups == ["error"] and inner.calls == 1
    assert clock.monotonic() - started == pytest.approx(2.0)  # embed_timeout_seconds


class DownStore:
    """A store whose every operation fails as an unreachable Redis does."""

    async def search(self, *args: Any) -> Any:
        raise StoreUnavailableError("Redis: unavailable (ConnectionError)")

    async def add(self, *args: Any, **kwargs: Any) -> None:
        raise StoreUnavailableError("Redis: unavailable (ConnectionError)")

    async def aclose(self) -> None:
        return None


async def test_a_store_that_is_down_is_a_miss_and_a_skipped_write(clock: FakeClock) -> None:
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, DownStore(), Embed(), seen)
    text, final = await collect(sem, call(clock, "what is the capital of france"))
    assert text == "Hello!" and final.finish_reason is not None
    assert seen.lookups == ["error"] and seen.errors == ["get", "set"]


async def test_the_lookup_span_carries_hit_and_similarity(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    layer_ = SemanticCacheLayer(
        Inner(),
        store=store,
        embed=Embed(),
        settings=CacheSettings(),
        default_embedding_route="local",
        table=RouteTable.from_policy(policy({"enabled": True, "threshold": 0.9})),
        clock=clock,
        tracing=Tracing(provider.get_tracer("test")),
    )
    await collect(layer_, call(clock, "what is the capital of france"))
    await collect(layer_, call(clock, "which city is france's capital"))
    spans = [s for s in exporter.get_finished_spans() if s.name == "sidecar.cache.semantic.lookup"]
    assert [s.attributes.get("sidecar.cache.hit") for s in spans] == [False, True]  # type: ignore[union-attr]
    assert spans[1].attributes["sidecar.cache.similarity"] == pytest.approx(0.95, abs=1e-4)  # type: ignore[index]


def test_a_call_narrowed_to_some_deployments_is_another_partition() -> None:
    from sidecar.cache.key import CacheScope
    from sidecar.cache.semantic_key import split_prompt

    def partition(deployments: tuple[str, ...]) -> object:
        split = split_prompt(
            CacheScope("t", ""), persona="", route="main", params=GenerationParams(temperature=0.0),
            messages=(Message(Role.USER, "hi"),), deployments=deployments,
        )  # fmt: skip
        assert split is not None
        return split[1]

    assert partition(()) != partition(("small",)) != partition(("big",))


async def test_a_vector_that_is_not_finite_is_never_a_hit(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    """A similarity that is not a number (an embedding upstream's overflowing vector) is below any
    threshold: it must not pass as a hit serving whatever answer the partition holds."""
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)
    await collect(sem, call(clock, "what is the capital of france"))
    VECTORS["poisoned"] = np.array([np.nan, 0.0, 0.0], dtype=np.float32)
    try:
        other = call(clock, "poisoned")
        await collect(sem, other)
    finally:
        del VECTORS["poisoned"]
    assert inner.calls == 2 and not other.record.cache_hit


async def test_an_answer_with_tool_calls_or_thinking_is_not_stored(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    """A stored answer keeps text only: one that called a tool (OpenAI's finish reason is "stop" for
    a call forced by tool_choice) or streamed thinking would be replayed without them."""
    from sidecar.core.types import Chunk, FinishReason, ToolCallDelta, Usage

    class Calls:
        calls = 0

        async def __call__(self, c: Call) -> Any:
            self.calls += 1
            yield (
                Chunk(thinking="hmm")
                if self.calls == 2
                else Chunk(tool_calls=(ToolCallDelta(0, "c1", "f", "{}"),))
            )
            yield Chunk(finish_reason=FinishReason.STOP, usage=Usage(3, 2))

    inner, seen = Calls(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)  # type: ignore[arg-type]
    for _ in range(3):
        await collect(sem, call(clock, "what is the capital of france"))
    assert inner.calls == 3 and len(store) == 0


async def test_vectors_of_another_model_are_another_partition(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    """An embedding route that falls back to another model: its vectors (here of another size) are
    not compared with the first model's, and neither model's entries stop the other's lookups."""
    inner, seen, embed = Inner(), Seen(), Embed()
    sem = layer(inner, clock, store, embed, seen)
    await collect(sem, call(clock, "what is the capital of france"))
    embed.model = "fallback"
    VECTORS["bigger"] = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    try:
        await collect(sem, call(clock, "bigger"))
    finally:
        del VECTORS["bigger"]
    embed.model = "local"
    again = call(clock, "which city is france's capital")
    await collect(sem, again)
    assert again.record.cache_hit and "error" not in seen.lookups


async def test_a_cache_only_call_gets_a_semantic_hit_or_nothing(
    clock: FakeClock, store: MemorySemanticStore
) -> None:
    """The quota layer could not cover a provider's answer (cache_only): a paraphrase answered
    before is served (it costs no tokens, like an exact hit); a miss, a failed embedding or a call
    the semantic cache may not answer never reaches the layers inside."""
    inner, seen = Inner(), Seen()
    sem = layer(inner, clock, store, Embed(), seen)
    await collect(sem, call(clock, "what is the capital of france"))
    hit = call(clock, "which city is france's capital", cache_only=True)
    assert (await collect(sem, hit))[0] == "Hello!" and hit.record.cache_hit
    for only in (
        call(clock, "how do I bake bread", cache_only=True),  # a miss
        call(clock, "what is the capital of france", cache_only=True, cache_bypass=True),
        dataclasses.replace(
            call(clock, "what is the capital of spain", cache_only=True),
            params=GenerationParams(temperature=1),
        ),
    ):
        assert [c async for c in sem(only)] == [] and not only.record.cache_hit
    failing = layer(inner, clock, store, Embed(StoreUnavailableError("down")), seen)
    assert [c async for c in failing(call(clock, "which city is france's capital", cache_only=True))] == []
    assert inner.calls == 1
