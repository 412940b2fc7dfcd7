"""The ledger store a configuration names (each backend imported only when configured)."""

from __future__ import annotations

from sidecar.config.telemetry import LedgerConfig
from sidecar.core.clock import Clock
from sidecar.ledger.record import LedgerStore


def build_store(c: LedgerConfig, clock: Clock) -> LedgerStore | None:
    """The SQLite or PostgreSQL store of `c`; None for backend `none`."""
    if c.backend == "sqlite":
        from sidecar.ledger.sqlite import SqliteLedger

        return SqliteLedger(c.sqlite_path)
    if c.backend == "postgres" and c.postgres_url is not None:
        from sidecar.ledger.postgres import PostgresLedger

        return PostgresLedger(c.postgres_url, clock=clock, timeout=c.timeout_seconds)
    return None
