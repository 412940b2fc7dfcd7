"""The rotation job: rewraps every record, paced on the injected clock, one run at a time, resumable."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from sidecar.core.errors import KeyBackendUnavailableError
from sidecar.keys.backend import KeyContext, WrappedKey
from sidecar.keys.envelope import Envelope, seal, unseal
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.rotation import Rotation, RotationInProgressError, SqliteRotationLock
from sidecar.keys.store import KeyRecord, SqliteKeyStore
from tests.conftest import FakeClock

KEK1, KEK2 = bytes(range(32)), bytes(range(32, 64))


async def stored(tmp_path: Path, clock: FakeClock, n: int) -> SqliteKeyStore:
    store = SqliteKeyStore(tmp_path / "keys.db", clock)
    v1 = LocalKekBackend({1: KEK1}, 1)
    for i in range(n):
        ctx = KeyContext("acme", f"u{i}", "openai", "default")
        env = (await seal(v1, ctx, f"sk-{i}".encode())).encode()
        await store.put(KeyRecord(f"key_{i:08d}", "acme", f"u{i}", "openai", "default", env, "…", 1.0, 1.0))
    return store


def job(store: SqliteKeyStore, tmp_path: Path, clock: FakeClock, per_second: float = 2.0) -> Rotation:
    v2 = LocalKekBackend({1: KEK1, 2: KEK2}, 2)
    lock = SqliteRotationLock(tmp_path / "keys.db", clock)
    return Rotation(store, v2, lock, clock=clock, per_second=per_second)


async def test_every_record_is_rewrapped_at_the_configured_pace(tmp_path: Path, clock: FakeClock) -> None:
    clock.auto_advance = True  # the pacing sleeps pass in virtual time
    store = await stored(tmp_path, clock, 5)
    report = await job(store, tmp_path, clock).run("job-a")
    assert (report.rotated, report.failed, report.resumed_after) == (5, 0, None)
    assert sum(clock.sleeps) == pytest.approx(2.0)  # 5 calls at 2 a second: 4 gaps of 0.5 s
    record = await store.get("key_00000003")
    assert record is not None
    v2 = LocalKekBackend({2: KEK2}, 2)
    ctx = KeyContext("acme", "u3", "openai", "default")
    assert await unseal(v2, Envelope.decode(record.envelope), ctx) == b"sk-3"  # the new KEK alone opens it
    await store.aclose()


async def test_a_second_run_while_one_holds_the_lock_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    clock.auto_advance = True
    store = await stored(tmp_path, clock, 1)
    lock = SqliteRotationLock(tmp_path / "keys.db", clock)
    assert await lock.acquire("other-pod", 60)
    with pytest.raises(RotationInProgressError):
        await job(store, tmp_path, clock).run("job-a")
    clock.advance(61)  # the holder died: its lock expires
    assert (await job(store, tmp_path, clock).run("job-a")).rotated == 1
    await store.aclose()


async def test_a_run_that_died_is_resumed_after_its_cursor(tmp_path: Path, clock: FakeClock) -> None:
    clock.auto_advance = True
    store = await stored(tmp_path, clock, 4)
    lock = SqliteRotationLock(tmp_path / "keys.db", clock)
    assert await lock.acquire("died", 60)
    await lock.save_cursor("died", "key_00000001")  # it had done the first two, then crashed
    clock.advance(61)
    report = await job(store, tmp_path, clock).run("job-b")
    assert (report.rotated, report.resumed_after) == (2, "key_00000001")
    assert await lock.cursor() is None  # finished: the next run starts afresh
    assert (await job(store, tmp_path, clock).run("job-c")).rotated == 4
    assert await lock.acquire("anyone", 60)  # released
    await store.aclose()


async def test_the_lock_creates_a_fresh_store_file_owner_only(tmp_path: Path, clock: FakeClock) -> None:
    """A rotation on a fresh store_path (`sidecar keys rotate` before any key was registered) let
    sqlite3 create the key store's file with the umask's mode (0644): the records every later
    registration wrote were readable by every local user. The store creates it 0600."""
    path = tmp_path / "keys.db"
    previous = os.umask(0o022)
    try:
        assert await SqliteRotationLock(path, clock).acquire("job-a", 60)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


class DeletingBackend(LocalKekBackend):
    """The new KEK, and the user deleting a record while its data key is being rewrapped."""

    store: SqliteKeyStore
    doomed = ""

    async def rewrap(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        if context.user == "u1":
            await self.store.delete("acme", self.doomed)
        return await super().rewrap(wrapped, context)


async def test_a_record_deleted_during_its_rewrap_is_not_a_failure(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleted before its turn, a record counts as done (nothing to rewrap); deleted while the backend
    rewrapped it (the user's DeleteKey, or a register replacing it), it counted as a failure and logged
    "rotation failed": `sidecar keys rotate` then exits 1 and the runbook says not to retire the old key."""
    clock.auto_advance = True
    store = await stored(tmp_path, clock, 3)
    backend = DeletingBackend({1: KEK1, 2: KEK2}, 2)
    backend.store, backend.doomed = store, "key_00000001"
    lock = SqliteRotationLock(tmp_path / "keys.db", clock)
    report = await Rotation(store, backend, lock, clock=clock, per_second=2.0).run("job-a")
    assert (report.rotated, report.failed) == (3, 0)
    assert "rotation failed" not in caplog.text
    assert await store.all_refs() == ["key_00000000", "key_00000002"]
    await store.aclose()


class FlakyBackend(LocalKekBackend):
    """The new KEK; refuses one user's record, and the job is stopped (its pod killed) at another's."""

    async def rewrap(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        if context.user == "u1":
            raise KeyBackendUnavailableError("throttled", retry_after=1.0)
        if context.user == "u2":
            raise asyncio.CancelledError  # the RPC's caller went away, or the Job's pod was stopped
        return await super().rewrap(wrapped, context)


async def test_a_resumed_run_does_not_forget_a_failure_before_the_stop(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The cursor moved past a record that failed; a run stopped after it and resumed reported
    no failures, and the runbook retires the old key version on that: the failed record then
    stopped opening."""
    clock.auto_advance = True
    store = await stored(tmp_path, clock, 4)
    lock = SqliteRotationLock(tmp_path / "keys.db", clock)
    flaky = Rotation(store, FlakyBackend({1: KEK1, 2: KEK2}, 2), lock, clock=clock, per_second=2.0)
    with pytest.raises(asyncio.CancelledError):
        await flaky.run("job-a")
    report = await job(store, tmp_path, clock).run("job-b")
    assert (report.rotated, report.failed) == (3, 0)  # key_1 (failed before the stop) again, key_2, key_3
    v2 = LocalKekBackend({2: KEK2}, 2)  # the old KEK retired: every record opens under the new one
    for i in range(4):
        record = await store.get(f"key_{i:08d}")
        assert record is not None
        ctx = KeyContext("acme", f"u{i}", "openai", "default")
        assert await unseal(v2, Envelope.decode(record.envelope), ctx) == f"sk-{i}".encode()
    await store.aclose()
