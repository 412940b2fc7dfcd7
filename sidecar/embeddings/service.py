"""The embedding service: a batch of texts for a tenant's user in, one vector per text out.

Validated first (nothing is charged for a rejected batch: empty, too many texts, a text empty or
too long by bytes or by tokens, an unknown route; each named by its field, e.g. `texts[3]`), then
quota-charged like Generate (one request and one call in flight, the estimated tokens and dollars
reserved, the real ones settled; a failed one refunded in full), then routed: each deployment of
the route in order, its texts first looked up in the exact cache (tenant + model + text), only the
missing ones embedded, the next deployment on a retryable failure. Cached texts cost nothing; their
tokens are reported as cached. Every call ends in the metrics and, when a ledger is on, in a usage
record.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sidecar.config.embeddings import EmbeddingDeployment, EmbeddingsPolicy
from sidecar.core.clock import DEADLINE_MARGIN, Clock, Deadline
from sidecar.core.errors import (
    DeadlineExceededError,
    FieldViolation,
    InvalidRequestError,
    ProviderError,
    QuotaExceededError,
    QuotaUnavailableError,
    SidecarError,
)
from sidecar.core.tokens import count_tokens
from sidecar.core.types import Usage
from sidecar.embeddings.cache import CachedVector, VectorCache
from sidecar.embeddings.routing import EmbeddingRouter, all_failed, model_identity
from sidecar.ledger.record import UsageRecord
from sidecar.quota.limits import MICROS, to_micros
from sidecar.quota.service import Amounts, Grant, QuotaService
from sidecar.telemetry import tracing
from sidecar.telemetry.labels import UNKNOWN
from sidecar.telemetry.metrics import EmbedOutcome, Metrics
from sidecar.telemetry.tracing import Tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from sidecar.ledger.writer import LedgerWriter


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    request_id: str
    tenant: str
    user: str
    texts: tuple[str, ...]
    deadline: Deadline
    route: str = ""  # an embedding route alias; "" = embeddings.default_route
    tier: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PromptVector:
    vector: Any  # a unit-length float32 numpy array
    model: str  # the identity of the model that made it (routing.model_identity)


@dataclass(frozen=True, slots=True)
class EmbedResult:
    vectors: tuple[tuple[float, ...], ...]
    dimensions: int
    normalized: bool
    usage: Usage  # prompt_tokens: every text's; cached_tokens: of those answered from the cache
    cost_usd: float
    route: str
    deployment: str
    model: str
    cached_texts: int


class EmbeddingService:
    def __init__(
        self,
        policy: EmbeddingsPolicy,
        router: EmbeddingRouter,
        *,
        clock: Clock,
        quota: QuotaService | None = None,
        metrics: Metrics | None = None,
        ledger: LedgerWriter | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._policy, self._router, self._clock = policy, router, clock
        self._quota, self._metrics, self._ledger = quota, metrics, ledger
        self._tracing = tracing or Tracing.disabled()
        self._cache = VectorCache(policy.cache_entries)
        self._dimensions: dict[str, int] = {}  # each deployment's vector size, as last answered

    async def start(self) -> None:
        """Read the local model now when `embeddings.load: start` says so."""
        await self._router.deployments.start()

    async def aclose(self) -> None:
        await self._router.deployments.aclose()

    async def embed(self, req: EmbedRequest) -> EmbedResult:
        """One caller's batch; its metrics, usage record and span (`embeddings <route>`, with tracing
        on) are each written once, whatever the outcome, from the same facts."""
        span = self._start_span(req) if self._tracing.enabled else None
        token = tracing.attach(span)
        try:
            return await self._embed(req, span)
        finally:
            tracing.detach(token)

    async def _embed(self, req: EmbedRequest, span: Span | None) -> EmbedResult:
        started = self._clock.monotonic()
        alias = ""
        try:
            alias = self._router.alias(req.route)
            self.validate(req.texts)
            self._check_reply(len(req.texts), self._known_dimensions(alias))
            result = await self._charged(req, alias)
        except SidecarError as exc:
            outcome = EmbedOutcome(alias, "", exc.code.name, self._clock.monotonic() - started)
            self._observe(req, outcome, exc.reason, span=span)
            raise
        except asyncio.CancelledError:  # the caller left (or its deadline passed): refunded, still recorded
            # gRPC cancels the handler when the caller's deadline passes: that is DEADLINE_EXCEEDED,
            # as the observe layer records a Generate, not a cancellation by the caller
            ended = "DEADLINE_EXCEEDED" if req.deadline.expired(DEADLINE_MARGIN) else "CANCELLED"
            outcome = EmbedOutcome(alias, "", ended, self._clock.monotonic() - started)
            self._observe(req, outcome, ended, span=span)
            raise
        self._observe(req, self._served(result, len(req.texts), started), "OK", result, span=span)
        return result

    def _start_span(self, req: EmbedRequest) -> Span | None:
        """The call's span; its route is a configured one or `unknown`, never the caller's text."""
        route = req.route or self._policy.default_route
        attributes: dict[str, str | int | float | bool] = {
            "gen_ai.operation.name": "embeddings",
            "sidecar.request_id": req.request_id,
            "sidecar.route": route if route in self._policy.routes else UNKNOWN,
        }
        if req.tenant:
            attributes["sidecar.tenant_id"] = req.tenant
        if req.user:
            attributes["sidecar.user_id"] = req.user
        return self._tracing.start(f"embeddings {attributes['sidecar.route']}", attributes)

    def primary_model(self, route: str) -> str:
        """The identity of the model of a route's first deployment."""
        first = self._policy.routes[route].deployments[0]
        return model_identity(self._policy.deployments[first])

    async def prompt_vector(self, tenant: str, route: str, text: str, deadline: Deadline) -> Any:
        """One text's unit vector as a float32 numpy array (the answer policy's lookups)."""
        return (await self.prompt_embedding(tenant, route, text, deadline)).vector

    async def prompt_embedding(self, tenant: str, route: str, text: str, deadline: Deadline) -> PromptVector:
        """One text's unit vector as a float32 numpy array, and the model that made it (a route may
        fall back to another model, whose vectors are not comparable): the semantic cache's lookups.
        Routed and cached like a call, metered, not charged to the caller's quota (the operator's
        cost)."""
        import numpy as np

        started = self._clock.monotonic()
        req = EmbedRequest("", tenant, "", (text,), deadline, route)
        try:
            alias = self._router.alias(route)
            result = await self._routed(req, alias)
        except SidecarError as exc:
            self._meter(EmbedOutcome(route, "", exc.code.name, self._clock.monotonic() - started))
            raise
        self._meter(self._served(result, 1, started))
        v = np.asarray(result.vectors[0], dtype=np.float64)  # a float32 norm of large values overflows
        norm = float(np.linalg.norm(v))
        unit = (v / norm if norm > 0 else v).astype(np.float32)
        return PromptVector(unit, model_identity(self._policy.deployments[result.deployment]))

    def _served(self, r: EmbedResult, texts: int, started: float) -> EmbedOutcome:
        return EmbedOutcome(
            r.route,
            r.deployment,
            "OK",
            self._clock.monotonic() - started,
            upstream_texts=texts - r.cached_texts,
            cached_texts=r.cached_texts,
            tokens=r.usage.prompt_tokens - r.usage.cached_tokens,
            cost_usd=r.cost_usd,
        )

    def validate(self, texts: Sequence[str]) -> None:
        p = self._policy
        if not texts:
            raise InvalidRequestError([FieldViolation("texts", "at least one text is required")])
        if len(texts) > p.max_texts:
            raise InvalidRequestError([FieldViolation("texts", f"at most {p.max_texts} texts per call")])
        bad: list[FieldViolation] = []
        for i, text in enumerate(texts):
            if not text.strip():
                bad.append(FieldViolation(f"texts[{i}]", "empty text"))
            elif len(text.encode()) > p.max_text_bytes:
                bad.append(FieldViolation(f"texts[{i}]", f"longer than {p.max_text_bytes} bytes"))
            elif count_tokens(text) > p.max_text_tokens:
                bad.append(FieldViolation(f"texts[{i}]", f"longer than {p.max_text_tokens} tokens"))
        if bad:
            raise InvalidRequestError(bad)

    def _known_dimensions(self, alias: str) -> int | None:
        """The vector size the route's first deployment answers with, when known (configured, or
        seen in its last answer)."""
        for name, deployment in self._router.candidates(alias):
            return deployment.dimensions or self._dimensions.get(name)
        return None

    def _check_reply(self, texts: int, dimensions: int | None) -> None:
        """A reply a gRPC client would refuse (embeddings.max_reply_bytes) is the batch's fault."""
        limit = self._policy.max_reply_bytes
        if dimensions is None or reply_bytes(texts, dimensions) <= limit:
            return
        most = max(1, (limit - REPLY_OVERHEAD) // (4 * dimensions + EMBEDDING_OVERHEAD))
        raise InvalidRequestError([FieldViolation("texts", (
            f"{texts} texts x {dimensions} dimensions make a reply of about "
            f"{reply_bytes(texts, dimensions):,} bytes, over embeddings.max_reply_bytes ({limit:,}); "
            f"send at most {most} texts per call"
        ))])  # fmt: skip

    async def _sized(self, req: EmbedRequest, alias: str) -> EmbedResult:
        """The batch routed; an answer too large to send is refused (its vectors stay cached)."""
        result = await self._routed(req, alias)
        self._check_reply(len(result.vectors), result.dimensions)
        return result

    async def _charged(self, req: EmbedRequest, alias: str) -> EmbedResult:
        if self._quota is None:
            return await self._sized(req, alias)
        tokens = sum(count_tokens(t) for t in req.texts)
        price = max(d.price_per_million_tokens for _, d in self._router.candidates(alias))
        held = Amounts(requests=1, tokens=tokens, usd=_micros(tokens * price / 1e6), concurrency=1)
        try:
            grant = await self._quota.reserve(req.tenant, req.user, req.tier, held, deadline=req.deadline)
        except QuotaExceededError as exc:  # counted as the observe layer counts a refused Generate
            if self._metrics is not None and (limit := exc.metadata.get("limit")):
                self._metrics.quota_refused(limit)
            raise
        try:
            result = await self._sized(req, alias)
        except BaseException:  # nothing delivered: refunded in full, the request too, as a Generate is
            await self._settle(grant, Amounts(), req.deadline)
            raise
        used = result.usage.prompt_tokens - result.usage.cached_tokens
        usage = Amounts(requests=1, tokens=used, usd=to_micros(result.cost_usd))
        charged = _within(usage, held)
        try:
            charged = await self._covered(grant, usage, held, req.deadline)
        finally:
            await self._settle(grant, charged, req.deadline)
        if charged == usage:
            return result
        cached = result.usage.cached_tokens  # answered, recorded and metered as it was charged
        answered = Usage(prompt_tokens=charged.tokens + cached, cached_tokens=cached)
        return replace(result, usage=answered, cost_usd=charged.usd / MICROS)

    async def _covered(self, grant: Grant, usage: Amounts, held: Amounts, deadline: Deadline) -> Amounts:
        """The usage, when the reservation covers it or grows to (the upstream counted more than the
        estimate); else only what was reserved, as a Generate's usage beyond its budget is: an
        upstream's count is never charged past the caller's limits."""
        assert self._quota is not None
        more = Amounts(tokens=max(0, usage.tokens - held.tokens), usd=max(0, usage.usd - held.usd))
        if more.tokens or more.usd:
            try:
                await self._quota.extend(grant, more, deadline=deadline)
            except (QuotaExceededError, QuotaUnavailableError, DeadlineExceededError):
                return _within(usage, held)  # the answer is made: what was reserved, within its deadline
        return usage

    async def _settle(self, grant: Grant, amounts: Amounts, deadline: Deadline) -> None:
        assert self._quota is not None
        await asyncio.shield(self._quota.settle_shielded(grant, amounts, deadline=deadline))

    async def _routed(self, req: EmbedRequest, alias: str) -> EmbedResult:
        failures: list[tuple[str, ProviderError]] = []
        for name, deployment in self._router.candidates(alias):
            try:
                return await self._on(name, deployment, req, alias)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                failures.append((name, exc))
        raise all_failed(alias, failures)

    async def _on(self, name: str, d: EmbeddingDeployment, req: EmbedRequest, alias: str) -> EmbedResult:
        """The batch on one deployment: cached texts from the cache, the others embedded here."""
        identity = model_identity(d)
        found = self._cache.get_many(req.tenant, identity, req.texts)
        missing = [i for i, f in enumerate(found) if f is None]
        cost = 0.0
        if missing:
            fresh = await self._router.attempt(name, [req.texts[i] for i in missing], req.deadline)
            if any(f is not None and len(f.vector) != fresh.dimensions for f in found):
                missing = list(range(len(req.texts)))  # the model changed size: nothing cached fits
                fresh = await self._router.attempt(name, req.texts, req.deadline)
            cost = fresh.usage.prompt_tokens * d.price_per_million_tokens / 1e6
            counts = _split_tokens(fresh.usage.prompt_tokens, [req.texts[i] for i in missing])
            for j, i in enumerate(missing):
                entry = CachedVector(fresh.vectors[j], fresh.normalized, counts[j])
                self._cache.put(req.tenant, identity, req.texts[i], entry)
                found[i] = entry
        entries = [f for f in found if f is not None]
        self._dimensions[name] = len(entries[0].vector)
        fresh_ids = set(missing)
        cached_tokens = sum(e.tokens for i, e in enumerate(entries) if i not in fresh_ids)
        return EmbedResult(
            vectors=tuple(e.vector for e in entries),
            dimensions=len(entries[0].vector),
            normalized=all(e.normalized for e in entries),
            usage=Usage(prompt_tokens=sum(e.tokens for e in entries), cached_tokens=cached_tokens),
            cost_usd=cost,
            route=alias,
            deployment=name,
            model=d.model,
            cached_texts=len(req.texts) - len(missing),
        )

    def _observe(
        self,
        req: EmbedRequest,
        o: EmbedOutcome,
        outcome: str,
        r: EmbedResult | None = None,
        *,
        span: Span | None = None,
    ) -> None:
        if self._metrics is not None:
            self._metrics.embedded(o, tenant=req.tenant, user=req.user, reason=outcome)
        record = UsageRecord(
            request_id=req.request_id, tenant=req.tenant, user=req.user, persona="", route=o.route,
            provider=self._policy.deployments[o.deployment].kind if o.deployment else "",
            model=r.model if r else "", tokens_in=r.usage.prompt_tokens if r else 0, tokens_out=0,
            tokens_cached=r.usage.cached_tokens if r else 0, cost_usd=o.cost_usd, latency_seconds=o.seconds,
            overhead_seconds=0.0, outcome=outcome, time=self._clock.wall(),
            cache_hit=r is not None and r.cached_texts == len(req.texts), metadata=dict(req.metadata),
        )  # fmt: skip
        if self._ledger is not None:
            self._ledger.submit(record)
        if span is not None:
            _end_span(span, record, o.code)

    def _meter(self, o: EmbedOutcome) -> None:
        if self._metrics is not None:
            self._metrics.embedded(o)


def _end_span(span: Span, r: UsageRecord, code: str) -> None:
    """The span of a caller's Embed, from its usage record (the ledger's and GetUsage's facts)."""
    span.set_attributes(
        {
            "sidecar.route": r.route or UNKNOWN,
            "gen_ai.provider.name": r.provider,
            "gen_ai.request.model": r.model,
            "gen_ai.usage.input_tokens": r.tokens_in,
            "gen_ai.usage.output_tokens": 0,
            "sidecar.cost_usd": r.cost_usd,
            "sidecar.cache_hit": r.cache_hit,
            "rpc.grpc.status_code": code,
        }
    )
    if r.outcome != "OK":
        from opentelemetry.trace import Status, StatusCode  # loaded already: a span exists

        span.set_attribute("error.type", r.outcome)
        span.set_status(Status(StatusCode.ERROR, r.outcome))
    span.end()


def _within(usage: Amounts, held: Amounts) -> Amounts:
    return Amounts(requests=1, tokens=min(usage.tokens, held.tokens), usd=min(usage.usd, held.usd))


REPLY_OVERHEAD = 1024  # an EmbedResponse's fields besides the vectors, with room to spare
EMBEDDING_OVERHEAD = 8  # one Embedding's tags and lengths


def reply_bytes(texts: int, dimensions: int) -> int:
    """An upper estimate of the EmbedResponse of `texts` vectors of `dimensions` floats (4 bytes each)."""
    return texts * (4 * dimensions + EMBEDDING_OVERHEAD) + REPLY_OVERHEAD


def _micros(usd: float) -> int:
    return math.ceil(usd * MICROS - 1e-6)


def _split_tokens(total: int, texts: Sequence[str]) -> list[int]:
    """A batch's reported token count shared among its texts by their estimated sizes (the
    providers report one total)."""
    estimates = [max(1, count_tokens(t)) for t in texts]
    whole = sum(estimates)
    shares = [total * e // whole for e in estimates]
    shares[-1] += total - sum(shares)
    return shares
