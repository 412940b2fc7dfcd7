"""The response cache: answer a repeated deterministic call from the store, never across tenants.

A call is looked up when the cache is on, its route allows it, the caller did not bypass it, and
it is deterministic (temperature 0) or its route caches regardless. A hit replays the stored
chunks as they were first produced (same text, same chunking), marks the record `cache_hit` (cost
0; the quota layer outside counts it as a request with no tokens) and reports the stored usage
with every prompt token as cached. A miss runs the call and stores the answer only when it
completed (a finish reason of stop or length, the stream read to its end): never a failed,
interrupted or cancelled one. A store that fails or is slow is a miss, logged, never an error.
A call marked `cache_only` by the quota layer (its token or dollar estimate did not fit, and a hit
costs neither) is answered from the cache or not at all: it never reaches a provider. A miss goes on
only to the semantic cache inside (`semantic_inside`), which answers it the same way.
A call the quota narrowed to its route's `budget_fallback` (the dollar estimate fits only there)
is first looked up under the route's own key: that answer is free, the fallback is not; a miss is
then looked up, run and stored under the fallback's key.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial

from sidecar.authz.scope import caller_scope
from sidecar.cache.answer import CachedAnswer, Passing
from sidecar.cache.key import CacheScope, answer_key, cache_scope, narrowed_deployments
from sidecar.cache.store import ByteStore
from sidecar.config.cache import CacheSettings
from sidecar.core.clock import Clock
from sidecar.core.errors import RouteNotFoundError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.plan import plan_of
from sidecar.core.types import Call, Chunk
from sidecar.routing.table import RouteTable
from sidecar.telemetry.tracing import Tracing

_log = logging.getLogger("sidecar.cache")


def _ignore(*_: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class CacheObserver:
    """Where lookups (hit or miss) and store failures are reported: the metrics, in the server."""

    on_lookup: Callable[[bool], None] = _ignore
    on_store_error: Callable[[str], None] = _ignore  # the operation: get or set


@dataclass(frozen=True, slots=True)
class _Plan:
    key: str
    scope: CacheScope
    ttl: float
    # the route's own key when the quota narrowed the call to its budget fallback (a cost decision,
    # not the caller's): the route's answer is free from the cache, so it is looked up first
    route_key: str | None = None


class CacheLayer:
    def __init__(
        self,
        inner: Handler,
        *,
        store: ByteStore | None,
        settings: CacheSettings,
        table: RouteTable,
        clock: Clock,
        observer: CacheObserver | None = None,
        tracing: Tracing | None = None,
        semantic_inside: bool = False,
    ) -> None:
        """`semantic_inside`: the layer inside is the semantic cache, which answers a `cache_only` call
        this cache misses from its own entries or not at all; without it such a call ends here."""
        self._inner, self._store, self._settings = inner, store, settings
        self._semantic_inside = semantic_inside
        self._table, self._clock = table, clock
        self._observer = observer or CacheObserver()
        self._tracing = tracing or Tracing.disabled()

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        """A call the cache may not answer goes on as it is, with no generator hop of this layer's.
        A `cache_only` call (the quota could not cover a provider's answer, see the quota layer)
        gets a hit or nothing at all: it goes on only to a semantic cache inside, which does the same."""
        plan = self._plan(call)
        if plan is None and call.cache_only and not self._semantic_inside:
            return _nothing()  # (with a semantic cache inside, it answers the call or not at all)
        if plan is None:
            return self._inner(call)
        return self._cached(call, plan)

    async def _cached(self, call: Call, plan: _Plan) -> AsyncGenerator[Chunk, None]:
        with self._tracing.span("sidecar.cache.lookup") as span:
            cached = await self._lookup(plan, call)
            if span is not None:
                span.set_attribute("sidecar.cache.hit", cached is not None)
        self._observer.on_lookup(cached is not None)
        if cached is not None:
            for chunk in _replay(cached, call, self._clock.wall()):
                yield chunk
            return
        if call.cache_only:  # a miss: no provider may be asked (the semantic cache inside may answer)
            if self._semantic_inside:
                async with inner_stream(self._inner, call) as stream:
                    async for chunk in stream:
                        yield chunk
            return  # nothing: the quota layer outside refuses it
        async with aclosing(self._run_and_store(call, plan)) as chunks:
            async for chunk in chunks:
                yield chunk

    def _plan(self, call: Call) -> _Plan | None:
        """The key and TTL when this call may use the cache, else None."""
        s = self._settings
        if not s.enabled or self._store is None or call.cache_bypass:
            return None
        try:
            resolved = plan_of(call, self._table)
        except RouteNotFoundError:
            return None  # the route layer reports it
        route = resolved.route
        options = route.config.cache
        if not options.enabled:
            return None
        if call.params.temperature != 0.0 and not options.even_when_sampling:
            return None
        scope = cache_scope(
            caller_scope(call.tenant_id, call.caller),  # a call naming no tenant: its credential's
            call.user_id,
            scope=options.scope or s.scope,
            user_key=route.config.user_key,
        )
        key = partial(
            answer_key, scope, persona=call.record.persona, route=route.alias, params=call.params,
            messages=call.messages,
        )  # fmt: skip
        route_key = key(deployments=narrowed_deployments(resolved)) if call.budget_deployment else None
        budget_key = key(deployments=narrowed_deployments(resolved, call.budget_deployment))
        ttl = options.ttl_seconds or s.ttl_seconds
        return _Plan(budget_key, scope, ttl, route_key if route_key != budget_key else None)

    async def _lookup(self, plan: _Plan, call: Call) -> CachedAnswer | None:
        """The route's own answer (a call the budget narrowed), else the call's."""
        if plan.route_key is not None:
            answer = await self._get(plan.route_key, plan, call)
            if answer is not None:
                return answer
        return await self._get(plan.key, plan, call)

    async def _get(self, key: str, plan: _Plan, call: Call) -> CachedAnswer | None:
        assert self._store is not None
        try:
            data = await self._store.get(key)
        except Exception as exc:  # the store is down or slow: serve from the provider
            _log.warning("cache lookup failed: %r", exc, extra={"request_id": call.request_id})
            self._observer.on_store_error("get")
            return None
        if data is None:
            return None
        try:
            answer = CachedAnswer.decode(data)
        except (ValueError, KeyError, TypeError, IndexError):
            _log.warning("cache entry unreadable; ignored", extra={"request_id": call.request_id})
            return None
        if answer.scope != plan.scope or answer.expires_at <= self._clock.wall():
            return None
        return answer

    async def _run_and_store(self, call: Call, plan: _Plan) -> AsyncGenerator[Chunk, None]:
        """Pass the chunks on as they come; store the answer once the layers outside took the final
        chunk and asked for more (the stream ends after the store). One they refused (the quota: a
        unary answer past the budget) closes this stream at the final chunk and is never stored."""
        passing = Passing()
        async with inner_stream(self._inner, call) as stream, aclosing(passing.pass_on(stream)) as chunks:
            async for chunk in chunks:
                yield chunk
        if passing.final is not None:
            yield passing.final
        if (final := passing.storable) is not None:
            await self._save(call, plan, passing.texts, final)

    async def _save(self, call: Call, plan: _Plan, texts: list[str], final: Chunk) -> None:
        assert self._store is not None and final.finish_reason is not None
        answer = CachedAnswer(
            scope=plan.scope,
            texts=tuple(texts),
            finish_reason=final.finish_reason,
            usage=final.usage or call.record.usage,
            target=call.record.target,
            expires_at=self._clock.wall() + plan.ttl,
            created_at=self._clock.wall(),
        )
        data = answer.encode()
        if len(data) > self._settings.max_entry_bytes:
            return
        try:
            await self._store.set(plan.key, data, plan.ttl)
        except Exception as exc:
            _log.warning("cache store failed: %r", exc, extra={"request_id": call.request_id})
            self._observer.on_store_error("set")


async def _nothing() -> AsyncGenerator[Chunk, None]:
    """The answer of a cache-only call the cache cannot answer: no chunk at all."""
    none: tuple[Chunk, ...] = ()
    for chunk in none:
        yield chunk


def _replay(answer: CachedAnswer, call: Call, now: float) -> list[Chunk]:
    record = call.record
    age = None if answer.created_at is None else now - answer.created_at
    record.answered_from_cache(answer.target, answer.finish_reason, answer.usage, age_seconds=age)
    chunks = [Chunk(text=t) for t in answer.texts]
    return [*chunks, Chunk(finish_reason=answer.finish_reason, usage=record.usage)]
