"""The semantic cache: answer a paraphrase of a question answered before, within one tenant.

Sits right inside the exact response cache, so it runs only after an exact miss. A call is looked
up when its route enables `cache.semantic`, the caller did not bypass the cache, it is
deterministic (temperature 0) or its route caches regardless, and its last message is the user's.
The last user message is embedded (through an embedding route) and compared with the stored
questions of its partition (sidecar/cache/semantic.py: tenant, scope, persona, route, parameters
and every earlier message must match exactly). The best similarity decides: at or above the
route's threshold a hit (the stored answer is replayed, cost 0, the outcome carries the similarity
and the entry's age), within the near-miss margin below it a near-miss, else a miss; the last two
run the call and store its answer when it completed. An embedding or store failure is a miss,
logged and counted, never the call's error. A call marked `cache_only` by the quota layer (its token
or dollar estimate did not fit; a hit costs neither, the embedding is the operator's) is answered by
a hit or not at all: it never reaches the layers inside. A call the quota narrowed to its route's
`budget_fallback` searches the route's own partition first (its answers are free; only a hit there
is counted), then the fallback's, where a miss's answer is stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from sidecar.authz.scope import caller_scope
from sidecar.cache.answer import CachedAnswer, Passing
from sidecar.cache.key import CacheScope, cache_scope, narrowed_deployments
from sidecar.cache.semantic_key import Partition, split_prompt
from sidecar.config.cache import CacheSettings, SemanticCacheOptions
from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import RouteNotFoundError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.plan import plan_of
from sidecar.core.types import Call, Chunk
from sidecar.routing.table import RouteTable
from sidecar.telemetry.tracing import Tracing

if TYPE_CHECKING:  # numpy and the stores come with the `embeddings` extra, built only when configured
    from sidecar.cache.semantic import SemanticMatch, SemanticStore, Vector

_log = logging.getLogger("sidecar.cache.semantic")

EmbedText = Callable[[str, str, str, Deadline], Awaitable[Any]]
"""(tenant, embedding route, text, deadline) -> the text's embedding: `.vector` (a unit-length float32
numpy array) and `.model` (the identity of the model that made it; embeddings.service.PromptVector)."""


def _ignore(*_: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class SemanticObserver:
    on_lookup: Callable[[str], None] = _ignore  # hit, near_miss, miss, error
    on_similarity: Callable[[float], None] = _ignore  # the best similarity found, hit or not
    on_store_error: Callable[[str], None] = _ignore  # the operation: get or set


@dataclass(frozen=True, slots=True)
class _Plan:
    text: str
    partition: Partition
    scope: CacheScope
    options: SemanticCacheOptions
    embedding_route: str
    ttl: float
    # the route's own partition when the quota narrowed the call to its budget fallback (a cost
    # decision, not the caller's): the route's answers are free from the cache, searched first
    route_partition: Partition | None = None


class SemanticCacheLayer:
    def __init__(
        self,
        inner: Handler,
        *,
        store: SemanticStore | None,
        embed: EmbedText,
        settings: CacheSettings,
        default_embedding_route: str,
        table: RouteTable,
        clock: Clock,
        observer: SemanticObserver | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._inner, self._store, self._embed, self._settings = inner, store, embed, settings
        self._default_route, self._table, self._clock = default_embedding_route, table, clock
        self._observer = observer or SemanticObserver()
        self._tracing = tracing or Tracing.disabled()

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        """A `cache_only` call (the quota could not cover a provider's answer) gets a hit or nothing:
        it never goes on to the layers inside."""
        plan = self._plan(call)
        if plan is None and call.cache_only:
            return _nothing()
        if plan is None:
            return self._inner(call)
        return self._cached(call, plan)

    def _plan(self, call: Call) -> _Plan | None:
        if self._store is None or call.cache_bypass:
            return None
        try:
            resolved = plan_of(call, self._table)
        except RouteNotFoundError:
            return None
        route = resolved.route
        options = route.config.cache
        sem = options.semantic
        if sem is None or not sem.enabled:
            return None
        if call.params.temperature != 0.0 and not options.even_when_sampling:
            return None
        scope = cache_scope(
            caller_scope(call.tenant_id, call.caller),  # a call naming no tenant: its credential's
            call.user_id,
            scope=options.scope or self._settings.scope,
            user_key=route.config.user_key,
        )
        split = partial(
            split_prompt, scope, persona=call.record.persona, route=route.alias, params=call.params,
            messages=call.messages,
        )  # fmt: skip
        found = split(deployments=narrowed_deployments(resolved, call.budget_deployment))
        if found is None:
            return None
        text, partition = found
        wide = split(deployments=narrowed_deployments(resolved)) if call.budget_deployment else None
        route_partition = wide[1] if wide is not None and wide[1] != partition else None
        ttl = options.ttl_seconds or self._settings.ttl_seconds
        embedding_route = sem.embedding_route or self._default_route
        return _Plan(text, partition, scope, sem, embedding_route, ttl, route_partition)

    async def _cached(self, call: Call, plan: _Plan) -> AsyncGenerator[Chunk, None]:
        with self._tracing.span("sidecar.cache.semantic.lookup") as span:
            found = await self._vector(call, plan)
            vector, plan = (None, plan) if found is None else found
            match = None if vector is None else await self._find(call, plan, vector)
            if span is not None:
                span.set_attribute("sidecar.cache.hit", match is not None)
                if match is not None:
                    span.set_attribute("sidecar.cache.similarity", match[0].similarity)
        if match is not None:
            for chunk in self._replay(call, plan, match):
                yield chunk
            return
        if call.cache_only:  # a miss: no provider may be asked, the quota layer outside refuses it
            return
        passing = Passing()
        async with inner_stream(self._inner, call) as stream, aclosing(passing.pass_on(stream)) as chunks:
            async for chunk in chunks:
                yield chunk
        if passing.final is not None:
            yield passing.final  # stored once taken, like the exact cache: never one the quota refused
        if vector is not None and (final := passing.storable) is not None:
            await self._save(call, plan, vector, passing.texts, final)

    async def _vector(self, call: Call, plan: _Plan) -> tuple[Vector, _Plan] | None:
        """The prompt's vector and the plan narrowed to the partition of the model that made it (an
        embedding route may fall back to another model, whose vectors are not comparable)."""
        try:
            async with self._clock.timeout(self._settings.semantic.embed_timeout_seconds):
                embedded = await self._embed(call.tenant_id, plan.embedding_route, plan.text, call.deadline)
            vector: Vector = embedded.vector
            wide = plan.route_partition
            return vector, replace(
                plan,
                partition=plan.partition.of_model(embedded.model),
                route_partition=None if wide is None else wide.of_model(embedded.model),
            )
        except Exception as exc:  # the embedding route is down or slow (TimeoutError): the call goes on
            _log.warning("semantic cache: embedding failed: %r", exc, extra={"request_id": call.request_id})
            self._observer.on_lookup("error")
            return None

    async def _find(
        self, call: Call, plan: _Plan, vector: Vector
    ) -> tuple[SemanticMatch, CachedAnswer] | None:
        """The route's own answer (a call the budget narrowed: only its hit is counted, the call's
        partition then decides the lookup's outcome), else the call's partition's."""
        if plan.route_partition is not None:
            hit = await self._search(call, plan, vector, plan.route_partition, counted=False)
            if hit is not None:
                return hit
        return await self._search(call, plan, vector, plan.partition, counted=True)

    async def _search(
        self, call: Call, plan: _Plan, vector: Vector, partition: Partition, *, counted: bool
    ) -> tuple[SemanticMatch, CachedAnswer] | None:
        """The best match in `partition` at the threshold, else None. `counted`: its outcome is
        reported whatever it is (else only a hit)."""
        assert self._store is not None
        try:
            async with self._clock.timeout(self._settings.semantic.timeout_seconds):
                found = await self._store.search(
                    partition, vector, self._clock.wall(), touch_from=plan.options.threshold
                )
        except Exception as exc:  # TimeoutError included: a slow store is a miss
            _log.warning("semantic cache lookup failed: %r", exc, extra={"request_id": call.request_id})
            self._observer.on_store_error("get")
            if counted:
                self._observer.on_lookup("error")
            return None
        if found is None:
            if counted:
                self._observer.on_lookup("miss")
            return None
        threshold = plan.options.threshold
        reached = found.similarity >= threshold  # a NaN similarity is below every threshold
        answer = self._decode(found, plan) if reached else None
        if counted or answer is not None:
            near = found.similarity >= threshold - self._settings.semantic.near_miss_margin
            self._observer.on_similarity(found.similarity)
            self._observer.on_lookup(
                "hit" if answer is not None else "miss" if reached or not near else "near_miss"
            )
        return None if answer is None else (found, answer)

    def _decode(self, found: SemanticMatch, plan: _Plan) -> CachedAnswer | None:
        try:
            answer = CachedAnswer.decode(found.answer)
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        if answer.scope != plan.scope or answer.expires_at <= self._clock.wall():
            return None  # never another tenant's (or user's) answer, even on a colliding partition
        return answer

    def _replay(self, call: Call, plan: _Plan, hit: tuple[SemanticMatch, CachedAnswer]) -> list[Chunk]:
        match, answer = hit
        record = call.record
        record.answered_from_cache(answer.target, answer.finish_reason, answer.usage)
        record.semantic_match(match.similarity, max(0.0, self._clock.wall() - match.created_at))
        chunks = [Chunk(text=t) for t in answer.texts]
        return [*chunks, Chunk(finish_reason=answer.finish_reason, usage=record.usage)]

    async def _save(self, call: Call, plan: _Plan, vector: Vector, texts: list[str], final: Chunk) -> None:
        assert self._store is not None and final.finish_reason is not None
        now = self._clock.wall()
        answer = CachedAnswer(
            scope=plan.scope,
            texts=tuple(texts),
            finish_reason=final.finish_reason,
            usage=final.usage or call.record.usage,
            target=call.record.target,
            expires_at=now + plan.ttl,
            created_at=now,
        )
        data = answer.encode()
        if len(data) > self._settings.max_entry_bytes:
            return
        try:
            async with self._clock.timeout(self._settings.semantic.timeout_seconds):
                await self._store.add(
                    plan.partition, vector, data, now=now, ttl=plan.ttl,
                    max_entries=plan.options.max_entries,
                )  # fmt: skip
        except Exception as exc:
            _log.warning("semantic cache store failed: %r", exc, extra={"request_id": call.request_id})
            self._observer.on_store_error("set")


async def _nothing() -> AsyncGenerator[Chunk, None]:
    """The answer of a cache-only call the semantic cache cannot answer: no chunk at all."""
    none: tuple[Chunk, ...] = ()
    for chunk in none:
        yield chunk
