"""The outermost layer: metrics, one ledger record and a span for every outcome."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator
from contextlib import aclosing

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sidecar.config.telemetry import TracingConfig
from sidecar.core.errors import Code, ProvidersUnavailableError, SidecarError, UserKeyRateLimitedError
from sidecar.core.types import Attempt, Call, Chunk, FinishReason, Price, Target, Usage
from sidecar.ledger.record import UsageRecord
from sidecar.pipeline.observe import ObserveLayer
from sidecar.telemetry.metrics import Metrics
from sidecar.telemetry.tracing import Tracing, build_tracing
from tests.conftest import FakeClock
from tests.support.calls import make_call

TARGET = Target("chat", "d1", "openai", "gpt-x", Price(input_per_million=1e6, output_per_million=2e6))


class Ledger:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def submit(self, record: UsageRecord) -> None:
        self.records.append(record)


class QuotaExceeded(SidecarError):
    code = Code.RESOURCE_EXHAUSTED
    reason = "TOKEN_QUOTA_EXCEEDED"


def value(m: Metrics, name: str, **labels: str) -> float:
    v = m.registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


def scripted(clock: FakeClock, *, fail_after: int | None = None, error: Exception | None = None):  # type: ignore[no-untyped-def]
    async def inner(call: Call) -> AsyncGenerator[Chunk, None]:
        call.record.served_by(TARGET)
        call.record.attempt_ended(Attempt("d1", "openai", "OK", 0.1))
        call.record.upstream_wait_started(clock.monotonic())
        clock.advance(0.010)
        call.record.upstream_wait_ended(clock.monotonic())
        if fail_after == 0 and error is not None:
            raise error
        yield Chunk(text="hello ")
        if fail_after == 1 and error is not None:
            raise error
        call.record.upstream_wait_started(clock.monotonic())
        clock.advance(0.020)
        call.record.upstream_wait_ended(clock.monotonic())
        call.record.upstream_finished(FinishReason.STOP, Usage(10, 5, 2))
        yield Chunk(text="world", finish_reason=FinishReason.STOP, usage=Usage(10, 5, 2))

    return inner


def layer(
    inner, m: Metrics, ledger: Ledger, clock: FakeClock, tracing: Tracing | None = None
) -> ObserveLayer:  # type: ignore[no-untyped-def]
    return ObserveLayer(
        inner,
        metrics=m,
        ledger=ledger,  # type: ignore[arg-type]
        tracing=tracing or Tracing.disabled(),
        routes=("chat", "other"),
        clock=clock,
    )


async def drain(handler: ObserveLayer, call: Call) -> list[str]:
    out: list[str] = []
    async with aclosing(handler(call)) as stream:
        async for chunk in stream:
            out.append(chunk.text)
    return out


async def test_success_records_every_signal_once(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()
    call = make_call(clock, model="chat", stream=True)
    clock.advance(0.001)  # edge conversion before the pipeline
    assert await drain(layer(scripted(clock), m, ledger, clock), call) == ["hello ", "world"]
    labels = {"route": "chat", "provider": "openai", "model": "gpt-x", "stream": "true", "code": "OK"}
    assert value(m, "sidecar_requests_total", **labels) == 1
    assert (
        value(m, "sidecar_tokens_total", route="chat", provider="openai", model="gpt-x", direction="input")
        == 10
    )
    assert (
        value(m, "sidecar_tokens_total", route="chat", provider="openai", model="gpt-x", direction="output")
        == 5
    )
    assert (
        value(m, "sidecar_tokens_total", route="chat", provider="openai", model="gpt-x", direction="cached")
        == 2
    )
    assert value(
        m, "sidecar_cost_usd_total", route="chat", provider="openai", model="gpt-x"
    ) == pytest.approx(20)
    assert value(m, "sidecar_overhead_seconds_count", route="chat", stream="true") == 1
    assert value(m, "sidecar_overhead_seconds_sum", route="chat", stream="true") == pytest.approx(0.001)
    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-x",
    }
    assert value(m, "gen_ai_server_time_to_first_token_seconds_sum", **genai, route="chat") == pytest.approx(
        0.011
    )
    assert value(
        m, "gen_ai_client_operation_duration_seconds_sum", **genai, route="chat", stream="true"
    ) == pytest.approx(0.031)
    assert value(m, "gen_ai_client_token_usage_sum", **genai, route="chat", gen_ai_token_type="input") == 10
    assert value(m, "sidecar_in_flight_calls") == 0
    [record] = ledger.records
    assert (record.request_id, record.tenant, record.user, record.route, record.model) == (
        "req-1", "t", "u", "chat", "gpt-x",
    )  # fmt: skip
    assert (record.tokens_in, record.tokens_out, record.tokens_cached, record.outcome) == (10, 5, 2, "OK")
    assert record.cost_usd == pytest.approx(20)
    assert record.latency_seconds == pytest.approx(0.031)
    assert record.overhead_seconds == pytest.approx(0.001)
    assert record.time == clock.wall()


async def test_error_before_the_first_chunk_is_recorded_with_its_code(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()
    err = ProvidersUnavailableError("all down")
    with pytest.raises(ProvidersUnavailableError):
        await drain(
            layer(scripted(clock, fail_after=0, error=err), m, ledger, clock), make_call(clock, model="chat")
        )
    labels = {
        "route": "chat",
        "provider": "openai",
        "model": "gpt-x",
        "stream": "true",
        "code": "UNAVAILABLE",
    }
    assert value(m, "sidecar_requests_total", **labels) == 1
    assert ledger.records[0].outcome == "PROVIDERS_UNAVAILABLE"
    assert value(m, "sidecar_in_flight_calls") == 0


async def test_error_raised_before_the_stream_exists(clock: FakeClock) -> None:
    """A layer that raises when called (authn) rather than from its stream."""
    m, ledger = Metrics(), Ledger()

    def refuse(call: Call) -> AsyncGenerator[Chunk, None]:
        raise QuotaExceeded("over", metadata={"limit": "tenant_tokens_day"})

    with pytest.raises(QuotaExceeded):
        await drain(layer(refuse, m, ledger, clock), make_call(clock, model="nope"))
    labels = {"route": "unknown", "provider": "", "model": "", "stream": "true", "code": "RESOURCE_EXHAUSTED"}
    assert value(m, "sidecar_requests_total", **labels) == 1
    assert value(m, "sidecar_quota_refusals_total", limit="tenant_tokens_day") == 1
    assert ledger.records[0].route == "unknown"


async def test_a_call_without_a_model_is_labelled_with_the_default_route(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()

    def refuse(call: Call) -> AsyncGenerator[Chunk, None]:
        raise ProvidersUnavailableError("down")

    with pytest.raises(ProvidersUnavailableError):
        await drain(layer(refuse, m, ledger, clock), make_call(clock, model=""))
    assert ledger.records[0].route == "chat"  # routes[0] is the default route


async def test_resource_exhausted_without_a_limit_is_not_a_quota_refusal(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()
    err = UserKeyRateLimitedError("your key is rate limited")
    with pytest.raises(UserKeyRateLimitedError):
        await drain(layer(scripted(clock, fail_after=0, error=err), m, ledger, clock), make_call(clock))
    assert "sidecar_quota_refusals_total" not in {s.name for f in m.registry.collect() for s in f.samples}


async def test_error_after_the_first_chunk(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()
    err = ProvidersUnavailableError("broke")
    out: list[str] = []
    with pytest.raises(ProvidersUnavailableError):
        async for chunk in layer(scripted(clock, fail_after=1, error=err), m, ledger, clock)(
            make_call(clock)
        ):
            out.append(chunk.text)
    assert out == ["hello "]
    assert ledger.records[0].outcome == "PROVIDERS_UNAVAILABLE"


async def test_caller_closing_the_stream_is_a_cancellation(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()
    stream = layer(scripted(clock), m, ledger, clock)(make_call(clock, model="chat"))
    assert (await anext(stream)).text == "hello "
    await stream.aclose()
    labels = {"route": "chat", "provider": "openai", "model": "gpt-x", "stream": "true", "code": "CANCELLED"}
    assert value(m, "sidecar_requests_total", **labels) == 1
    assert ledger.records[0].outcome == "CANCELLED"
    assert value(m, "sidecar_in_flight_calls") == 0


async def test_task_cancellation_is_recorded(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()
    started = asyncio.Event()

    async def hang(call: Call) -> AsyncGenerator[Chunk, None]:
        started.set()
        await asyncio.Event().wait()
        yield Chunk()

    task = asyncio.ensure_future(drain(layer(hang, m, ledger, clock), make_call(clock, model="chat")))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ledger.records[0].outcome == "CANCELLED"
    assert value(m, "sidecar_in_flight_calls") == 0


async def test_retries_fallbacks_and_hedges_come_from_the_attempts(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()

    async def inner(call: Call) -> AsyncGenerator[Chunk, None]:
        call.record.served_by(TARGET)
        for attempt in [
            Attempt("d1", "openai", "PROVIDER_UNAVAILABLE", 0.1),
            Attempt("d1", "openai", "PROVIDER_UNAVAILABLE", 0.1),  # retry
            Attempt("d2", "openai", "HEDGE_LOST", 0.1, hedge=True),  # a hedge raced and lost
            Attempt("d3", "openai", "OK", 0.1),  # fallback
        ]:
            call.record.attempt_ended(attempt)
        yield Chunk(text="x", finish_reason=FinishReason.STOP)

    await drain(layer(inner, m, ledger, clock), make_call(clock, model="chat"))
    assert value(m, "sidecar_retries_total", route="chat") == 1
    assert value(m, "sidecar_fallbacks_total", route="chat") == 1
    assert value(m, "sidecar_hedges_total", route="chat") == 1


async def test_cache_hits_count_and_cost_nothing(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()

    async def cached(call: Call) -> AsyncGenerator[Chunk, None]:
        call.record.answered_from_cache(TARGET, FinishReason.STOP, Usage(10, 5))
        call.record.persona_applied("mr-blue", 0)
        yield Chunk(text="x", finish_reason=FinishReason.STOP)

    await drain(layer(cached, m, ledger, clock), make_call(clock, model="chat"))
    assert value(m, "sidecar_cache_served_total", route="chat") == 1
    assert ledger.records[0].cache_hit and ledger.records[0].cost_usd == 0
    assert ledger.records[0].persona == "mr-blue"


async def test_unary_calls_have_no_time_to_first_token(clock: FakeClock) -> None:
    m, ledger = Metrics(), Ledger()
    await drain(layer(scripted(clock), m, ledger, clock), make_call(clock, model="chat", stream=False))
    assert "gen_ai_server_time_to_first_token_seconds_count" not in {
        s.name for f in m.registry.collect() for s in f.samples if s.value
    }


async def test_span_tree_and_genai_attributes(clock: FakeClock) -> None:
    exporter = InMemorySpanExporter()
    tracing = build_tracing(TracingConfig(enabled=True), exporters=(exporter,))

    async def inner(call: Call) -> AsyncGenerator[Chunk, None]:
        with tracing.span("attempt d1"):
            pass
        call.record.served_by(TARGET)
        call.record.upstream_finished(FinishReason.STOP, Usage(10, 5))
        yield Chunk(text="secret prompt echo", finish_reason=FinishReason.STOP)

    call = dataclasses.replace(make_call(clock, model="chat", text="my secret prompt"))
    await drain(layer(inner, Metrics(), Ledger(), clock, tracing), call)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"chat chat", "attempt d1"}
    root, child = spans["chat chat"], spans["attempt d1"]
    assert child.parent is not None and child.parent.span_id == root.context.span_id
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-x"
    assert attrs["gen_ai.usage.input_tokens"] == 10 and attrs["gen_ai.usage.output_tokens"] == 5
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert "secret" not in repr(attrs)  # no prompt or completion text unless enabled


async def test_content_is_captured_only_when_enabled(clock: FakeClock) -> None:
    exporter = InMemorySpanExporter()
    tracing = build_tracing(TracingConfig(enabled=True), capture_content=True, exporters=(exporter,))
    await drain(
        layer(scripted(clock), Metrics(), Ledger(), clock, tracing), make_call(clock, text="my prompt")
    )
    [span] = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert "my prompt" in str(attrs["gen_ai.input.messages"])
    assert attrs["gen_ai.output.messages"] == "hello world"


async def test_failed_call_span_has_error_status(clock: FakeClock) -> None:
    exporter = InMemorySpanExporter()
    tracing = build_tracing(TracingConfig(enabled=True), exporters=(exporter,))
    err = ProvidersUnavailableError("down")
    with pytest.raises(ProvidersUnavailableError):
        await drain(
            layer(scripted(clock, fail_after=0, error=err), Metrics(), Ledger(), clock, tracing),
            make_call(clock),
        )
    [span] = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert dict(span.attributes or {})["error.type"] == "PROVIDERS_UNAVAILABLE"


async def test_unauthenticated_calls_are_not_recorded_under_the_tenant_they_claim(clock: FakeClock) -> None:
    """Defect 12: a refused caller's tenant, user and labels are claims; the record keeps none."""
    from pydantic import SecretStr

    from sidecar.pipeline.authn import AuthnLayer, TokenVerifier

    m, ledger = Metrics(), Ledger()
    authn = AuthnLayer(scripted(clock), verifier=TokenVerifier(SecretStr("right-token")))
    call = dataclasses.replace(make_call(clock, model="chat", token="wrong"), metadata={"team": "blue"})
    with pytest.raises(SidecarError):
        await drain(layer(authn, m, ledger, clock), call)
    [record] = ledger.records
    assert (record.tenant, record.user, dict(record.metadata)) == ("", "", {})
    assert record.outcome == "INVALID_CREDENTIALS"


async def test_metadata_reaches_the_usage_record_and_the_logs_never_the_metrics(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import logging

    from sidecar.telemetry.logging import JsonFormatter

    m, ledger = Metrics(), Ledger()
    call = dataclasses.replace(make_call(clock, model="chat"), metadata={"team": "blue-canary"})
    lines: list[str] = []

    async def inner(c: Call) -> AsyncGenerator[Chunk, None]:
        logging.getLogger("sidecar.test").warning("something happened")
        lines.append(JsonFormatter().format(caplog.records[-1]))
        yield Chunk(text="x", finish_reason=FinishReason.STOP)

    with caplog.at_level(logging.WARNING):
        await drain(layer(inner, m, ledger, clock), call)
    assert dict(ledger.records[0].metadata) == {"team": "blue-canary"}
    assert json.loads(lines[0])["metadata"] == {"team": "blue-canary"}
    samples = [s for f in m.registry.collect() for s in f.samples]
    assert not any("blue-canary" in str(s.labels) for s in samples)


@pytest.mark.parametrize(("late", "expected"), [(True, "DEADLINE_EXCEEDED"), (False, "CANCELLED")])
async def test_a_cancellation_at_the_callers_deadline_is_recorded_as_deadline_exceeded(
    clock: FakeClock, late: bool, expected: str
) -> None:
    """gRPC cancels the handler when the caller's deadline passes: the metrics and the ledger say
    DEADLINE_EXCEEDED (the caller's), not CANCELLED; a cancellation before the deadline stays CANCELLED."""
    m, ledger = Metrics(), Ledger()
    entered = asyncio.Event()

    async def hanging(call: Call) -> AsyncGenerator[Chunk, None]:
        entered.set()
        await asyncio.Event().wait()
        yield Chunk()

    task = asyncio.create_task(
        drain(layer(hanging, m, ledger, clock), make_call(clock, model="chat", timeout=0.3))
    )
    await entered.wait()
    if late:
        clock.advance(0.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert ledger.records[0].outcome == expected


async def test_a_nested_call_does_not_take_over_the_log_context_of_its_call(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A call made inside a call's task (a rolling summary written before or after the answer)
    passes the observe layer too: the outer call's lines after it keep the outer request id and
    still mask the outer call's prompt (which the nested call's messages do not contain)."""
    import json
    import logging

    from sidecar.telemetry.logging import REDACTED, JsonFormatter

    m, ledger = Metrics(), Ledger()
    prompt = "OUTER-CANARY the caller's own question"
    outer = dataclasses.replace(make_call(clock, model="chat", text=prompt), request_id="req-outer")
    summarize = make_call(clock, model="chat", text="summarize this")
    nested = dataclasses.replace(summarize, request_id="req-nested")
    lines: list[str] = []

    async def summary(c: Call) -> AsyncGenerator[Chunk, None]:
        yield Chunk(text="a summary", finish_reason=FinishReason.STOP)

    async def inner(c: Call) -> AsyncGenerator[Chunk, None]:
        await drain(layer(summary, m, ledger, clock), nested)  # the nested call, in this task
        logging.getLogger("sidecar.test").warning("upstream said: %s", prompt)
        lines.append(JsonFormatter().format(caplog.records[-1]))
        yield Chunk(text="x", finish_reason=FinishReason.STOP)

    with caplog.at_level(logging.WARNING):
        await asyncio.create_task(drain(layer(inner, m, ledger, clock), outer))  # a task: its own context
    entry = json.loads(lines[0])
    assert entry["request_id"] == "req-outer"
    assert entry["message"] == f"upstream said: {REDACTED}"


async def test_the_cost_counter_adds_the_micro_dollars_the_summary_reports(clock: FakeClock) -> None:
    """17 prompt and 6 output tokens at gpt-4o-mini's prices cost 6.15 micro-dollars: the summary
    says 6, the quota charged 6, GetUsage adds 6; sidecar_cost_usd_total added 6.15e-6, so over a
    day of calls its increase() disagreed with the sum of what the callers were told and charged."""
    from sidecar.api.convert import micros

    mini = Target("chat", "d1", "openai", "mini", Price(input_per_million=0.15, output_per_million=0.6))

    async def inner(call: Call) -> AsyncGenerator[Chunk, None]:
        call.record.served_by(mini)
        call.record.upstream_finished(FinishReason.STOP, Usage(17, 6))
        yield Chunk(text="hello", finish_reason=FinishReason.STOP, usage=Usage(17, 6))

    m = Metrics()
    call = make_call(clock, model="chat", stream=False)
    await drain(layer(inner, m, Ledger(), clock), call)
    counted = value(m, "sidecar_cost_usd_total", route="chat", provider="openai", model="mini")
    assert round(counted * 1e6, 9) == micros(call.record.cost_usd) == 6
