"""Usage records off the request path: a bounded queue, a batch writer, drops counted, retention.

`submit()` is a put_nowait: when the queue is full the record is dropped and counted, and the call
never waits for the ledger. One background task waits for a record, lets more gather for
`flush_interval_seconds` (unless a full batch is already waiting), and writes up to `batch_size`
in one transaction: one commit per interval, not per call (a commit per call measured about
0.15 ms of CPU per call on SQLite). A failed
write drops that batch (counted, logged); the ledger never holds up or fails a call. Retention
deletes records older than `retention_seconds` at most once per `purge_interval_seconds`, at most
`purge_batch` per transaction with the writes in between: a backlog (retention lowered, a ledger
not purged for days) is never one DELETE that holds every write behind it for minutes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from sidecar.core.clock import Clock
from sidecar.core.tasks import cancel_and_wait
from sidecar.ledger.record import LedgerStore, LedgerUnavailableError, UsageGroup, UsageQuery, UsageRecord

_log = logging.getLogger("sidecar.ledger")
OPEN_RETRY_FIRST_SECONDS, OPEN_RETRY_MAX_SECONDS = 1.0, 30.0


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
    flush_interval_seconds: float = 0.5
    purge_batch: int = 5_000  # records per retention DELETE (about 0.25 s on SQLite under load)


class LedgerWriter:
    def __init__(
        self,
        store: LedgerStore,
        policy: LedgerPolicy,
        *,
        clock: Clock,
        signals: LedgerSignals,
    ) -> None:
        self._store, self._policy, self._clock, self._signals = store, policy, clock, signals
        self._queue: asyncio.Queue[UsageRecord] = asyncio.Queue(maxsize=policy.queue_size)
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._last_purge: float | None = None
        self._purging = False  # the last retention step found a full batch: more to delete
        self._purged = 0  # records deleted by the retention run in progress
        self._held: list[UsageRecord] = []
        self._writing: asyncio.Future[bool] | None = None  # the task's write, while in progress
        self._opened = False
        self._open_failures = 0  # failed opens so far: the first is logged, the open that succeeds too
        self._failing = False  # writes fail now: logged when it began, and when one succeeds again
        self._failed_records = 0  # records dropped by failed writes since then
        self._overflowed = 0  # records dropped by a full queue since the last write that made room
        self.dropped = 0

    def submit(self, record: UsageRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._dropped("queue_full", 1)
            if not self._overflowed:  # logged when the drops begin, and when a write makes room
                _log.error("ledger queue full: records are dropped and counted, not logged, until it drains")
            self._overflowed += 1

    def depth(self) -> int:
        return self._queue.qsize() + len(self._held)

    async def start(self) -> None:
        """Open the store and start writing. A store that cannot be opened (the database is down)
        does not stop the sidecar: records queue (bounded, as always) while the writer retries the
        open with a backoff, and GetUsage answers LEDGER_UNAVAILABLE until it succeeds."""
        await self._open()
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def _open(self) -> bool:
        """One try; a store down for hours is one log line when it first fails and one when it
        opens (every failure is counted in sidecar_store_errors_total)."""
        try:
            await self._store.open()
        except Exception as exc:
            self._signals.store_error("ledger", "open")
            if not self._open_failures:
                _log.error(
                    "ledger store cannot be opened; retrying, further failures are counted, not logged",
                    extra={"error": _describe(exc)},
                )
            self._open_failures += 1
            return False
        if self._open_failures:
            _log.warning("ledger store opened", extra={"failed_opens": self._open_failures})
        self._opened = True
        return True

    async def _open_eventually(self) -> None:
        delay = OPEN_RETRY_FIRST_SECONDS
        while not self._opened:
            await self._clock.sleep(delay)
            await self._open()
            delay = min(delay * 2, OPEN_RETRY_MAX_SECONDS)

    async def stop(self) -> None:
        """Write what is queued, then stop the task and close the store. When a write fails (the
        store is down: its operations are bounded, postgres.py), what is still queued is dropped and
        counted rather than tried batch by batch: shutdown does not wait on a store that is gone."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        writing, self._writing = self._writing, None
        try:
            # the task's write in progress goes on (shielded); when it fails, that was the one try
            wrote = await writing if writing is not None else True
            if not self._opened or not wrote or not await self.flush():
                self._drop_queued("write_failed")
        finally:
            await self._store.aclose()

    async def flush(self) -> bool:
        """Write everything queued now (GetUsage calls this, so a sidecar reads its own records);
        False when a write failed (its batch dropped, the rest left queued)."""
        while self._held or not self._queue.empty():
            if not await self._write(self._take()):
                return False
        return True

    async def caught_up(self) -> None:
        """Everything this sidecar queued is written (reads then see its own records), or
        LedgerUnavailableError: the store is not open or failing, and a read would miss them."""
        if not self._opened or not await self.flush():
            raise LedgerUnavailableError("the usage ledger cannot be written now; retry later")

    async def usage(self, query: UsageQuery) -> list[UsageGroup]:
        await self.caught_up()
        return await self._store.usage(query)

    @property
    def store(self) -> LedgerStore:
        """The store itself, for what is not a usage record (feedback, experiment rows, the audit)."""
        return self._store

    async def purge(self) -> int:
        """Delete every record past retention now, a batch at a time; how many were deleted."""
        removed = await self._purge_step()
        total = removed
        while removed >= self._policy.purge_batch:
            removed = await self._purge_step()
            total += removed
        return total

    async def _purge_step(self) -> int:
        """One retention transaction: at most `purge_batch` records. When it found a full batch the
        writer's next round (after its next write) deletes more; else the next run is an interval away."""
        self._last_purge, self._purging = self._clock.monotonic(), False
        cutoff = self._clock.wall() - self._policy.retention_seconds
        removed = await self._store.delete_before(cutoff, self._policy.purge_batch)
        self._purged += removed
        self._purging = removed >= self._policy.purge_batch
        if not self._purging and self._purged:
            _log.info("ledger retention", extra={"deleted_records": self._purged})
            self._purged = 0
        return removed

    def _purge_due(self) -> bool:
        last = self._last_purge
        return (
            self._purging
            or last is None
            or self._clock.monotonic() - last >= self._policy.purge_interval_seconds
        )

    async def _run(self) -> None:
        await self._open_eventually()
        while True:
            self._held.append(await self._queue.get())  # held, not lost, if stop() cancels the wait below
            if self._queue.qsize() < self._policy.batch_size - 1:
                await self._clock.sleep(self._policy.flush_interval_seconds)  # let a batch gather
            # shielded: a cancelled task (stop) lets the write finish, and stop() reads how it ended
            self._writing = asyncio.ensure_future(self._write(self._take()))
            await asyncio.shield(self._writing)
            self._writing = None
            if self._purge_due():
                try:
                    await self._purge_step()
                except Exception:
                    self._signals.store_error("ledger", "purge")
                    _log.exception("ledger retention failed")

    def _take(self) -> list[UsageRecord]:
        batch, self._held = self._held, []
        while len(batch) < self._policy.batch_size and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def _drop_queued(self, cause: str) -> None:
        batch = self._take()
        while batch:
            self._dropped(cause, len(batch))
            batch = self._take()

    def _dropped(self, cause: str, records: int) -> None:
        self.dropped += records
        self._signals.ledger_dropped(cause, records)

    async def _write(self, batch: list[UsageRecord]) -> bool:
        """Write one batch; False (the batch dropped and counted) when the store fails. A store that
        fails for a while (one write each flush interval) is logged when the failures begin and when
        a write succeeds again, with the records dropped meanwhile: not a line per batch."""
        if not batch:
            return True
        async with self._write_lock:
            try:
                await self._store.write(batch)
            except Exception as exc:
                self._signals.store_error("ledger", "write")
                self._dropped("write_failed", len(batch))
                if not self._failing:
                    self._failing = True
                    _log.error(
                        "ledger write failed; more failures are counted, not logged, until a write succeeds",
                        extra={"records": len(batch), "error": _describe(exc)},
                    )
                self._failed_records += len(batch)
                return False
        self._signals.ledger_wrote(len(batch))
        if self._overflowed and self._queue.qsize() <= self._queue.maxsize // 2:  # room again, not
            # just the batch's (a writer still behind refills it at once: the same episode)
            _log.warning("ledger queue drains again", extra={"dropped_records": self._overflowed})
            self._overflowed = 0
        if self._failing:
            _log.warning("ledger writes succeed again", extra={"dropped_records": self._failed_records})
            self._failing, self._failed_records = False, 0
        return True


def _describe(exc: BaseException) -> str:
    """The failure's class, and its message unless that is empty (a timeout's is)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
