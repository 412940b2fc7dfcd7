"""The embedded ledger: an SQLite file in WAL mode, on the shared one-thread connection
(sidecar/stores/sqlite.py); the schema is created, and older files migrated, when it opens.

The reports (GetUsage, experiment rows) read on a second connection and thread of their own: WAL
lets readers and the one writer work at once, so a report over a large ledger (seconds) does not
hold up the writing of usage records behind it (the writer's queue would fill and drop them)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
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
from sidecar.stores.sqlite import MEMORY, SqliteThread, create_owner_only

T = TypeVar("T")
_log = logging.getLogger("sidecar.ledger.sqlite")
WAL_SIZE_LIMIT = 16 * 1024 * 1024  # bytes the -wal file is cut back to after a checkpoint
_DAY = "strftime('%Y-%m-%d', ts, 'unixepoch')"


class SqliteLedger:
    """LedgerStore on an SQLite file (created owner-only); the schema is created on open."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._thread = SqliteThread("sqlite-ledger", self._connect)
        # ":memory:" is a database per connection: its reads stay on the one connection
        self._reader = (
            self._thread if self._path == MEMORY else SqliteThread("sqlite-ledger-read", self._connect_reader)
        )
        self._reading: sqlite3.Connection | None = None  # the reader's connection, once made
        self._read_lock = threading.Lock()  # guards which report is running (an interrupt stops it)
        self._running: object | None = None

    async def open(self) -> None:
        await self._run(lambda conn: None)

    async def write(self, records: Sequence[UsageRecord]) -> None:
        rows = [sql.row(r) for r in records]
        await self._run(lambda conn: _write(conn, rows))

    async def usage(self, query: UsageQuery) -> list[UsageGroup]:
        text, args = sql.usage(query, lambda i: "?", _DAY)
        return sql.groups(await self._read(lambda conn: conn.execute(text, args).fetchall()))

    async def delete_before(self, cutoff: float, limit: int | None = None) -> int:
        return await self._run(lambda conn: _delete_before(conn, cutoff, limit))

    async def feedback(self, tenant: str, request_id: str, score: float, label: str) -> FeedbackResult:
        def work(conn: sqlite3.Connection) -> FeedbackResult:
            args = (score, label, tenant, request_id)
            stored = _changed(conn, experiment_sql.feedback(lambda i: f"?{i}", "rowid"), args) > 0
            found = conn.execute(experiment_sql.feedback_of(lambda i: "?"), (tenant, request_id)).fetchone()
            return experiment_sql.feedback_result(stored, found, score, label)

        return await self._run(work)

    async def experiment_rows(
        self, experiment: str, start: float, end: float, tenant: str | None = None, limit: int | None = None
    ) -> list[ExperimentRow]:
        text, extra = experiment_sql.rows(lambda i: "?", tenant, limit)
        found = await self._read(lambda conn: conn.execute(text, (experiment, start, end, *extra)).fetchall())
        return experiment_sql.experiment_rows(found)

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        rows = [experiment_sql.audit_row(e) for e in entries]
        text = experiment_sql.insert_audit(lambda i: "?")
        await self._run(lambda conn: conn.executemany(text, rows))

    async def aclose(self) -> None:
        """Close after every operation already handed over (each thread runs them in order). A report
        still reading is interrupted (its caller was cut by the drain already): the sidecar's stop
        does not wait seconds for its query."""
        if self._reading is not None:
            self._reading.interrupt()  # made for another thread to call
        await self._reader.aclose()
        await self._thread.aclose()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._thread.run(work)

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """A report on the reader's thread. One whose caller left (cancelled: its deadline passed)
        is interrupted if its query runs, so the reports after it do not wait behind it; one not
        started yet is never run."""
        me = object()

        def report(conn: sqlite3.Connection) -> T:
            with self._read_lock:
                self._running = me
            try:
                return work(conn)
            finally:
                with self._read_lock:
                    self._running = None
                self._cut_wal(conn)

        try:
            return await self._reader.run(report)
        except asyncio.CancelledError:
            with self._read_lock:
                if self._running is me and self._reading is not None:
                    self._reading.interrupt()
            raise

    def _cut_wal(self, conn: sqlite3.Connection) -> None:
        """After a report, on the reader's thread (so the next report has not begun): a -wal file past
        the limit is checkpointed and truncated. While reports run back to back some reader always
        holds a snapshot, the writer's own checkpoints can never restart the WAL, and the file grew
        without end (0.7 MB a second at 400 records a second). The checkpoint waits for the writer's
        transaction in progress, then holds new writes for as long as it copies (milliseconds for
        the limit's 16 MB); the writer's queue absorbs that."""
        if self._path == MEMORY:
            return
        try:
            size = os.path.getsize(self._path + "-wal")
        except OSError:
            return
        if size > WAL_SIZE_LIMIT:
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as e:  # busy past the timeout, or interrupted by aclose: next report
                _log.warning("ledger WAL checkpoint failed", extra={"error": str(e), "wal_bytes": size})

    def _connect(self) -> sqlite3.Connection:
        """On the thread, at the first operation: the connection, with the schema and migrations.
        One that cannot be set up (a full disk, a file that is not a database) is closed: the
        writer tries again every 30 s, and a connection left open by each try adds up."""
        create_owner_only(self._path)
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            _set_up(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        """On the reader's thread, at the first report: a connection that only reads (the writer's
        connection, opened first by `open`, made the schema)."""
        conn = sqlite3.connect(self._path, isolation_level=None)
        conn.execute("PRAGMA query_only=ON")
        self._reading = conn
        return conn


def _set_up(conn: sqlite3.Connection) -> None:
    """WAL, the schema, and the columns a ledger file made by an older sidecar lacks."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # Reports read on their own connection, and while one runs a checkpoint cannot reset the WAL;
    # the reader truncates it after a report once it passes WAL_SIZE_LIMIT (`_cut_wal`). Between
    # reports, the writer's own checkpoints cut the file back to this.
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    for statement in sql.create_table("REAL", "INTEGER"):
        conn.execute(statement)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(usage_records)")}
    if "metadata" not in columns:  # a ledger file from before the metadata column
        conn.execute(f"ALTER TABLE usage_records ADD COLUMN {sql.METADATA_COLUMN}")
    if "cost_micros" not in columns:  # a ledger file from before the integer cost
        conn.execute(f"ALTER TABLE usage_records ADD COLUMN {sql.COST_MICROS_COLUMN}")
    for name, definition in experiment_sql.added_columns("REAL"):
        if name not in columns:  # a ledger file from before experiments
            conn.execute(f"ALTER TABLE usage_records ADD COLUMN {definition}")
    for statement in experiment_sql.create_extras("REAL"):
        conn.execute(statement)


def _write(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    with conn:
        conn.execute("BEGIN")
        conn.executemany(sql.insert(lambda i: "?"), rows)


def _changed(conn: sqlite3.Connection, text: str, args: tuple[object, ...]) -> int:
    with conn:
        return conn.execute(text, args).rowcount


def _delete_before(conn: sqlite3.Connection, cutoff: float, limit: int | None) -> int:
    with conn:
        if limit is None:
            return conn.execute("DELETE FROM usage_records WHERE ts < ?", (cutoff,)).rowcount
        chosen = "SELECT rowid FROM usage_records WHERE ts < ? LIMIT ?"
        return conn.execute(f"DELETE FROM usage_records WHERE rowid IN ({chosen})", (cutoff, limit)).rowcount
