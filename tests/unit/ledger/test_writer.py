"""The batch writer: off the request path, bounded, drops counted, flush on demand, retention."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from sidecar.ledger.record import GroupBy, LedgerUnavailableError, UsageGroup, UsageQuery, UsageRecord
from sidecar.ledger.sqlite import SqliteLedger
from sidecar.ledger.writer import LedgerPolicy, LedgerWriter
from sidecar.telemetry.metrics import Metrics
from tests.conftest import FakeClock
from tests.support.clock import StepClock


def record(i: int = 0, *, time: float = 1_763_701_000.0, **kw: object) -> UsageRecord:
    base: dict[str, object] = dict(
        request_id=f"r{i}", tenant="t", user="u", persona="", route="chat", provider="echo", model="m",
        tokens_in=1, tokens_out=2, tokens_cached=0, cost_usd=0.5, latency_seconds=0.1, overhead_seconds=0.001,
        outcome="OK", time=time,
    )  # fmt: skip
    base.update(kw)
    return UsageRecord(**base)  # type: ignore[arg-type]


class BlockedStore:
    """A store whose writes wait until released; counts what it got; `down_opens` opens fail first."""

    def __init__(self, down_opens: int = 0) -> None:
        self.release = asyncio.Event()
        self.batches: list[int] = []
        self.fail = False
        self.down_opens = down_opens
        self.writes = 0

    async def open(self) -> None:
        if self.down_opens:
            self.down_opens -= 1
            raise ConnectionRefusedError("database down")

    async def write(self, records: Sequence[UsageRecord]) -> None:
        self.writes += 1
        await self.release.wait()
        if self.fail:
            raise OSError("disk full")
        self.batches.append(len(records))

    async def usage(self, query: UsageQuery) -> list[UsageGroup]:
        return []

    async def delete_before(self, cutoff: float, limit: int | None = None) -> int:
        return 0

    async def aclose(self) -> None: ...


def dropped(m: Metrics, cause: str) -> float:
    return m.registry.get_sample_value("sidecar_ledger_dropped_records_total", {"cause": cause}) or 0.0


async def test_a_full_queue_drops_and_counts_instead_of_blocking(clock: FakeClock) -> None:
    m, store = Metrics(), BlockedStore()
    writer = LedgerWriter(store, LedgerPolicy(queue_size=5, batch_size=100), clock=clock, signals=m)
    for i in range(12):
        writer.submit(record(i))  # synchronous: it cannot block
    assert writer.depth() == 5
    assert writer.dropped == 7 and dropped(m, "queue_full") == 7
    store.release.set()
    await writer.flush()
    assert store.batches == [5]
    assert m.registry.get_sample_value("sidecar_ledger_written_records_total") == 5


async def test_background_task_writes_in_batches(clock: FakeClock) -> None:
    m, store = Metrics(), BlockedStore()
    steps = StepClock()  # the gathering wait only records and yields
    policy = LedgerPolicy(queue_size=100, batch_size=4, flush_interval_seconds=0.25)
    writer = LedgerWriter(store, policy, clock=steps, signals=m)
    await writer.start()
    for i in range(10):
        writer.submit(record(i))
    store.release.set()
    for _ in range(50):
        if sum(store.batches) == 10:
            break
        await asyncio.sleep(0)
    assert sum(store.batches) == 10 and max(store.batches) <= 4
    assert set(steps.sleeps) <= {0.25}  # it waited for a batch to gather only while fewer than a batch queued
    await writer.stop()


async def test_stop_during_the_gathering_wait_loses_nothing(clock: FakeClock, tmp_path: Path) -> None:
    store = SqliteLedger(tmp_path / "u.db")
    writer = LedgerWriter(store, LedgerPolicy(), clock=clock, signals=Metrics())  # time never moves
    await writer.start()
    writer.submit(record(1, time=clock.wall()))
    while not clock.pending():  # noqa: ASYNC110 (the task holds the record now, waiting for a batch)
        await asyncio.sleep(0)
    assert writer.depth() == 1
    writer.submit(record(2, time=clock.wall()))
    await writer.stop()
    again = SqliteLedger(tmp_path / "u.db")
    [group] = await again.usage(UsageQuery("t", 0, clock.wall() + 1, GroupBy.USER))
    assert group.requests == 2
    await again.aclose()


async def test_a_failed_write_drops_the_batch_and_counts_it(clock: FakeClock) -> None:
    m, store = Metrics(), BlockedStore()
    store.fail = True
    store.release.set()
    writer = LedgerWriter(store, LedgerPolicy(), clock=clock, signals=m)
    writer.submit(record(1))
    writer.submit(record(2))
    await writer.flush()
    assert dropped(m, "write_failed") == 2
    assert m.registry.get_sample_value("sidecar_store_errors_total", {"store": "ledger", "op": "write"}) == 1


async def test_stop_writes_what_is_queued(clock: FakeClock, tmp_path: Path) -> None:
    store = SqliteLedger(tmp_path / "u.db")
    writer = LedgerWriter(store, LedgerPolicy(), clock=clock, signals=Metrics())
    await writer.start()
    writer.submit(record(1, time=clock.wall()))
    await writer.stop()
    again = SqliteLedger(tmp_path / "u.db")
    [group] = await again.usage(UsageQuery("t", 0, clock.wall() + 1, GroupBy.USER))
    assert group.requests == 1
    await again.aclose()


async def test_retention_deletes_old_records(clock: FakeClock, tmp_path: Path) -> None:
    store = SqliteLedger(tmp_path / "u.db")
    writer = LedgerWriter(store, LedgerPolicy(retention_seconds=86_400), clock=clock, signals=Metrics())
    await writer.start()
    now = clock.wall()
    writer.submit(record(1, time=now - 2 * 86_400))
    writer.submit(record(2, time=now - 100))
    await writer.flush()
    assert await writer.purge() == 1
    [group] = await writer.usage(UsageQuery("t", 0, now + 1, GroupBy.USER))
    assert group.requests == 1
    await writer.stop()


async def test_a_store_down_at_start_does_not_stop_the_sidecar_and_is_opened_later(clock: FakeClock) -> None:
    m, store = Metrics(), BlockedStore(down_opens=2)
    store.release.set()
    writer = LedgerWriter(store, LedgerPolicy(flush_interval_seconds=0.5), clock=clock, signals=m)
    await writer.start()  # the first open failed: logged and counted, not raised
    opens = {"store": "ledger", "op": "open"}
    assert m.registry.get_sample_value("sidecar_store_errors_total", opens) == 1
    writer.submit(record(1))
    with pytest.raises(LedgerUnavailableError):
        await writer.usage(UsageQuery("t", 0, 1, GroupBy.USER))
    assert writer.depth() == 1  # queued, not lost
    for seconds in (1.0, 2.0):  # retried with a backoff on the clock: fails once more, then opens
        await settle()
        clock.advance(seconds)
    await settle()
    assert m.registry.get_sample_value("sidecar_store_errors_total", opens) == 2
    clock.advance(0.5)  # the gathering wait of the queued record
    await settle()
    assert store.batches == [1]
    assert await writer.usage(UsageQuery("t", 0, 1, GroupBy.USER)) == []
    await writer.stop()


async def test_stop_on_a_failing_store_drops_the_queue_after_one_failed_write(
    clock: FakeClock,
) -> None:
    m, store = Metrics(), BlockedStore()
    store.fail = True
    store.release.set()
    writer = LedgerWriter(store, LedgerPolicy(batch_size=2), clock=clock, signals=m)  # time never moves
    await writer.start()
    for i in range(7):
        writer.submit(record(i))
    await writer.stop()
    assert store.writes == 1  # not one bounded wait per batch: the store is gone
    assert writer.dropped == 7 and dropped(m, "write_failed") == 7


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_stop_during_a_write_that_fails_drops_the_queue_without_another_write(
    clock: FakeClock,
) -> None:
    """The writer's own write is in progress (the database stopped answering) when the sidecar stops:
    once it fails, what is still queued is dropped, not tried again (each try waits its whole timeout)."""
    m, store = Metrics(), BlockedStore()
    store.fail = True
    writer = LedgerWriter(store, LedgerPolicy(batch_size=2), clock=clock, signals=m)  # time never moves
    for i in range(5):
        writer.submit(record(i))
    await writer.start()
    await settle()
    assert store.writes == 1  # the writer's batch of two, waiting on the database
    stopping = asyncio.create_task(writer.stop())
    await settle()
    store.release.set()  # the write fails now (as a timed-out one does)
    await stopping
    assert store.writes == 1
    assert writer.dropped == 5 and dropped(m, "write_failed") == 5


class BacklogStore(BlockedStore):
    """A store holding `old` records past retention; writes and deletes are logged in order."""

    def __init__(self, old: int) -> None:
        super().__init__()
        self.release.set()
        self.old = old
        self.ops: list[tuple[str, int]] = []

    async def write(self, records: Sequence[UsageRecord]) -> None:
        await super().write(records)
        self.ops.append(("write", len(records)))

    async def delete_before(self, cutoff: float, limit: int | None = None) -> int:
        removed = self.old if limit is None else min(limit, self.old)
        self.old -= removed
        self.ops.append(("delete", removed))
        return removed


async def test_a_retention_backlog_is_deleted_a_batch_at_a_time_between_writes() -> None:
    """Twelve records past retention, five per delete: the writer writes what came in between the
    deletes. One DELETE of a large backlog (750,000 records after lowering retention_days: 36 s on
    SQLite) held every write behind it and dropped the calls' records."""
    store, steps = BacklogStore(old=12), StepClock()
    policy = LedgerPolicy(batch_size=1, purge_batch=5)
    writer = LedgerWriter(store, policy, clock=steps, signals=Metrics())
    await writer.start()
    for i in range(4):
        writer.submit(record(i))
        await settle()
    await writer.stop()
    assert store.ops == [
        ("write", 1), ("delete", 5), ("write", 1), ("delete", 5), ("write", 1), ("delete", 2), ("write", 1),
    ]  # fmt: skip


async def test_a_store_failing_for_a_while_is_logged_once_per_episode(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A database down for minutes fails every write (one every flush interval, 2 a second): the
    drops are counted each time, but the log has one line when the failures begin and one when
    writes succeed again, at any log level, not a line per batch."""
    caplog.set_level(logging.DEBUG, logger="sidecar.ledger")
    m, store = Metrics(), BlockedStore()
    store.release.set()
    writer = LedgerWriter(store, LedgerPolicy(), clock=clock, signals=m)
    for _ in range(2):
        store.fail = True
        for i in range(20):
            writer.submit(record(i))
            assert not await writer.flush()
        store.fail = False
        writer.submit(record(99))
        assert await writer.flush()
        writer.submit(record(100))
        assert await writer.flush()
    assert dropped(m, "write_failed") == 40
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sidecar.ledger"]
    assert (
        lines
        == [
            ("ERROR", "ledger write failed; more failures are counted, not logged, until a write succeeds"),
            ("WARNING", "ledger writes succeed again"),
        ]
        * 2
    )
    recovered = [r for r in caplog.records if r.getMessage() == "ledger writes succeed again"]
    assert [getattr(r, "dropped_records", None) for r in recovered] == [20, 20]


async def test_a_store_that_cannot_be_opened_is_logged_once_until_it_opens(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar.ledger")
    m, store = Metrics(), BlockedStore(down_opens=6)
    store.release.set()
    writer = LedgerWriter(store, LedgerPolicy(flush_interval_seconds=0.5), clock=clock, signals=m)
    await writer.start()
    for seconds in (1.0, 2.0, 4.0, 8.0, 16.0, 30.0):
        await settle()
        clock.advance(seconds)
    await settle()
    opens = {"store": "ledger", "op": "open"}
    assert m.registry.get_sample_value("sidecar_store_errors_total", opens) == 6
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sidecar.ledger"]
    assert lines == [
        ("ERROR", "ledger store cannot be opened; retrying, further failures are counted, not logged"),
        ("WARNING", "ledger store opened"),
    ]
    await writer.stop()


async def test_a_full_queue_is_logged_once_until_it_drains(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Records dropped because the writer is behind (a slow database): counted each, and one line when
    the drops begin and one when a write makes room again, not silence, and not a line per record."""
    caplog.set_level(logging.DEBUG, logger="sidecar.ledger")
    m, store = Metrics(), BlockedStore()
    store.release.set()
    writer = LedgerWriter(store, LedgerPolicy(queue_size=5, batch_size=100), clock=clock, signals=m)
    for _ in range(2):
        for i in range(12):
            writer.submit(record(i))
        assert await writer.flush()
    assert dropped(m, "queue_full") == 14
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "sidecar.ledger"]
    assert (
        lines
        == [
            ("ERROR", "ledger queue full: records are dropped and counted, not logged, until it drains"),
            ("WARNING", "ledger queue drains again"),
        ]
        * 2
    )
    drained = [r for r in caplog.records if r.getMessage() == "ledger queue drains again"]
    assert [getattr(r, "dropped_records", None) for r in drained] == [7, 7]
