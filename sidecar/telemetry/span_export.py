"""Spans on their way to an OTLP collector: bounded, counted, and a failing collector logged once.

The SDK's batch processor drops spans when its queue is full and its OTLP exporter fails batches
without counting either anywhere an operator looks; the exporter logs an ERROR for every failed batch
and a WARNING for every retry (a collector down for an hour is thousands of lines per sidecar). Here:

- `SpanBacklog` holds spans ended and not yet handed to the exporter to the processor's queue size:
  a span past it is dropped here and counted (`queue_full`), so the SDK's own uncounted drop never
  happens;
- `CountingExporter` wraps the OTLP exporter: each batch is counted as exported or dropped
  (`export_failed`); the first failure of an episode is logged (ERROR, with the exporter's own
  message), the next success too (WARNING, with the spans dropped meanwhile), nothing between. The
  exporter's own lines are taken from its logger (a filter for the exporting thread) instead;
- at shutdown the batches still queued get one export timeout in all (`shutdown_within`): past it
  they are dropped and counted (`shutdown`) instead of each waiting for a collector that does not
  answer.

Only imported when tracing exports over OTLP (opentelemetry is loaded by then).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from sidecar.core.clock import Clock

_log = logging.getLogger("sidecar.tracing")
# The loggers the OTLP/HTTP exporter writes a line per failed batch and per retry to.
EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.exporter.otlp")


class SpanSignals(Protocol):
    """The metrics the export reports to (telemetry.metrics.Metrics)."""

    def spans_exported(self, spans: int) -> None: ...

    def spans_dropped(self, cause: str, spans: int) -> None: ...


class NoSignals:
    """Signals nobody reads (tracing built without metrics)."""

    def spans_exported(self, spans: int) -> None:
        pass

    def spans_dropped(self, cause: str, spans: int) -> None:
        pass


class SpanBacklog:
    """Spans ended and not yet taken by the exporter, at most `limit` (thread-safe: spans end on the
    event loop, batches are taken on the processor's thread)."""

    def __init__(self, limit: int) -> None:
        self.limit, self._held, self._lock = limit, 0, threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            if self._held >= self.limit:
                return False
            self._held += 1
            return True

    def taken(self, spans: int) -> None:
        with self._lock:
            self._held = max(0, self._held - spans)

    @property
    def held(self) -> int:
        return self._held


class BoundedBatchProcessor(BatchSpanProcessor):
    """The SDK's batch processor behind a counted bound of its own queue size."""

    def __init__(
        self, exporter: CountingExporter, signals: SpanSignals, *, max_queue_size: int, **kwargs: Any
    ) -> None:
        super().__init__(exporter, max_queue_size=max_queue_size, **kwargs)
        self._backlog, self._signals, self._full = exporter.backlog, signals, False

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context.trace_flags.sampled:
            return
        if not self._backlog.admit():
            self._signals.spans_dropped("queue_full", 1)
            if not self._full:
                self._full = True
                _log.error("span queue full: spans are dropped and counted, not logged, until it drains")
            return
        if self._full and self._backlog.held < self._backlog.limit // 2:
            self._full = False  # drained to half: the next time it fills is a new episode
        super().on_end(span)


class CountingExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, signals: SpanSignals, *, queue_size: int, clock: Clock) -> None:
        self._inner, self._signals, self._clock = inner, signals, clock  # its monotonic() is thread-safe
        self.backlog = SpanBacklog(queue_size)
        self._failing = False
        self._dropped = 0  # spans of failed exports since the episode began
        self._deadline: float | None = None  # set by shutdown_within: later batches are dropped
        self._exporting: int | None = None  # the thread exporting now (its exporter lines are ours)
        self._said: str | None = None  # what the exporter logged during this export
        self._capture = _Capture(self)
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(self._capture)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.backlog.taken(len(spans))
        if self._deadline is not None and self._clock.monotonic() >= self._deadline:
            self._signals.spans_dropped("shutdown", len(spans))
            return SpanExportResult.FAILURE
        self._exporting, self._said = threading.get_ident(), None
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # an exporter bug must not end the processor's thread
            self._said, result = f"{type(exc).__name__}: {exc}", SpanExportResult.FAILURE
        finally:
            self._exporting = None
        if result is SpanExportResult.SUCCESS:
            self._signals.spans_exported(len(spans))
            if self._failing:
                _log.warning("trace export succeeds again", extra={"dropped_spans": self._dropped})
                self._failing, self._dropped = False, 0
            return result
        self._signals.spans_dropped("export_failed", len(spans))
        self._dropped += len(spans)
        if not self._failing:
            self._failing = True
            _log.error(
                "trace export failed; more failures are counted, not logged, until an export succeeds",
                extra={"spans": len(spans), "error": self._said or "unknown"},
            )
        return result

    def shutdown_within(self, seconds: float) -> None:
        """From now, batches not started within `seconds` are dropped (counted), not exported."""
        self._deadline = self._clock.monotonic() + seconds

    def shutdown(self) -> None:
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).removeFilter(self._capture)
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def took(self, record: logging.LogRecord) -> bool:
        """Whether the record is the exporter's line about this exporter's export (kept for the
        episode's one line instead of written)."""
        if record.thread != self._exporting:
            return False
        if self._said is None:  # the first says why (refused, 500, 429); the last only that it gave up
            self._said = record.getMessage()[:300]
        return True


class _Capture(logging.Filter):
    def __init__(self, owner: CountingExporter) -> None:
        super().__init__()
        self._owner = owner

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._owner.took(record)
