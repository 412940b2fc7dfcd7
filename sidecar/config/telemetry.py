"""The observability part of Settings: the metrics port, label opt-ins, the usage ledger, tracing, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from sidecar.config.model import ConfigModel, HostPort


class MetricsConfig(ConfigModel):
    """Prometheus `/metrics` on its own HTTP port. No tenant or user label unless allow-listed."""

    enabled: bool = True
    address: HostPort = Field(default="127.0.0.1:9464", description="host:port of /metrics; port 0 = any")
    tenant_label_allow: list[str] = Field(
        default_factory=list,
        description="tenants that get their own series in sidecar_tenant_*; all others are `other`",
    )
    user_label_allow: list[str] = Field(
        default_factory=list, description="users that get their own series; all others are `other`"
    )
    max_label_series: int = Field(
        default=100, ge=1, le=100_000, description="cap on distinct opted-in label values, whatever the lists"
    )


class LedgerConfig(ConfigModel):
    """The usage ledger: one record per finished call, written off the request path in batches."""

    backend: Literal["none", "sqlite", "postgres"] = "sqlite"
    sqlite_path: Path = Path("sidecar-usage.db")
    postgres_url: str | None = Field(
        default=None, pattern=r"^postgres(ql)?://\S+$", description="the PostgreSQL several sidecars share"
    )
    retention_days: float = Field(default=90.0, gt=0, le=36_500, description="older records are deleted")
    queue_size: int = Field(default=10_000, ge=1, le=10_000_000, description="records waiting; beyond: drop")
    batch_size: int = Field(default=500, ge=1, le=100_000)
    flush_interval_seconds: float = Field(
        default=0.5, gt=0, le=60, description="records gather this long before a write (one commit)"
    )
    timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="PostgreSQL: bound on each operation (connecting, a write, a query); past it the "
        "operation fails (a write drops its batch, GetUsage answers LEDGER_UNAVAILABLE)",
    )

    @model_validator(mode="after")
    def _postgres_needs_url(self) -> LedgerConfig:
        if self.backend == "postgres" and self.postgres_url is None:
            raise ValueError("backend 'postgres' needs `postgres_url` (postgresql://USER@HOST:PORT/DB)")
        return self


class TracingConfig(ConfigModel):
    """OpenTelemetry spans per call; exported over OTLP/HTTP when an endpoint is set."""

    enabled: bool = False
    otlp_endpoint: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="e.g. http://collector:4318/v1/traces"
    )
    service_name: str = Field(default="orchestrator-sidecar", min_length=1, max_length=128)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    export_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="one OTLP export with its retries; bounds the flush at shutdown"
    )


class ContentCapture(ConfigModel):
    """Prompt and completion text is never recorded unless turned on here (debugging only)."""

    spans: bool = False
    logs: bool = False


class TelemetrySettings(ConfigModel):
    metrics: MetricsConfig = MetricsConfig()
    ledger: LedgerConfig = LedgerConfig()
    tracing: TracingConfig = TracingConfig()
    capture_content: ContentCapture = ContentCapture()
