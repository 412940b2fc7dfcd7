"""GetUsage aggregates on the SQLite ledger (the same checks run on PostgreSQL in integration)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sidecar.ledger import sql
from sidecar.ledger.sqlite import SqliteLedger
from tests.support.ledger import check_aggregates, check_cost_micros, check_experiment_cost_micros


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


async def test_metadata_is_stored_and_an_older_table_gains_the_column(tmp_path: Path) -> None:
    """The request's metadata reaches the usage record (the proto promises it); a ledger file made
    before the column existed is migrated on open, its old rows read as no metadata."""
    import json
    import sqlite3

    from sidecar.ledger.record import UsageRecord

    path = tmp_path / "usage.db"
    with sqlite3.connect(path) as conn:  # the schema as it was before the metadata column
        conn.execute(
            "CREATE TABLE usage_records (request_id TEXT NOT NULL, tenant TEXT NOT NULL,"
            " user_id TEXT NOT NULL,"
            " persona TEXT NOT NULL, route TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,"
            " tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, tokens_cached INTEGER NOT NULL,"
            " cost_usd REAL NOT NULL, latency_seconds REAL NOT NULL, overhead_seconds REAL NOT NULL,"
            " outcome TEXT NOT NULL, ts REAL NOT NULL, stream BOOLEAN NOT NULL, cache_hit BOOLEAN NOT NULL)"
        )
        conn.execute(
            "INSERT INTO usage_records VALUES ('old','t','u','','r','p','m',1,1,0,0,0.1,0,'OK',1,0,0)"
        )
    store = SqliteLedger(path)
    await store.open()
    record = UsageRecord(
        "new",
        "t",
        "u",
        "",
        "r",
        "p",
        "m",
        1,
        1,
        0,
        0.0,
        0.1,
        0.0,
        "OK",
        2.0,
        metadata={"team": "blue", "env": "dev"},
    )
    await store.write([record])
    await store.aclose()
    with sqlite3.connect(path) as conn:
        rows = dict(conn.execute("SELECT request_id, metadata FROM usage_records").fetchall())
    assert json.loads(rows["old"]) == {}
    assert json.loads(rows["new"]) == {"env": "dev", "team": "blue"}


async def test_an_open_that_fails_leaves_no_file_open(tmp_path: Path) -> None:
    """A ledger whose file cannot be set up (here not a database; a full disk fails the same step)
    is opened again by the writer every 30 s: each failed try left its file open (one more file
    descriptor per try, measured on a full tmpfs: 26 to 30 after four tries), for as long as it lasts."""
    import contextlib
    import os

    import pytest

    path = tmp_path / "usage.db"
    path.write_bytes(b"not a database " * 1000)
    store = SqliteLedger(path)

    def open_on_the_ledger() -> int:
        """This process's descriptors on the ledger's files; not a count of all of them, which a test
        run's other threads change meanwhile (it was flaky: 17 after against 24 before)."""
        found = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # closed since it was listed
                found += os.readlink(f"/proc/self/fd/{fd}").startswith(str(path))
        return found

    for _ in range(5):
        with pytest.raises(sqlite3.DatabaseError):
            await store.open()
    assert open_on_the_ledger() == 0
    await store.aclose()


async def test_the_wal_is_cut_back_once_a_long_report_let_it_grow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports read on their own connection; while one runs, checkpoints cannot reset the WAL and it
    grows with every write (two pollers back to back: 117 MB in 80 s). Once the reports stop and a
    checkpoint resets it, the -wal file is cut back instead of keeping its high-water mark."""
    from sidecar.ledger import sqlite as ledger_sqlite
    from tests.unit.ledger.test_writer import record

    monkeypatch.setattr(ledger_sqlite, "WAL_SIZE_LIMIT", 1_000_000, raising=False)
    path = tmp_path / "usage.db"
    wal = tmp_path / "usage.db-wal"
    store = SqliteLedger(path)
    await store.open()
    report = sqlite3.connect(path)  # a report's read transaction, open while the writes go on
    report.execute("BEGIN")
    report.execute("SELECT count(*) FROM usage_records").fetchall()
    for b in range(30):
        await store.write([record(b * 500 + i) for i in range(500)])
    grown = wal.stat().st_size
    report.execute("COMMIT")
    report.close()
    for b in range(30, 40):  # past the checkpoint threshold again: it completes, the WAL restarts
        await store.write([record(b * 500 + i) for i in range(500)])
    after = wal.stat().st_size
    await store.aclose()
    assert grown > 4_000_000
    assert after < grown / 2  # cut to 1 MB at the reset, then the writes after it (kept: 4.6 MB)


async def test_reports_back_to_back_do_not_let_the_wal_grow_without_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pollers reading GetUsage back to back: some report always holds a snapshot, so the writer's
    own checkpoints never restart the WAL (0.7 MB a second at 400 records a second, without end).
    The reader cuts the -wal file after a report once it passes the limit."""
    from sidecar.ledger import sqlite as ledger_sqlite
    from sidecar.ledger.record import GroupBy, UsageQuery
    from tests.unit.ledger.test_writer import record

    monkeypatch.setattr(ledger_sqlite, "WAL_SIZE_LIMIT", 1_000_000)
    wal = tmp_path / "usage.db-wal"
    store = SqliteLedger(tmp_path / "usage.db")
    await store.open()
    held = sqlite3.connect(tmp_path / "usage.db")  # the report before, still reading as writes go on
    held.execute("BEGIN")
    held.execute("SELECT count(*) FROM usage_records").fetchall()
    try:
        for b in range(20):
            await store.write([record(b * 500 + i) for i in range(500)])
        grown = wal.stat().st_size
        held.execute("COMMIT")  # that report ends as the next one (below) runs
        await store.usage(UsageQuery("t", 0, 2e9, GroupBy.USER))
        after = wal.stat().st_size
    finally:
        held.close()
        await store.aclose()
    assert grown > 3_000_000
    assert after == 0


async def test_cost_micros_add_up_to_the_calls_own(tmp_path: Path) -> None:
    store = SqliteLedger(tmp_path / "usage.db")
    await store.open()
    try:
        await check_cost_micros(store)
    finally:
        await store.aclose()


async def test_an_experiment_reports_cost_adds_up_its_calls_own(tmp_path: Path) -> None:
    store = SqliteLedger(tmp_path / "usage.db")
    await store.open()
    try:
        await check_experiment_cost_micros(store)
    finally:
        await store.aclose()


async def test_rows_from_before_the_integer_cost_count_their_dollars_rounded(tmp_path: Path) -> None:
    from sidecar.ledger.record import GroupBy, UsageQuery

    path = tmp_path / "usage.db"
    with sqlite3.connect(path) as conn:  # the schema before the cost_micros column, one row of 6.15 µ$
        for statement in sql.create_table("REAL", "INTEGER"):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO usage_records VALUES "
            "('old','t','u','','r','p','m',17,6,0,6.15e-6,0.1,0,'OK',1,0,0,'{}')"
        )
    store = SqliteLedger(path)
    await store.open()
    try:
        (group,) = await store.usage(UsageQuery("t", 0, 10, GroupBy.USER))
    finally:
        await store.aclose()
    assert group.cost_micros == 6


async def test_an_absurd_cost_spoils_no_batch(tmp_path: Path) -> None:
    """3 x 2**32 tokens at the highest price a deployment may have (1e9 per million) is 1.3e19
    micro-dollars: more than a 64-bit column holds. The record's batch must still be written."""
    from sidecar.ledger.record import GroupBy, UsageQuery, UsageRecord

    store = SqliteLedger(tmp_path / "usage.db")
    await store.open()
    try:
        absurd = UsageRecord("a", "t", "u", "", "r", "p", "m", 2**32, 2**32, 0, 1.3e13, 0.1, 0.0, "OK", 1.0)
        fine = UsageRecord("b", "t", "u", "", "r", "p", "m", 1, 1, 0, 1e-6, 0.1, 0.0, "OK", 2.0)
        await store.write([absurd, fine])
        (group,) = await store.usage(UsageQuery("t", 0, 10, GroupBy.USER))
    finally:
        await store.aclose()
    assert group.requests == 2 and group.cost_micros > 10**15
