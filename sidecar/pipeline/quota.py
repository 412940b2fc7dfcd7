"""Quotas: reserve the call's estimate on every limit before it runs; settle to real usage after.

Estimate: 1 request, 1 call in flight, the prompt's tokens (counted by the injected estimator) plus
min(max_tokens, output_tokens_estimate) output tokens, and their price at the most expensive
deployment of the route. A route's `budget_fallback` deployment serves callers whose dollars cannot
cover that but can cover the fallback's price. While a stream runs, the output of each chunk (text,
thinking, tool calls) is counted before the chunk is passed on; when the output outgrows the
reservation, the reservation is extended by the overflow plus `extension_tokens`. When even the
chunk itself does not fit, the stream gets the part of it that does (the longest prefix the budget
covers, found by growing the reservation token by token in a binary search, and cut where the
tokenizer's count allows), is charged exactly what it received, and ends with RESOURCE_EXHAUSTED
carrying that usage. A unary answer that does not fit is refused whole and only its prompt is
charged; a final chunk whose usage corrects the counts beyond the budget is charged at most what was
reserved; a call that ends while an extension is on its way is charged what it received. So no
bucket ends over its limit, in tokens or in dollars.
When the stream ends in any way, the reservation is settled: a cache hit is 1 request and nothing
else; a call that produced nothing (failed before any provider output) is refunded in full.
A response-cache hit costs no tokens and no dollars, so a token or USD limit that refuses the
estimate does not refuse it: the call is then admitted for 1 request and 1 call in flight only, marked
`cache_only` (the cache layer inside answers it from the cache or not at all), and refused with the
estimate's refusal when the cache has no answer (the request refunded: a refused call costs nothing).
That reservation reports no near-limit level (a refunded miss would be a false alarm, and would use up
the level's one report in the window); a hit's settle reports the level its request reaches.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, replace

from sidecar.context.tokenizer import ESTIMATE_COUNTER
from sidecar.core.errors import QuotaExceededError, QuotaUnavailableError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.outcome import Outcome
from sidecar.core.plan import plan_of
from sidecar.core.tokens import count_tokens
from sidecar.core.types import Call, Chunk, GenerationParams, Message, Price, Target, Usage
from sidecar.quota.limits import MICROS, to_micros
from sidecar.quota.service import Amounts, Grant, QuotaService
from sidecar.routing.table import Route, RouteTable
from sidecar.telemetry.tracing import Tracing


@dataclass(frozen=True)
class TokenEstimator:
    """Token counts before a provider reports them: a prompt's, and a piece of output text's."""

    prompt: Callable[[Sequence[Message], GenerationParams], int] = ESTIMATE_COUNTER.count_prompt
    text: Callable[[str], int] = count_tokens


@dataclass
class _Meter:
    """What a call has reserved and consumed so far."""

    price: Price
    prompt: int
    output: int = 0
    written: int = 0  # prompt tokens the provider wrote to its prompt cache (priced apart)
    received: int = 0
    reserved_tokens: int = 0
    reserved_usd: int = 0
    final: bool = False
    cut: bool = False  # the budget ended the call: charge the meter's counts, nothing reported beyond
    # the output delivered before a chunk that outgrew the reservation, while its extension is on
    # its way (None: the reservation covers the counts)
    uncovered: int | None = None
    refusal: QuotaExceededError | None = None  # set with the last (partial) chunk the call gets
    unless_cached: QuotaExceededError | None = None  # the estimate's refusal, for a cache-only call
    spent_tokens: int = 0  # answers the format check rejected (schema_retry): the call's, in any case
    spent_cost: float = 0.0

    def tokens(self, extra: int = 0) -> int:
        return self.spent_tokens + self.prompt + self.output + extra

    def usd(self, price: Price | None = None, extra: int = 0) -> int:
        """Rounded up, for reservations: a charge (to_micros, to the nearest) never exceeds it."""
        usage = Usage(self.prompt, self.output + extra, cache_write_tokens=self.written)
        cost = (price or self.price).cost(usage) + self.spent_cost
        return math.ceil(cost * MICROS - 1e-6)

    def rejected(self, record: Outcome) -> None:
        """What the answers rejected before the one being received used and cost."""
        answer = record.answer_usage
        self.spent_tokens = record.usage.total_tokens - answer.total_tokens
        target = record.target
        self.spent_cost = max(0.0, record.cost_usd - (target.price.cost(answer) if target else 0.0))


def _prompt_estimate(estimator: TokenEstimator, call: Call) -> int:
    """The prompt's tokens before the provider counts them, counted like trimming counts them:
    messages (names, tool calls and results, images), tool definitions and the response schema."""
    return estimator.prompt(call.messages, call.params)


class QuotaLayer:
    def __init__(
        self,
        inner: Handler,
        *,
        quota: QuotaService | None,
        table: RouteTable,
        estimator: TokenEstimator = TokenEstimator(),
        tracing: Tracing | None = None,
        cache_answers: bool = False,
    ) -> None:
        """`cache_answers`: a response cache inside may answer calls (a refused estimate is then
        tried as a cache-only call)."""
        self._inner, self._quota, self._table = inner, quota, table
        self._estimator = estimator
        self._cache_answers = cache_answers
        self._tracing = tracing or Tracing.disabled()

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        """Without quotas the inner stream is returned as it is (no extra hop)."""
        route = plan_of(call, self._table).route
        if self._quota is None or not self._quota.policy.enabled:
            return self._inner(call)
        return self._metered(self._quota, call, route)

    async def _metered(self, quota: QuotaService, call: Call, route: Route) -> AsyncGenerator[Chunk, None]:
        policy = quota.policy
        output = min(call.params.max_tokens or policy.output_tokens_estimate, policy.output_tokens_estimate)
        meter = _Meter(_dearest(route), _prompt_estimate(self._estimator, call))
        with self._tracing.span("sidecar.quota.reserve", {"sidecar.tier": call.tier}):
            grant, call = await self._admit(quota, call, route, meter, output)
        try:
            async with inner_stream(self._inner, call) as stream:
                async for chunk in stream:
                    chunk = await self._cover(quota, grant, call, meter, chunk)
                    if chunk.text or meter.refusal is None:
                        yield chunk
                    if meter.refusal is not None:
                        raise meter.refusal
            if meter.unless_cached is not None and not call.record.cache_hit:
                raise meter.unless_cached  # the cache had no answer: refused, nothing charged
        finally:
            await quota.settle_shielded(grant, _actual(call, meter), deadline=call.deadline)

    async def _admit(
        self, quota: QuotaService, call: Call, route: Route, meter: _Meter, output: int
    ) -> tuple[Grant, Call]:
        """Reserve the estimate; when a token or dollar limit refuses it and a response cache may
        answer, reserve one request and one call in flight for a cache-only call instead."""
        try:
            return await self._estimate(quota, call, route, meter, output)
        except QuotaExceededError as err:
            if not self._cache_answers or err.metadata.get("metric") not in ("tokens", "usd"):
                raise
            try:  # most often refunded (a miss): its levels are reported by a hit's settle only
                grant = await quota.reserve(
                    call.tenant_id, call.user_id, call.tier, _reserve(0, 0), deadline=call.deadline,
                    near_limit=False,
                )  # fmt: skip
            except QuotaExceededError:
                raise err from None  # a request or concurrency limit too: refused as estimated
            meter.unless_cached = err
            return grant, replace(call, cache_only=True)

    async def _estimate(
        self, quota: QuotaService, call: Call, route: Route, meter: _Meter, output: int
    ) -> tuple[Grant, Call]:
        """Reserve the estimate; if dollars refuse and the route has a cheaper fallback, try that."""
        tokens = meter.prompt + output
        usd = meter.usd(extra=output)
        try:
            grant = await quota.reserve(
                call.tenant_id, call.user_id, call.tier, _reserve(tokens, usd), deadline=call.deadline
            )
        except QuotaExceededError as err:
            fallback = _fallback(route)
            if err.reason != "COST_QUOTA_EXCEEDED" or fallback is None:
                raise
            meter.price = fallback.price
            usd = meter.usd(extra=output)
            grant = await quota.reserve(
                call.tenant_id, call.user_id, call.tier, _reserve(tokens, usd), deadline=call.deadline
            )
            call = replace(call, budget_deployment=fallback.deployment)
        meter.reserved_tokens, meter.reserved_usd = tokens, usd
        return grant, call

    async def _cover(
        self, quota: QuotaService, grant: Grant, call: Call, meter: _Meter, chunk: Chunk
    ) -> Chunk:
        """Count the chunk and extend the reservation if it outgrew it; returns what the call may
        receive: the chunk, or the part of it that fits (then `meter.refusal` ends the call)."""
        if meter.unless_cached is not None and not call.record.cache_hit:
            raise meter.unless_cached  # only the cache may answer a call whose estimate did not fit
        meter.received += 1
        before = meter.output
        meter.output += self._estimator.text(chunk.output)
        if chunk.usage is not None:
            meter.prompt, meter.output = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
            meter.written = chunk.usage.cache_write_tokens
            meter.final = chunk.is_final
        price = call.record.target.price if call.record.target else meter.price
        if call.record.cache_hit:
            return chunk
        if call.record.answers_rejected:
            meter.rejected(call.record)
        if meter.tokens() <= meter.reserved_tokens and meter.usd(price) <= meter.reserved_usd:
            return chunk
        meter.uncovered = before  # until the reservation covers the counts (a cancel meanwhile: _actual)
        chunk = await self._grow(quota, grant, call, meter, chunk, before, price)
        meter.uncovered = None
        return chunk

    async def _grow(
        self,
        quota: QuotaService,
        grant: Grant,
        call: Call,
        meter: _Meter,
        chunk: Chunk,
        before: int,
        price: Price,
    ) -> Chunk:
        """Extend the reservation to the meter's counts plus headroom, else to the counts alone, else
        give the call the part of the chunk that fits. A store that fails ends the call unless the
        chunk delivers nothing: a final usage correction after the whole answer is passed on as it
        is (the settle, then a release, charges no more than the store held)."""
        try:
            await self._extend(quota, grant, call, meter, price, quota.policy.extension_tokens)
            return chunk
        except QuotaExceededError:
            pass
        except QuotaUnavailableError:
            if _content(chunk):
                raise
            return chunk
        try:  # the headroom does not fit; the chunk itself may
            await self._extend(quota, grant, call, meter, price, 0)
            return chunk
        except QuotaExceededError as err:
            if not _content(chunk):  # a final usage correction: charge no more than was reserved,
                _clamp(meter, price, call.record)  # and record what was charged (summary, ledger...)
                return replace(chunk, usage=call.record.answer_usage)
            return await self._cut(quota, grant, call, meter, chunk, before, err)

    async def _cut(
        self,
        quota: QuotaService,
        grant: Grant,
        call: Call,
        meter: _Meter,
        chunk: Chunk,
        before: int,
        err: QuotaExceededError,
    ) -> Chunk:
        """The longest prefix of the chunk the budget still covers (nothing for a unary answer, which
        cannot be delivered in part); the reservation grows to exactly that, and the call ends."""
        price = call.record.target.price if call.record.target else meter.price
        partial = call.stream and not (chunk.thinking or chunk.tool_calls)  # text alone is cut in part
        fits, refused = 0, self._estimator.text(chunk.text) if partial else 1
        while refused - fits > 1:  # binary search: each successful extend holds what it got
            trial = (fits + refused) // 2
            meter.output = before + trial
            try:
                await self._extend(quota, grant, call, meter, price, 0)
                fits = trial
            except QuotaExceededError:
                refused = trial
        part = _prefix(chunk.text, fits, self._estimator.text) if partial else ""
        meter.output = before + self._estimator.text(part)
        _clamp(meter, price, call.record)  # a corrected prompt count, as reserved
        err.metadata.update(
            promptTokens=str(meter.prompt), completionTokens=str(meter.output), usageEstimated="true"
        )
        meter.refusal = err
        return Chunk(text=part)

    async def _extend(
        self, quota: QuotaService, grant: Grant, call: Call, meter: _Meter, price: Price, step: int
    ) -> None:
        """Grow the reservation to what the call has used plus `step` more output tokens, within the
        call's deadline (one that passes meanwhile ends the call: DEADLINE_EXCEEDED)."""
        more_tokens = max(0, meter.tokens(step) - meter.reserved_tokens)
        more_usd = max(0, meter.usd(price, step) - meter.reserved_usd)
        await quota.extend(grant, Amounts(tokens=more_tokens, usd=more_usd), deadline=call.deadline)
        meter.reserved_tokens += more_tokens
        meter.reserved_usd += more_usd


def _clamp(meter: _Meter, price: Price, record: Outcome) -> None:
    """Counts beyond the reservation (the provider counted more than the sidecar did, the call ended
    before an extension answered, the budget cut it) are not charged: rejected answers, the prompt
    and the largest output the reserved tokens and dollars cover, recorded as the call's usage."""
    _cap_rejected(meter, record)
    room = max(0, meter.reserved_tokens - meter.spent_tokens)
    prompt, output, written = min(meter.prompt, room), meter.output, meter.written

    def covered(p: int, o: int) -> bool:
        meter.prompt, meter.output, meter.written = p, o, min(written, p)
        return meter.usd(price) <= meter.reserved_usd

    prompt = _largest(lambda p: covered(p, 0), prompt)  # the prompt alone may cost more than reserved
    output = _largest(lambda o: covered(prompt, o), max(0, min(output, room - prompt)))
    covered(prompt, output)
    meter.cut = True
    record.usage_estimated(Usage(prompt, output, cache_write_tokens=meter.written))


def _largest(fits: Callable[[int], bool], high: int) -> int:
    """The largest n in [0, high] that fits (0 when none does); fits(n) holds up to some n, not after."""
    low = 0
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


def _cap_rejected(meter: _Meter, record: Outcome) -> None:
    """Answers schema_retry rejected that alone outgrew the reservation count only as far as it goes."""
    usd = math.ceil(meter.spent_cost * MICROS - 1e-6)
    if meter.spent_tokens <= meter.reserved_tokens and usd <= meter.reserved_usd:
        return
    share = min(meter.reserved_tokens / meter.spent_tokens if meter.spent_tokens else 1.0,
                meter.reserved_usd / usd if usd else 1.0)  # fmt: skip
    spent, answer = record.usage, record.answer_usage
    prompt = int((spent.prompt_tokens - answer.prompt_tokens) * share)
    completion = int((spent.completion_tokens - answer.completion_tokens) * share)
    cost = min(meter.spent_cost * share, meter.reserved_usd / MICROS)
    record.rejected_within(Usage(prompt, completion), cost)
    meter.spent_tokens, meter.spent_cost = prompt + completion, cost


def _content(chunk: Chunk) -> bool:
    """Whether the chunk delivers output (text, thinking, tool calls), not only a finish or usage."""
    return bool(chunk.text or chunk.thinking or chunk.tool_calls)


def _reserve(tokens: int, usd: int) -> Amounts:
    return Amounts(requests=1, tokens=tokens, usd=usd, concurrency=1)


def _actual(call: Call, meter: _Meter) -> Amounts:
    """The settlement: a cache hit is one request; no provider output at all is a full refund."""
    record = call.record
    if record.cache_hit:
        return Amounts(requests=1)
    if meter.received == 0 and record.usage.total_tokens == 0:
        return Amounts()
    if meter.uncovered is not None:  # ended (cancelled, the store failed) before the reservation grew:
        meter.output = meter.uncovered  # what it received, within the reservation, recorded as its usage
        _clamp(meter, record.target.price if record.target else meter.price, record)
    if record.target is None and meter.received == 0 and record.answers_rejected:  # schema_retry's
        meter.prompt = meter.output = 0  # only answers it rejected: each at its own deployment's price,
        meter.rejected(record)  # within the reservation (no chunk came to grow it)
        _clamp(meter, meter.price, record)
    if meter.cut:  # the budget ended it: what the call received, as _clamp recorded it
        return Amounts(requests=1, tokens=record.usage.total_tokens, usd=to_micros(record.cost_usd))
    if meter.final and record.finish_reason is not None:
        usage = record.usage
        usd = to_micros(record.cost_usd)
    elif record.usage.total_tokens:  # cut short: the usage the ledger and metrics record (the
        # provider's, or the sidecar's count by the tokenizer of the deployment that answered), each
        # answer at its own deployment's price (one schema_retry rejected before it too)
        usage = record.usage
        cost = record.cost_usd if record.target else meter.price.cost(usage)
        usd = to_micros(cost)
    else:  # cut short with nothing recorded: the meter's count, recorded as the call's usage too
        usage = Usage(meter.prompt, meter.output)
        call.record.usage_estimated(usage)
        price = record.target.price if record.target else meter.price
        usd = to_micros(price.cost(usage))
    return Amounts(requests=1, tokens=usage.total_tokens, usd=usd)


def _prefix(text: str, tokens: int, count: Callable[[str], int]) -> str:
    """The longest prefix of `text` that counts at most `tokens` (binary search over its length;
    a token count grows with the prefix)."""
    if tokens <= 0:
        return ""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if count(text[:mid]) <= tokens:
            low = mid
        else:
            high = mid - 1
    return text[:low]


def _dearest(route: Route) -> Price:
    """A price at least the route's most expensive deployment's, for both directions."""
    return Price(
        max(t.price.input_per_million for t in route.targets),
        max(t.price.output_per_million for t in route.targets),
    )


def _fallback(route: Route) -> Target | None:
    name = route.config.budget_fallback
    return next((t for t in route.targets if t.deployment == name), None)
