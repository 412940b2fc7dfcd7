"""Key rotation as a job: rewrap every stored record to the backend's current key version, once per
cluster (a lock in the key store), paced for the KMS/Vault request quota, resumable.

The lock has a TTL renewed before every record, so a job that dies frees it; the cursor (the last
record done, in ref order, before the run's first failure) survives it, so the next run resumes after
it and a failure before the stop is tried and reported again. A finished run clears the cursor.
No provider key is decrypted: only the wrapped data keys are rewrapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sidecar.core.clock import Clock
from sidecar.core.errors import Code, SidecarError
from sidecar.keys.backend import KeyBackend
from sidecar.keys.envelope import Envelope
from sidecar.keys.redis_store import classified
from sidecar.keys.store import KeyStore, sqlite_failure
from sidecar.stores.sqlite import create_owner_only

if TYPE_CHECKING:
    from sidecar.stores.redis import RedisOps

_log = logging.getLogger("sidecar.keys")


class RotationInProgressError(SidecarError):
    code = Code.ABORTED
    reason = "ROTATION_IN_PROGRESS"


class RotationLock(Protocol):
    """The job's lock and cursor, kept where the key records are."""

    async def acquire(self, owner: str, ttl: float) -> bool: ...
    async def renew(self, owner: str, ttl: float) -> bool: ...
    async def release(self, owner: str) -> None: ...
    async def cursor(self) -> str | None: ...
    async def save_cursor(self, owner: str, ref: str | None) -> None: ...
    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class RotationReport:
    rotated: int
    failed: int
    resumed_after: str | None  # the cursor this run started after; None for a fresh run


class Rotation:
    """Runs the rotation under the lock at most `per_second` backend calls a second."""

    def __init__(
        self,
        store: KeyStore,
        backend: KeyBackend,
        lock: RotationLock,
        *,
        clock: Clock,
        per_second: float,
    ) -> None:
        self._store, self._backend, self._lock = store, backend, lock
        self._clock, self._interval = clock, 1.0 / per_second
        self.lock_ttl = max(60.0, 10 * self._interval)

    async def run(self, owner: str) -> RotationReport:
        if not await self._lock.acquire(owner, self.lock_ttl):
            raise RotationInProgressError("another key rotation holds the key store's lock; try later")
        try:
            after = await self._lock.cursor()
            rotated = failed = 0
            next_at = self._clock.monotonic()
            for ref in [r for r in await self._store.all_refs() if after is None or r > after]:
                now = self._clock.monotonic()
                if now < next_at:
                    await self._clock.sleep(next_at - now)
                next_at = max(now, next_at) + self._interval
                if not await self._lock.renew(owner, self.lock_ttl):
                    raise RotationInProgressError("the rotation lock was lost (expired and taken)")
                if await self._rewrap(ref):
                    rotated += 1
                else:
                    failed += 1
                if not failed:  # past a failure the cursor stays: a resumed run retries and reports it
                    await self._lock.save_cursor(owner, ref)
            await self._lock.save_cursor(owner, None)
            return RotationReport(rotated, failed, after)
        finally:
            await self._lock.release(owner)

    async def aclose(self) -> None:
        await self._lock.aclose()

    async def _rewrap(self, ref: str) -> bool:
        record = await self._store.get(ref)
        if record is None:
            return True  # deleted meanwhile: nothing to do
        try:
            envelope = Envelope.decode(record.envelope)
            wrapped = await self._backend.rewrap(envelope.wrapped, envelope.context)
            # KeyError: deleted (or replaced under a new ref) while it was rewrapped: nothing to do
            with contextlib.suppress(KeyError):
                await self._store.replace_envelope(ref, envelope.rewrapped(wrapped).encode())
            return True
        except SidecarError as exc:
            _log.warning("rotation failed", extra={"key_ref": ref, "error": type(exc).__name__})
            return False


_SQL = (
    "CREATE TABLE IF NOT EXISTS key_rotation"
    " (id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT, expires_at REAL, cursor TEXT)"
)


class SqliteRotationLock:
    """The lock as one row in the SQLite key store's file (processes sharing the file share it)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self._path, self._clock = str(path), clock

    async def _in_tx(self, op: Callable[[sqlite3.Connection], object]) -> object:
        """`op` in one immediate transaction, off the loop; the file's failures classified."""
        try:
            return await asyncio.to_thread(self._tx, op)
        except (sqlite3.Error, OSError) as exc:
            raise sqlite_failure(exc) from exc

    def _tx(self, op: Callable[[sqlite3.Connection], object]) -> object:
        create_owner_only(self._path)  # the key store's file: never made with the umask's mode
        conn = sqlite3.connect(self._path, timeout=5.0, isolation_level=None)
        try:
            conn.execute(_SQL)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR IGNORE INTO key_rotation (id, owner, expires_at) VALUES (1, NULL, 0)")
            out = op(conn)
            conn.execute("COMMIT")
            return out
        finally:
            conn.close()

    async def acquire(self, owner: str, ttl: float) -> bool:
        now = self._clock.wall()

        def take(conn: sqlite3.Connection) -> bool:
            sql = (
                "UPDATE key_rotation SET owner = ?, expires_at = ?"
                " WHERE id = 1 AND (owner IS NULL OR owner = ? OR expires_at <= ?)"
            )
            return conn.execute(sql, (owner, now + ttl, owner, now)).rowcount == 1

        return bool(await self._in_tx(take))

    async def renew(self, owner: str, ttl: float) -> bool:
        def extend(conn: sqlite3.Connection) -> bool:
            sql = "UPDATE key_rotation SET expires_at = ? WHERE id = 1 AND owner = ?"
            return conn.execute(sql, (self._clock.wall() + ttl, owner)).rowcount == 1

        return bool(await self._in_tx(extend))

    async def release(self, owner: str) -> None:
        sql = "UPDATE key_rotation SET owner = NULL, expires_at = 0 WHERE id = 1 AND owner = ?"
        await self._in_tx(lambda conn: conn.execute(sql, (owner,)))

    async def cursor(self) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT cursor FROM key_rotation WHERE id = 1").fetchone()
            return None if row is None or row[0] is None else str(row[0])

        found = await self._in_tx(read)
        return found if isinstance(found, str) else None

    async def save_cursor(self, owner: str, ref: str | None) -> None:
        sql = "UPDATE key_rotation SET cursor = ? WHERE id = 1 AND owner = ?"
        await self._in_tx(lambda conn: conn.execute(sql, (ref, owner)))

    async def aclose(self) -> None:
        return None


_IF_OWNER = """
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
"""
_RENEW = _IF_OWNER + 'return redis.call("PEXPIRE", KEYS[1], ARGV[2])'
_RELEASE = _IF_OWNER + 'return redis.call("DEL", KEYS[1])'
_CURSOR = (
    _IF_OWNER
    + """
if ARGV[2] == "" then redis.call("DEL", KEYS[2]) else redis.call("SET", KEYS[2], ARGV[2]) end
return 1
"""
)


class RedisRotationLock:
    """The lock and cursor in the Redis of the key store; one hash slot ({rotation}). Failures are
    classified as the key store's are (KEY_BACKEND_UNAVAILABLE while Redis is unreachable)."""

    def __init__(self, ops: RedisOps, *, prefix: str) -> None:
        """`ops`: on the key store's endpoint, decode_responses on."""
        self._ops, self._redis = ops, ops.client
        self._lock, self._cursor = f"{prefix}:{{rotation}}:lock", f"{prefix}:{{rotation}}:cursor"
        script = self._redis.register_script
        self._renew, self._release, self._save = script(_RENEW), script(_RELEASE), script(_CURSOR)

    async def acquire(self, owner: str, ttl: float) -> bool:
        async with classified("rotation", self._ops):
            return bool(await self._redis.set(self._lock, owner, nx=True, px=int(ttl * 1000)))

    async def renew(self, owner: str, ttl: float) -> bool:
        async with classified("rotation", self._ops):
            return bool(await self._renew(keys=[self._lock], args=[owner, int(ttl * 1000)]))

    async def release(self, owner: str) -> None:
        async with classified("rotation", self._ops):
            await self._release(keys=[self._lock], args=[owner])

    async def cursor(self) -> str | None:
        async with classified("rotation", self._ops):
            found = await self._redis.get(self._cursor)
        return str(found) if found else None

    async def save_cursor(self, owner: str, ref: str | None) -> None:
        async with classified("rotation", self._ops):
            await self._save(keys=[self._lock, self._cursor], args=[owner, ref or ""])

    async def aclose(self) -> None:
        await self._ops.aclose()
