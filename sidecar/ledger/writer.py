"""Usage records off the request path: a bounded queue, a batch writer, drops counted, retention.

`submit()` is a put_nowait: when the queue is full the record is dropped and counted, and the call
never waits for the ledger. One background task takes whatever has queued up (at most
`batch_size`) and writes it in one transaction, so batches grow by themselves under load. A failed
write drops that batch (counted, logged); the ledger never holds up or fails a call. Retention
deletes records older than `retention_seconds` at most once per `purge_interval_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol

from sidecar.core.clock import Clock
from sidecar.ledger.record import LedgerStore, UsageGroup, UsageQuery, UsageRecord

_log = logging.getLogger("sidecar.ledger")


class LedgerSignals(Protocol):
    """The metrics the writer reports to (telemetry.metrics.Metrics)."""

    def ledger_dropped(self, cause: str, records: int = 1) -> None: ...

    def ledger_wrote(self, records: int) -> None: ...

    def store_error(self, store: str, op: str) -> None: ...


@dataclass(frozen=True, slots=True)
class LedgerPolicy:
    queue_size: int = 10_000
    batch_size: int = 500
    retention_seconds: float = 90 * 86_400.0
    purge_interval_seconds: float = 3600.0


class LedgerWriter:
    def __init__(
        self, store: LedgerStore, policy: LedgerPolicy, *, clock: Clock, signals: LedgerSignals
    ) -> None:
        self._store, self._policy, self._clock, self._signals = store, policy, clock, signals
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue(maxsize=policy.queue_size)
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._last_purge: float | None = None
        self.dropped = 0

    def submit(self, record: UsageRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            self._signals.ledger_dropped("queue_full")

    def depth(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        await self._store.open()
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop the task and close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        finally:
            await self._store.aclose()

    async def flush(self) -> None:
        """Write everything queued now (GetUsage calls this, so a sidecar reads its own records)."""
        while not self._queue.empty():
            await self._write(self._take())

    async def usage(self, query: UsageQuery) -> list[UsageGroup]:
        await self.flush()
        return await self._store.usage(query)

    async def purge(self) -> int:
        """Delete records past retention now."""
        self._last_purge = self._clock.monotonic()
        removed = await self._store.delete_before(self._clock.wall() - self._policy.retention_seconds)
        if removed:
            _log.info("ledger retention", extra={"deleted_records": removed})
        return removed

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._write([first, *self._take(self._policy.batch_size - 1)])
            last = self._last_purge
            if last is None or self._clock.monotonic() - last >= self._policy.purge_interval_seconds:
                try:
                    await self.purge()
                except Exception:
                    self._signals.store_error("ledger", "purge")
                    _log.exception("ledger retention failed")

    def _take(self, limit: int | None = None) -> list[UsageRecord]:
        limit = self._policy.batch_size if limit is None else limit
        batch: list[UsageRecord] = []
        while len(batch) < limit and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _write(self, batch: list[UsageRecord]) -> None:
        if not batch:
            return
        async with self._write_lock:
            try:
                await self._store.write(batch)
            except Exception:
                self.dropped += len(batch)
                self._signals.store_error("ledger", "write")
                self._signals.ledger_dropped("write_failed", len(batch))
                _log.exception("ledger write failed", extra={"records": len(batch)})
                return
        self._signals.ledger_wrote(len(batch))
