"""A PostgreSQL ledger whose table is locked (a migration, a VACUUM FULL, someone's LOCK TABLE):
each write the sidecar gives up on after ledger.timeout_seconds must end on the server too. The
client closing its connection does not stop a statement waiting for a lock: each timed-out write
left one more server process waiting (one per timeout per sidecar, measured: 2 -> 9 in 35 s), so a
fleet of sidecars filled the server's max_connections for every other user of the database."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from sidecar.core.clock import SystemClock
from sidecar.ledger.postgres import PostgresLedger
from tests.integration.test_ledger import fresh_database
from tests.unit.ledger.test_writer import record

pytestmark = pytest.mark.integration


async def waiting_on_locks(conn: object, database: str) -> int:
    return int(
        await conn.fetchval(  # type: ignore[attr-defined]
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", database
        )
    )


async def test_writes_given_up_on_a_locked_table_end_on_the_server(postgres_url: str) -> None:
    import asyncpg

    url = await fresh_database(postgres_url)
    database = url.rsplit("/", 1)[1]
    store = PostgresLedger(url, clock=SystemClock(), timeout=0.3)
    await store.open()
    holder = await asyncpg.connect(url)
    observer = await asyncpg.connect(postgres_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE usage_records IN ACCESS EXCLUSIVE MODE")
        for i in range(4):
            with pytest.raises(TimeoutError):
                await store.write([record(i)])
        await asyncio.sleep(0.5)  # the server's own bound ends the last one too
        assert await waiting_on_locks(observer, database) == 0
        await transaction.rollback()
    finally:
        with contextlib.suppress(Exception):
            await holder.close()
        await observer.close()
        await store.aclose()
