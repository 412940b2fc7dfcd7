"""Tracing: off costs nothing and sends nothing; on, W3C context goes out; OTLP needs its extra."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sidecar.config.telemetry import TracingConfig
from sidecar.core.errors import KeyBackendUnavailableError
from sidecar.telemetry.tracing import Tracing, build_tracing, current, inject_trace_context


def test_disabled_tracing_makes_no_spans_and_no_headers() -> None:
    tracing = build_tracing(TracingConfig(enabled=False))
    assert not tracing.enabled and tracing.start("x") is None
    with tracing.span("y") as span:
        assert span is None
    headers: dict[str, str] = {}
    inject_trace_context(headers)
    assert headers == {}


def test_current_span_goes_out_as_traceparent() -> None:
    exporter = InMemorySpanExporter()
    tracing = build_tracing(TracingConfig(enabled=True), exporters=(exporter,))
    span = tracing.start("attempt")
    assert span is not None
    headers: dict[str, str] = {}
    with current(span):
        inject_trace_context(headers)
    span.end()
    ctx = span.get_span_context()
    assert headers["traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def test_sampling_ratio_zero_records_nothing() -> None:
    exporter = InMemorySpanExporter()
    tracing = build_tracing(TracingConfig(enabled=True, sample_ratio=0.0), exporters=(exporter,))
    with tracing.span("x"):
        pass
    assert exporter.get_finished_spans() == ()


def test_otlp_without_its_extra_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    # a None entry makes the import fail as if the extra were not installed
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(RuntimeError, match=r"orchestrator-sidecar\[otlp\]"):
        build_tracing(TracingConfig(enabled=True, otlp_endpoint="http://127.0.0.1:4318/v1/traces"))


def test_disabled_is_the_default() -> None:
    assert Tracing.disabled().capture_content is False


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RuntimeError("vault said: permission denied for token hvs.CANARY-7f3a9c2e1b"), "RuntimeError"),
        (KeyBackendUnavailableError("key backend failed: hvs.CANARY-7f3a9c2e1b"), "KEY_BACKEND_UNAVAILABLE"),
    ],
)
def test_a_failed_block_is_marked_by_its_classification_never_its_text(error: Exception, kind: str) -> None:
    """A key backend's or an upstream's raw error (and what it chains) may quote a credential: the
    span carries what kind of failure it was, not its message or stack."""
    exporter = InMemorySpanExporter()
    tracing = build_tracing(TracingConfig(enabled=True), exporters=(exporter,))
    with pytest.raises(type(error)), tracing.span("sidecar.key.decrypt"):
        try:
            raise ValueError("inner: sk-CANARY-0123456789abcdef")
        except ValueError as inner:
            raise error from inner
    (span,) = exporter.get_finished_spans()
    exported = repr((span.attributes, span.events, span.status.description, span.to_json()))
    assert "CANARY" not in exported
    assert span.attributes is not None and span.attributes["error.type"] == kind
    assert not span.status.is_ok and span.status.description == kind
