"""GetUsage aggregates on the SQLite ledger (the same checks run on PostgreSQL in integration)."""

from __future__ import annotations

from pathlib import Path

from sidecar.ledger.sqlite import SqliteLedger
from tests.support.ledger import check_aggregates


async def test_aggregates(tmp_path: Path) -> None:
    store = SqliteLedger(tmp_path / "usage.db")
    await store.open()
    try:
        await check_aggregates(store)
    finally:
        await store.aclose()


async def test_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    store = SqliteLedger(tmp_path / "usage.db")
    await store.open()
    await store.aclose()
    with sqlite3.connect(tmp_path / "usage.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
