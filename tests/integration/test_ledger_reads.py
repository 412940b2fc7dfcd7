"""A long usage report on the SQLite ledger does not hold up the writing of usage records: the reads
run on a connection of their own (WAL lets one writer and readers work at once). On one connection
a GetUsage over a year of a busy tenant (about a million records: 7 to 15 s measured) held every
write behind it, the writer's queue filled and the calls' records were dropped."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from sidecar.ledger.record import GroupBy, UsageQuery
from sidecar.ledger.sqlite import SqliteLedger
from tests.unit.ledger.test_writer import record

pytestmark = pytest.mark.integration

ROWS = 100_000


def fill(path: Path, rows: int) -> None:
    """`rows` records of one tenant, one per second back from now, written in one statement."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            """INSERT INTO usage_records (request_id, tenant, user_id, persona, route, provider, model,
                   tokens_in, tokens_out, tokens_cached, cost_usd, latency_seconds, overhead_seconds,
                   outcome, ts, stream, cache_hit)
               WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
               SELECT 'r' || i, 'acme', 'u' || (i % 997), '', 'chat', 'p', 'm', 1, 2, 0, 0.001,
                      (i % 1009) / 1009.0, 0.001, 'OK', ? - i, 0, 0 FROM n""",
            (rows, time.time()),
        )


async def test_a_long_usage_report_does_not_hold_up_writes(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    store = SqliteLedger(path)
    await store.open()
    try:
        await asyncio.to_thread(fill, path, ROWS)
        now = time.time()
        report = asyncio.create_task(store.usage(UsageQuery("acme", now - 366 * 86_400, now, GroupBy.DAY)))
        await asyncio.sleep(0.05)  # the report's query has started on its thread
        await store.write([record(i, time=now) for i in range(100)])
        assert not report.done()  # the write did not wait for the report
        days = await report
        assert sum(d.requests for d in days) == ROWS
    finally:
        await store.aclose()


async def test_closing_the_ledger_cuts_a_report_short(tmp_path: Path) -> None:
    """A sidecar that stops while a long report reads (its caller already cut at the end of the
    drain) does not wait for the query: closing interrupts it. It waited (12 s of a 15 s report)."""
    path = tmp_path / "usage.db"
    store = SqliteLedger(path)
    await store.open()
    await asyncio.to_thread(fill, path, ROWS)
    now = time.time()
    report = asyncio.create_task(store.usage(UsageQuery("acme", now - 366 * 86_400, now, GroupBy.DAY)))
    await asyncio.sleep(0.05)  # the report's query has started on its thread
    await store.aclose()
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        await report


async def test_a_report_whose_caller_left_stops_reading(tmp_path: Path) -> None:
    """A GetUsage whose caller's deadline passed (a client retrying a report too large for its
    deadline) stops its query: the reports after it do not queue behind queries nobody waits for."""
    path = tmp_path / "usage.db"
    store = SqliteLedger(path)
    await store.open()
    try:
        await asyncio.to_thread(fill, path, ROWS)
        now = time.time()
        year = UsageQuery("acme", now - 366 * 86_400, now, GroupBy.DAY)
        started = time.monotonic()
        await store.usage(year)
        whole = time.monotonic() - started  # the report's own time on this machine now
        abandoned = asyncio.create_task(store.usage(year))
        await asyncio.sleep(0.05)  # its query has started
        abandoned.cancel()
        started = time.monotonic()
        assert await store.usage(UsageQuery("nobody", 0, now, GroupBy.DAY)) == []
        assert time.monotonic() - started < whole / 2
    finally:
        await store.aclose()
