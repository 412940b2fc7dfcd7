"""The embedded ledger: an SQLite file in WAL mode, used from one dedicated thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from sidecar.ledger import experiment_sql, sql
from sidecar.ledger.record import (
    AuditEntry,
    ExperimentRow,
    FeedbackResult,
    UsageGroup,
    UsageQuery,
    UsageRecord,
)

T = TypeVar("T")
_DAY = "strftime('%Y-%m-%d', ts, 'unixepoch')"


class SqliteLedger:
    """LedgerStore on an SQLite file; the schema is created on open."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-ledger")
        self._conn: sqlite3.Connection | None = None  # opened and used only on the executor's thread

    async def open(self) -> None:
        await self._run(lambda conn: None)

    async def write(self, records: Sequence[UsageRecord]) -> None:
        rows = [sql.row(r) for r in records]
        await self._run(lambda conn: _write(conn, rows))

    async def usage(self, query: UsageQuery) -> list[UsageGroup]:
        text, args = sql.usage(query, lambda i: "?", _DAY)
        return sql.groups(await self._run(lambda conn: conn.execute(text, args).fetchall()))

    async def delete_before(self, cutoff: float) -> int:
        return await self._run(lambda conn: _delete_before(conn, cutoff))

    async def feedback(self, tenant: str, request_id: str, score: float, label: str) -> FeedbackResult:
        def work(conn: sqlite3.Connection) -> FeedbackResult:
            args = (score, label, tenant, request_id)
            stored = _changed(conn, experiment_sql.feedback(lambda i: "?"), args) > 0
            found = conn.execute(experiment_sql.feedback_of(lambda i: "?"), (tenant, request_id)).fetchone()
            return experiment_sql.feedback_result(stored, found, score, label)

        return await self._run(work)

    async def experiment_rows(
        self, experiment: str, start: float, end: float, tenant: str | None = None, limit: int | None = None
    ) -> list[ExperimentRow]:
        text, extra = experiment_sql.rows(lambda i: "?", tenant, limit)
        found = await self._run(lambda conn: conn.execute(text, (experiment, start, end, *extra)).fetchall())
        return experiment_sql.experiment_rows(found)

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        rows = [experiment_sql.audit_row(e) for e in entries]
        text = experiment_sql.insert_audit(lambda i: "?")
        await self._run(lambda conn: conn.executemany(text, rows))

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._on_thread, work)

    def _close(self) -> None:
        if self._conn is not None:  # never opened: nothing to create just to close it
            self._conn.close()
            self._conn = None

    def _on_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            for statement in sql.create_table("REAL", "INTEGER"):
                self._conn.execute(statement)
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(usage_records)")}
            if "metadata" not in columns:  # a ledger file from before the metadata column
                self._conn.execute(f"ALTER TABLE usage_records ADD COLUMN {sql.METADATA_COLUMN}")
            for name, definition in experiment_sql.added_columns("REAL"):
                if name not in columns:  # a ledger file from before experiments
                    self._conn.execute(f"ALTER TABLE usage_records ADD COLUMN {definition}")
            for statement in experiment_sql.create_extras("REAL"):
                self._conn.execute(statement)
        return work(self._conn)


def _write(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    with conn:
        conn.execute("BEGIN")
        conn.executemany(sql.insert(lambda i: "?"), rows)


def _changed(conn: sqlite3.Connection, text: str, args: tuple[object, ...]) -> int:
    with conn:
        return conn.execute(text, args).rowcount


def _delete_before(conn: sqlite3.Connection, cutoff: float) -> int:
    with conn:
        return conn.execute("DELETE FROM usage_records WHERE ts < ?", (cutoff,)).rowcount
