"""OpenTelemetry traces: a span per call with GenAI attributes, child spans, W3C trace context in and out.

Disabled (the default), `Tracing` hands out no spans at all and the server gets no interceptor, so a
call pays nothing, and OpenTelemetry is not even imported (half a megabyte of RSS): every use of it
below is reached only through a span, a tracer or the interceptor, which exist only when enabled.

Enabled, it owns its own SDK TracerProvider (never the process-global one, so several servers in
one process keep their spans apart), exports over OTLP/HTTP when an endpoint is configured (the
exporter package is imported only then), and a gRPC interceptor makes the caller's
`traceparent`/`tracestate` metadata the parent of the call span. The upstream HTTP request carries
the current span as `traceparent` (providers/_http.py calls `inject_trace_context`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import grpc

from sidecar.config.telemetry import TracingConfig
from sidecar.core.clock import Clock, SystemClock
from sidecar.core.errors import SidecarError

if TYPE_CHECKING:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from sidecar.telemetry.span_export import CountingExporter, SpanSignals

_HEADERS = ("traceparent", "tracestate")
SPAN_QUEUE_SIZE = 2048  # spans waiting for the OTLP exporter (the SDK's default); past it: dropped, counted
Attributes = Mapping[str, str | int | float | bool]


class Tracing:
    """Spans for the pipeline; `enabled` False means every method is a cheap no-op."""

    def __init__(
        self,
        tracer: trace.Tracer | None = None,
        provider: Any = None,
        *,
        capture_content: bool = False,
        export: CountingExporter | None = None,
        export_timeout: float = 0.0,
    ):
        self.tracer = tracer
        self.enabled = tracer is not None
        self.capture_content = capture_content and self.enabled
        self._provider = provider
        self._export, self._export_timeout = export, export_timeout

    @classmethod
    def disabled(cls) -> Tracing:
        return cls()

    def start(self, name: str, attributes: Attributes | None = None) -> trace.Span | None:
        """A span, child of the current one; None when tracing is off. The caller ends it."""
        if self.tracer is None:
            return None
        from opentelemetry.trace import SpanKind

        return self.tracer.start_span(name, attributes=attributes, kind=SpanKind.INTERNAL)

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes | None = None) -> Iterator[trace.Span | None]:
        """A child span around a block, current while the block runs. An exception that escapes marks
        it failed by its classification only (`error.type`: the sidecar's reason, else the exception's
        class), never by its text or stack: a key backend's or an upstream's raw error, and what it
        chains, do not leave the process in a span (they may quote a credential)."""
        if self.tracer is None:
            yield None
            return
        with self.tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                yield span
            except Exception as exc:  # a cancellation is not the span's failure
                from opentelemetry.trace import Status, StatusCode

                kind = exc.reason if isinstance(exc, SidecarError) else type(exc).__name__
                span.set_attribute("error.type", kind)
                span.set_status(Status(StatusCode.ERROR, kind))
                raise

    async def shutdown(self) -> None:
        """Flush the spans still batched on a worker thread (a collector that does not answer must
        not stop the event loop meanwhile), within one export timeout for the batches to start (the
        one started last may take its own timeout): the rest are dropped and counted."""
        if self._export is not None:
            self._export.shutdown_within(self._export_timeout)
        if self._provider is not None:
            await asyncio.to_thread(self._provider.shutdown)


def current(span: trace.Span | None) -> contextlib.AbstractContextManager[object]:
    """Make `span` the current span for a block (no-op for None)."""
    if span is None:
        return contextlib.nullcontext()
    from opentelemetry.trace import use_span

    return use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False)


def attach(span: trace.Span | None) -> object | None:
    """Make `span` current until `detach(token)`; for code that cannot use a with-block across yields."""
    if span is None:
        return None
    from opentelemetry import context as otel_context
    from opentelemetry.trace import set_span_in_context

    return otel_context.attach(set_span_in_context(span))


def detach(token: object | None) -> None:
    if token is not None:
        from opentelemetry import context as otel_context

        otel_context.detach(token)  # type: ignore[arg-type]


def inject_trace_context(headers: MutableMapping[str, str]) -> None:
    """Add `traceparent` (and `tracestate`) of the current span, if there is a valid one. With
    OpenTelemetry never imported (tracing off) no span can be current: nothing to look up."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is not None and trace.get_current_span().get_span_context().is_valid:
        _w3c().inject(headers)


@functools.cache
def _w3c() -> TraceContextTextMapPropagator:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def build_tracing(
    config: TracingConfig,
    *,
    capture_content: bool = False,
    exporters: tuple[Any, ...] = (),
    signals: SpanSignals | None = None,
    clock: Clock | None = None,
) -> Tracing:
    """The configured tracing; `exporters` are extra SpanExporters (tests pass an in-memory one);
    `signals` count the spans exported and dropped (telemetry.metrics.Metrics); `clock` times the
    shutdown's one export timeout."""
    if not config.enabled:
        return Tracing.disabled()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
    )
    export = None
    if config.otlp_endpoint is not None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise RuntimeError(
                "tracing.otlp_endpoint needs the OTLP exporter: pip install 'orchestrator-sidecar[otlp]'"
            ) from exc
        from sidecar.telemetry.span_export import BoundedBatchProcessor, CountingExporter, NoSignals

        timeout = config.export_timeout_seconds
        counted = signals or NoSignals()
        inner = OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=timeout)
        export = CountingExporter(inner, counted, queue_size=SPAN_QUEUE_SIZE, clock=clock or SystemClock())
        provider.add_span_processor(
            BoundedBatchProcessor(
                export, counted, max_queue_size=SPAN_QUEUE_SIZE, export_timeout_millis=timeout * 1000
            )
        )
    for exporter in exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("orchestrator-sidecar")
    return Tracing(
        tracer,
        provider,
        capture_content=capture_content,
        export=export,
        export_timeout=config.export_timeout_seconds,
    )


class TraceContextInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Makes the caller's W3C trace context (gRPC metadata) current while its RPC is served."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        carrier = {
            k: v
            for k, v in (handler_call_details.invocation_metadata or ())
            if k in _HEADERS and isinstance(v, str)
        }
        if handler is None or not carrier:
            return handler
        parent = _w3c().extract(carrier)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, parent),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _streaming(handler.unary_stream, parent),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _unary(behavior: Any, parent: otel_context.Context) -> Any:
    from opentelemetry import context as otel_context

    async def run(request: Any, context: Any) -> Any:
        token = otel_context.attach(parent)
        try:
            return await behavior(request, context)
        finally:
            otel_context.detach(token)

    return run


def _streaming(behavior: Any, parent: otel_context.Context) -> Any:
    from opentelemetry import context as otel_context

    if inspect.iscoroutinefunction(behavior):  # it writes its responses itself (context.write)
        return _unary(behavior, parent)

    async def run(request: Any, context: Any) -> AsyncIterator[Any]:
        token = otel_context.attach(parent)
        try:
            async with aclosing(behavior(request, context)) as responses:
                async for response in responses:
                    yield response
        finally:
            otel_context.detach(token)

    return run
