"""The shared ledger: PostgreSQL through asyncpg (imported only when this backend is configured).

Every operation (opening the pool, taking a connection, the statement itself) is bounded by
`timeout` on the injected clock: a database that stops answering (a partition drops packets and
leaves connections open) fails the operation with TimeoutError instead of holding GetUsage, the
writer and the sidecar's shutdown until TCP gives up, hours later. The server bounds each statement
by the same `statement_timeout`: a statement the sidecar gave up on (one waiting for a lock on the
table, a report still running) does not go on in a server process of its own, one more per timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sidecar.core.clock import Clock
from sidecar.ledger import experiment_sql, sql
from sidecar.ledger.record import (
    AuditEntry,
    ExperimentRow,
    FeedbackResult,
    UsageGroup,
    UsageQuery,
    UsageRecord,
)

_DAY = "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _placeholder(i: int) -> str:
    return f"${i}"


async def _create_schema(conn: Any) -> None:
    """The tables, and the columns a ledger made by an older sidecar lacks."""
    for statement in sql.create_table("DOUBLE PRECISION", "BIGINT"):
        await conn.execute(statement)
    await conn.execute(f"ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS {sql.METADATA_COLUMN}")
    await conn.execute(f"ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS {sql.COST_MICROS_COLUMN}")
    for _, definition in experiment_sql.added_columns("DOUBLE PRECISION"):
        await conn.execute(f"ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS {definition}")
    for statement in experiment_sql.create_extras("DOUBLE PRECISION"):
        await conn.execute(statement)


class PostgresLedger:
    """LedgerStore on PostgreSQL; several sidecars may write to one database."""

    def __init__(self, url: str, *, clock: Clock, timeout: float, pool_size: int = 4) -> None:
        self._url, self._clock, self._timeout, self._pool_size = url, clock, timeout, pool_size
        self._statement_timeout = f"SET statement_timeout = {max(1, round(timeout * 1000))}"
        self._pool: Any = None

    async def open(self) -> None:
        import asyncpg

        async with self._clock.timeout(self._timeout):
            self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=self._pool_size)
        try:
            async with self._session() as conn:
                for statement in sql.create_table("DOUBLE PRECISION", "BIGINT"):
                    await conn.execute(statement)
                await conn.execute(
                    f"ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS {sql.METADATA_COLUMN}"
                )
                await conn.execute(
                    f"ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS {sql.COST_MICROS_COLUMN}"
                )
                for _, definition in experiment_sql.added_columns("DOUBLE PRECISION"):
                    await conn.execute(f"ALTER TABLE usage_records ADD COLUMN IF NOT EXISTS {definition}")
                for statement in experiment_sql.create_extras("DOUBLE PRECISION"):
                    await conn.execute(statement)
        except BaseException:  # not open: a later open() starts over with a fresh pool
            pool, self._pool = self._pool, None
            pool.terminate()
            raise

    async def write(self, records: Sequence[UsageRecord]) -> None:
        async with self._session() as conn:
            await conn.executemany(sql.insert(_placeholder), [sql.row(r) for r in records])

    async def usage(self, query: UsageQuery) -> list[UsageGroup]:
        text, args = sql.usage(query, _placeholder, _DAY)
        async with self._session() as conn:
            rows = await conn.fetch(text, *args)
        return sql.groups([tuple(r) for r in rows])

    async def delete_before(self, cutoff: float, limit: int | None = None) -> int:
        chosen = "SELECT ctid FROM usage_records WHERE ts < $1 LIMIT $2"
        async with self._session() as conn:
            if limit is None:
                status = await conn.execute("DELETE FROM usage_records WHERE ts < $1", cutoff)
            else:
                status = await conn.execute(
                    f"DELETE FROM usage_records WHERE ctid = ANY(ARRAY({chosen}))", cutoff, limit
                )
        return int(str(status).rsplit(" ", 1)[-1])

    async def feedback(self, tenant: str, request_id: str, score: float, label: str) -> FeedbackResult:
        async with self._session() as conn:
            status = await conn.execute(
                experiment_sql.feedback(_placeholder, "ctid"), score, label, tenant, request_id
            )
            found = await conn.fetchrow(experiment_sql.feedback_of(_placeholder), tenant, request_id)
        stored = int(str(status).rsplit(" ", 1)[-1]) > 0
        return experiment_sql.feedback_result(stored, None if found is None else tuple(found), score, label)

    async def experiment_rows(
        self, experiment: str, start: float, end: float, tenant: str | None = None, limit: int | None = None
    ) -> list[ExperimentRow]:
        text, extra = experiment_sql.rows(_placeholder, tenant, limit)
        async with self._session() as conn:
            found = await conn.fetch(text, experiment, start, end, *extra)
        return experiment_sql.experiment_rows([tuple(r) for r in found])

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        async with self._session() as conn:
            await conn.executemany(
                experiment_sql.insert_audit(_placeholder), [experiment_sql.audit_row(e) for e in entries]
            )

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[Any]:
        """A pooled connection for one operation, the wait for it and the operation bounded together.
        A connection whose operation failed is terminated (no network wait), never reset and reused:
        asyncpg's graceful release talks to the server, which may be the one not answering.
        The server bounds the operation's statements by the same timeout, set each time (the pool's
        release runs RESET ALL; a SET, not a startup parameter, which poolers such as PgBouncer
        refuse): one round trip more per write or report."""
        if self._pool is None:
            raise ConnectionError("the PostgreSQL ledger is not open")
        async with self._clock.timeout(self._timeout):
            conn = await self._pool.acquire()
            try:
                await conn.execute(self._statement_timeout)
                yield conn
            except BaseException:
                conn.terminate()
                raise
            finally:
                await self._pool.release(conn, timeout=self._timeout)

    async def aclose(self) -> None:
        """Close the pool gracefully, or, when the database does not answer in time, drop it."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            async with self._clock.timeout(self._timeout):
                await pool.close()
        except TimeoutError:
            pool.terminate()
