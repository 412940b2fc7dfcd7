"""The telemetry a server owns: its metrics registry and /metrics server, the ledger writer, tracing."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sidecar.config.telemetry import TelemetrySettings
from sidecar.core.clock import Clock
from sidecar.ledger.stores import build_store
from sidecar.ledger.writer import LedgerPolicy, LedgerWriter
from sidecar.telemetry.metrics import Metrics
from sidecar.telemetry.server import MetricsServer
from sidecar.telemetry.tracing import Tracing, build_tracing

_log = logging.getLogger("sidecar.telemetry")
DAY = 86_400.0


@dataclass(frozen=True)
class Telemetry:
    metrics: Metrics
    server: MetricsServer | None
    ledger: LedgerWriter | None
    tracing: Tracing

    async def start(self) -> None:
        if self.ledger is not None:
            await self.ledger.start()
        if self.server is not None:
            await self.server.start()

    async def stop(self) -> None:
        """Flush the ledger and the spans, stop /metrics; each step runs even if another fails."""
        for step in (self._stop_ledger, self.tracing.shutdown, self._stop_server):
            try:
                await step()
            except Exception:
                _log.exception("telemetry shutdown step failed")

    async def _stop_ledger(self) -> None:
        if self.ledger is not None:
            await self.ledger.stop()

    async def _stop_server(self) -> None:
        if self.server is not None:
            await self.server.stop()


def build_telemetry(
    settings: TelemetrySettings, clock: Clock, *, span_exporters: tuple[Any, ...] = ()
) -> Telemetry:
    m = settings.metrics
    metrics = Metrics(
        tenant_allow=m.tenant_label_allow, user_allow=m.user_label_allow, max_label_series=m.max_label_series
    )
    tracing = build_tracing(
        settings.tracing,
        capture_content=settings.capture_content.spans,
        exporters=span_exporters,
        signals=metrics,
        clock=clock,
    )
    return Telemetry(
        metrics=metrics,
        server=MetricsServer(metrics.registry, m.address, clock=clock) if m.enabled else None,
        ledger=build_ledger(settings, clock, metrics),
        tracing=tracing,
    )


def build_ledger(settings: TelemetrySettings, clock: Clock, metrics: Metrics) -> LedgerWriter | None:
    c = settings.ledger
    store = build_store(c, clock)
    if store is None:
        return None
    policy = LedgerPolicy(
        queue_size=c.queue_size,
        batch_size=c.batch_size,
        retention_seconds=c.retention_days * DAY,
        flush_interval_seconds=c.flush_interval_seconds,
    )
    return LedgerWriter(store, policy, clock=clock, signals=metrics)
