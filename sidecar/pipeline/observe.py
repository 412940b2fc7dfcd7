"""The outermost layer: metrics, the usage-ledger record and the call span, for every outcome.

It sees what the caller sees: a clean end, an error raised before or after the first chunk, a
cancellation (the caller went away: the stream is closed or the task cancelled). In every case,
exactly once, in `finally`: the metrics are recorded, one usage record is queued (never awaited),
and the span is ended. Per call it allocates one outcome, one record and, only with tracing on, a
span; the labelled metric children are looked up by tuple (see telemetry/metrics.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from sidecar.core.clock import DEADLINE_MARGIN, Clock
from sidecar.core.drain import is_cut
from sidecar.core.errors import Code, SidecarError, StreamInterruptedError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.outcome import Outcome
from sidecar.core.types import Attempt, Call, Chunk
from sidecar.ledger.record import UsageRecord
from sidecar.ledger.writer import LedgerWriter
from sidecar.telemetry import logging as logs
from sidecar.telemetry import tracing
from sidecar.telemetry.labels import UNKNOWN
from sidecar.telemetry.metrics import CallOutcome, Metrics

if TYPE_CHECKING:
    from opentelemetry.trace import Span

OK = "OK"
CANCELLED = "CANCELLED"
DEADLINE_EXCEEDED = Code.DEADLINE_EXCEEDED.value
HEDGE_LOST = "HEDGE_LOST"  # routing/route.py names a hedged attempt that lost the race so


class ObserveLayer:
    def __init__(
        self,
        inner: Handler,
        *,
        metrics: Metrics,
        ledger: LedgerWriter | None,
        tracing: tracing.Tracing,
        routes: Collection[str],
        clock: Clock,
    ) -> None:
        """`routes`: the configured aliases, the default route first (what an empty `model` means)."""
        self._inner, self._metrics, self._ledger, self._tracing = inner, metrics, ledger, tracing
        self._routes, self._clock = frozenset(routes), clock
        self._default = next(iter(routes), UNKNOWN)

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self._metrics.call_started()
        span = self._start_span(call) if self._tracing.enabled else None
        token = tracing.attach(span)
        unbind = logs.bind_call(call.request_id, logs.message_texts(call.messages), call.metadata)
        code, reason, first_at = OK, OK, None
        texts: list[str] | None = [] if self._tracing.capture_content else None
        try:
            async with inner_stream(self._inner, call) as stream:
                async for chunk in stream:
                    if first_at is None and chunk.text:
                        first_at = self._clock.monotonic()
                        if call.stream:
                            call.record.first_token(first_at)
                    if texts is not None:
                        texts.append(chunk.text)
                    yield chunk
        except SidecarError as err:
            code, reason = err.code.value, err.reason
            if err.code is Code.RESOURCE_EXHAUSTED and (limit := err.metadata.get("limit")):
                self._metrics.quota_refused(limit)  # store errors: each store counts its own, by operation
            raise
        except BaseException as exc:  # cancelled, the caller closed the stream, or a crash
            code, reason = _ended_by(exc, call)
            raise
        finally:
            self._finish(call, code, reason, first_at, span, texts)
            tracing.detach(token)
            unbind()

    def _finish(
        self,
        call: Call,
        code: str,
        reason: str,
        first_at: float | None,
        span: Span | None,
        texts: list[str] | None,
    ) -> None:
        """Seal the call's outcome; the metrics, the usage record and the span are all read from it."""
        record = call.record
        record.seal()  # the summary the servicer sends reads these same facts
        outcome = self._call_outcome(call, code, reason, first_at)
        # An unauthenticated caller's claims (tenant, user, labels) are not trusted: none are kept.
        trusted = code != Code.UNAUTHENTICATED.value
        tenant, user = (call.tenant_id, call.user_id) if trusted else ("", "")
        self._metrics.call_finished(outcome, tenant=tenant, user=user)
        if self._ledger is not None:
            self._ledger.submit(
                UsageRecord(
                    request_id=call.request_id,
                    tenant=tenant,
                    user=user,
                    persona=record.persona,
                    route=outcome.route,
                    provider=outcome.provider,
                    model=outcome.model,
                    tokens_in=outcome.tokens_in,
                    tokens_out=outcome.tokens_out,
                    tokens_cached=outcome.tokens_cached,
                    cost_usd=outcome.cost_usd,
                    latency_seconds=outcome.seconds,
                    overhead_seconds=outcome.overhead_seconds,
                    outcome=reason,
                    time=self._clock.wall(),
                    stream=call.stream,
                    cache_hit=outcome.cache_hit,
                    metadata=_labels(call, record) if trusted else {},
                    experiment=record.experiment,
                    variant=record.variant,
                    variant_overridden=record.variant_overridden,
                )
            )
        if span is not None:
            _end_span(span, outcome, reason, call, texts)

    def _call_outcome(self, call: Call, code: str, reason: str, first_at: float | None) -> CallOutcome:
        """The metrics' view of the sealed outcome (low-cardinality labels only)."""
        record, target = call.record, call.record.target
        seconds = self._clock.monotonic() - record.started_at
        retries, fallbacks, hedges = _routing_counts(record.attempts)
        usage = record.usage
        return CallOutcome(
            route=target.route if target is not None else (record.route or self._route(call.model)),
            provider=target.provider if target is not None else "",
            model=target.model if target is not None else "",
            stream=call.stream,
            code=code,
            seconds=seconds,
            overhead_seconds=max(0.0, seconds - record.upstream_seconds),
            ttft_seconds=first_at - record.started_at if first_at is not None and call.stream else None,
            tokens_in=usage.prompt_tokens,
            tokens_out=usage.completion_tokens,
            tokens_cached=usage.cached_tokens,
            cost_usd=record.cost_usd,
            retries=retries,
            fallbacks=fallbacks,
            hedges=hedges,
            cache_hit=record.cache_hit,
            reason=reason,
        )

    def _route(self, alias: str) -> str:
        """The route label of a call that never reached routing: only configured names, never input."""
        if not alias:
            return self._default
        return alias if alias in self._routes else UNKNOWN

    def _start_span(self, call: Call) -> Span | None:
        attributes: dict[str, str | int | float | bool] = {
            "gen_ai.operation.name": "chat",
            "sidecar.request_id": call.request_id,
            "sidecar.route": self._route(call.model),
            "sidecar.stream": call.stream,
        }
        if call.params.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = call.params.max_tokens
        if call.params.temperature is not None:
            attributes["gen_ai.request.temperature"] = call.params.temperature
        if call.tenant_id:
            attributes["sidecar.tenant_id"] = call.tenant_id
        if call.user_id:
            attributes["sidecar.user_id"] = call.user_id
        if call.conversation_id:
            attributes["gen_ai.conversation.id"] = call.conversation_id
        if self._tracing.capture_content:
            attributes["gen_ai.input.messages"] = _messages_json(call)
        return self._tracing.start(f"chat {attributes['sidecar.route']}", attributes)


def _ended_by(exc: BaseException, call: Call) -> tuple[str, str]:
    """How a call that raised no SidecarError ended (code, reason): gRPC cancels the handler when the
    caller's deadline passes, which is the caller's DEADLINE_EXCEEDED, not a plain cancellation; the
    shutdown's cut is the sidecar's own interruption, which the servicer reports as
    UNAVAILABLE / STREAM_INTERRUPTED (api/servicer.py shutdown_cut)."""
    if is_cut(exc):
        return StreamInterruptedError.code.value, StreamInterruptedError.reason
    if not isinstance(exc, GeneratorExit | asyncio.CancelledError):
        return "INTERNAL", "INTERNAL"
    ended = DEADLINE_EXCEEDED if call.deadline.expired(DEADLINE_MARGIN) else CANCELLED
    return ended, ended


def _routing_counts(attempts: Sequence[Attempt]) -> tuple[int, int, int]:
    """Retries (again on the same deployment), fallbacks (on to another) and hedges (races run).
    A hedge is the attempt started to race another, however the race ended (either won, either
    failed); neither attempt of a race is a retry or a fallback of the other."""
    retries = fallbacks = hedges = 0
    previous: str | None = None
    for a in attempts:
        hedges += a.hedge
        if a.hedge or a.outcome == HEDGE_LOST:
            continue
        if previous is not None:
            if a.deployment == previous:
                retries += 1
            else:
                fallbacks += 1
        previous = a.deployment
    return retries, fallbacks, hedges


def _end_span(span: Span, o: CallOutcome, reason: str, call: Call, texts: list[str] | None) -> None:
    record = call.record
    span.set_attributes(
        {
            "sidecar.route": o.route,
            "gen_ai.provider.name": o.provider,
            "gen_ai.request.model": o.model,
            "gen_ai.response.model": o.model,
            "gen_ai.usage.input_tokens": o.tokens_in,
            "gen_ai.usage.output_tokens": o.tokens_out,
            "sidecar.cost_usd": o.cost_usd,
            "sidecar.overhead_seconds": o.overhead_seconds,
            "sidecar.cache_hit": o.cache_hit,
            "sidecar.persona": record.persona,
            "rpc.grpc.status_code": o.code,
        }
    )
    if record.finish_reason is not None:
        span.set_attribute("gen_ai.response.finish_reasons", [record.finish_reason.value])
    if texts is not None:
        span.set_attribute("gen_ai.output.messages", "".join(texts))
    if o.code != OK:
        from opentelemetry.trace import Status, StatusCode  # loaded already: a span exists

        span.set_attribute("error.type", reason)
        span.set_status(Status(StatusCode.ERROR, reason))
    span.end()


def _messages_json(call: Call) -> str:
    return json.dumps([{"role": m.role.value, "content": m.text} for m in call.messages])


def _labels(call: Call, record: Outcome) -> Mapping[str, str]:
    """The request's labels, and the answer policy's decision under keys a caller cannot send (a
    caller's keys have no colon): `answer:path` (A..F) and `answer:reason`."""
    decision = record.answer
    if decision is None:
        return call.metadata
    return {**call.metadata, "answer:path": decision.path.value, "answer:reason": decision.reason}
